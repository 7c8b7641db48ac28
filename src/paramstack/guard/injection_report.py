"""Out-of-fold figures of a trained injection classifier, per language and per training group.

The only figures used to choose data, features and model kinds: the evaluation sets stay
untouched. Kept apart from :mod:`injection_model` so the model module holds the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paramstack.guard.textnorm import guess_lang

if TYPE_CHECKING:
    from paramstack.guard.injection_model import InjectionModel


def by_group(
    model: InjectionModel, rows: list[tuple[str, float, int, str]]
) -> dict[str, dict[str, float]]:
    """Share flagged out of fold per (group, label): which family is weak, without a look at
    any evaluation set."""
    cells: dict[str, list[bool]] = {}
    for text, score, label, group in rows:
        key = f"{group}:{'attack' if label else 'benign'}"
        cells.setdefault(key, []).append(score >= model.threshold_for(text))
    return {
        k: {"flagged": round(sum(v) / len(v), 3), "rows": len(v)} for k, v in sorted(cells.items())
    }


def validation(model: InjectionModel, rows: list[tuple[str, float, int]]) -> dict[str, Any]:
    """Recall / FPR per language of out-of-fold (or held-back) training rows, at the thresholds.

    The only figures used to choose data and features: the evaluation sets stay untouched.
    """
    out: dict[str, Any] = {}
    by_lang: dict[str, list[tuple[bool, int]]] = {}
    for text, score, label in rows:
        by_lang.setdefault(guess_lang(text), []).append((score >= model.threshold_for(text), label))
    for lang, flags in sorted(by_lang.items()):
        pos = [f for f, y in flags if y == 1]
        neg = [f for f, y in flags if y == 0]
        out[lang] = {
            "recall": round(sum(pos) / max(1, len(pos)), 3),
            "fpr": round(sum(neg) / max(1, len(neg)), 3),
            "attacks": len(pos),
            "benign": len(neg),
        }
    return out
