"""``guard eval``: precision/recall per PII type and per injection set, and latency per check.

The PII set is generated (Faker ``tr_TR``/``en_US`` plus our own Turkish phone and VKN
generators) with exact gold spans, inside Turkish and English sentences, together with
look-alikes that must *not* be masked (each identifier with its check digit changed, order
numbers, amounts). Injection figures come from sets the classifier did not train on
(:func:`paramstack.guard.datasets.heldout_sets`), English and Turkish separately.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from paramstack.errors import ParamstackError
from paramstack.guard.datasets import Prompt
from paramstack.guard.engine import Guard
from paramstack.guard.injection import InjectionDetector
from paramstack.guard.injection_model import InjectionModel
from paramstack.guard.pii import PatternRecognizer, Recognizer, detect
from paramstack.guard.policy import Direction
from paramstack.guard.textnorm import fold
from paramstack.guard.toxicity import ToxicityLexicon

TEMPLATES = {
    "tr": [
        "Müşterinin {label} bilgisi {value} olarak sisteme girildi, lütfen kontrol edin.",
        "Merhaba, {label}: {value}. Yarın görüşelim.",
        "Başvuru formunda {value} yazıyor; {label} doğru mu?",
    ],
    "en": [
        "Please update the record: {label} {value} belongs to the new client.",
        "Our notes say {value} ({label}), can you confirm?",
    ],
}
LABELS = {
    "EMAIL": "e-posta",
    "PHONE": "tel",
    "TCKN": "TCKN",
    "VKN": "VKN",
    "IBAN": "IBAN",
    "CARD": "kart",
    "SSN": "SSN",
    "IP": "IP",
    "DOB": "doğum tarihi",
}


def _tr_phone(rng: random.Random) -> str:
    area = rng.choice(["532", "505", "542", "555", "212", "216", "312", "232"])
    a, b, c = rng.randint(200, 999), rng.randint(10, 99), rng.randint(10, 99)
    return rng.choice(
        [
            f"0{area} {a} {b} {c}",
            f"+90 {area} {a} {b}{c}",
            f"(0{area}) {a} {b} {c}",
            f"0{area}{a}{b}{c}",
            f"+90{area}{a}{b}{c}",
        ]
    )


def pii_examples(n_per_type: int = 60, seed: int = 0) -> list[tuple[str, list[tuple[str, str]]]]:
    """(text, gold [(entity, value)]) rows; negatives have an empty gold list."""
    from faker import Faker
    from stdnum.tr import vkn

    rng = random.Random(seed)
    tr, en = Faker("tr_TR"), Faker("en_US")
    tr.seed_instance(seed)
    en.seed_instance(seed)

    def vkn_number() -> str:
        body = "".join(rng.choice("0123456789") for _ in range(9))
        return body + vkn.calc_check_digit(body)

    makers: dict[str, Callable[[], str]] = {
        "EMAIL": tr.email,
        "PHONE": lambda: _tr_phone(rng),
        "TCKN": tr.ssn,
        "VKN": vkn_number,
        "IBAN": tr.iban,
        "CARD": tr.credit_card_number,
        "SSN": en.ssn,
        "IP": en.ipv4,
        "DOB": lambda: tr.date_of_birth().strftime("%d.%m.%Y"),
    }
    rows: list[tuple[str, list[tuple[str, str]]]] = []
    for entity, make in makers.items():
        for _ in range(n_per_type):
            value, lang = make(), rng.choice(["tr", "en"])
            text = rng.choice(TEMPLATES[lang]).format(label=LABELS[entity], value=value)
            rows.append((text, [(entity, value)]))
            if entity in {"TCKN", "VKN", "IBAN", "CARD"}:
                bad = value[:-1] + str((int(value[-1]) + 1) % 10)
                rows.append(
                    (rng.choice(TEMPLATES[lang]).format(label=LABELS[entity], value=bad), [])
                )
    for _ in range(n_per_type):
        plain = str(rng.randint(10**5, 10**9))
        rows.append((f"Sipariş no {plain}, tutar {rng.randint(1, 9999)},50 TL.", []))
    return rows


def pii_metrics(
    recognizers: list[Recognizer] | None = None,
    rows: list[tuple[str, list[tuple[str, str]]]] | None = None,
) -> dict[str, dict[str, float]]:
    """Per-type precision/recall on ``rows`` (default: set one, :func:`pii_examples`)."""
    recs = recognizers or [PatternRecognizer()]
    tp: dict[str, int] = {}
    fp: dict[str, int] = {}
    fn: dict[str, int] = {}
    for text, gold in rows if rows is not None else pii_examples():
        found = {(s.entity, text[s.start : s.end]) for s in detect(text, recs)}
        for item in found:
            (tp if item in gold else fp)[item[0]] = (tp if item in gold else fp).get(item[0], 0) + 1
        for item in gold:
            if item not in found:
                fn[item[0]] = fn.get(item[0], 0) + 1
    out = {}
    for entity in LABELS:
        t, p, n = tp.get(entity, 0), fp.get(entity, 0), fn.get(entity, 0)
        out[entity] = {
            "precision": t / (t + p) if t + p else 1.0,
            "recall": t / (t + n) if t + n else 1.0,
            "support": t + n,
        }
    return out


def injection_metrics(detector: InjectionDetector, rows: list[Prompt]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lang in sorted({r.lang for r in rows}):
        sub = [r for r in rows if r.lang == lang]
        flags = [(detector.detect(r.text) is not None, r.label) for r in sub]
        pos = [f for f, y in flags if y == 1]
        neg = [f for f, y in flags if y == 0]
        out[lang] = {
            "recall": sum(pos) / max(1, len(pos)),
            "fpr": sum(neg) / max(1, len(neg)),
            "attacks": len(pos),
            "benign": len(neg),
            "sources": sorted({r.source for r in sub}),
            "flagged_by_source": {
                src: round(
                    sum(f for (f, _), r in zip(flags, sub, strict=True) if r.source == src)
                    / sum(r.source == src for r in sub),
                    3,
                )
                for src in sorted({r.source for r in sub})
            },
        }
    return out


class LabelledText(Protocol):
    """A labelled row (1 = toxic): the toxicity test split's rows or an evaluation file's."""

    @property
    def text(self) -> str: ...
    @property
    def label(self) -> int: ...
    @property
    def lang(self) -> str: ...


def toxicity_metrics(model: InjectionModel, rows: Sequence[LabelledText]) -> dict[str, Any]:
    """Precision / recall / FPR per language of the lexicon alone, the classifier alone (its
    calibrated thresholds) and either, on labelled rows the classifier did not train on."""
    lexicon = ToxicityLexicon.load()
    layers: dict[str, Callable[[str], bool]] = {
        "lexicon": lambda t: ToxicityLexicon.score(lexicon.scan(fold(t))) >= 0.5,
        "classifier": lambda t: model.score(t) >= model.threshold_for(t),
    }
    flags = {name: [f(r.text) for r in rows] for name, f in layers.items()}
    flags["either"] = [a or b for a, b in zip(flags["lexicon"], flags["classifier"], strict=True)]
    out: dict[str, Any] = {}
    for name, got in flags.items():
        out[name] = {}
        for lang in sorted({r.lang for r in rows}):
            pairs = [(g, r.label) for g, r in zip(got, rows, strict=True) if r.lang == lang]
            tp = sum(g and y == 1 for g, y in pairs)
            fp = sum(g and y == 0 for g, y in pairs)
            pos = sum(y == 1 for _, y in pairs)
            out[name][lang] = {
                "precision": tp / (tp + fp) if tp + fp else 1.0,
                "recall": tp / max(1, pos),
                "fpr": fp / max(1, len(pairs) - pos),
                "toxic": pos,
                "benign": len(pairs) - pos,
            }
    return out


def latency_ms(guard: Guard, text: str, repeats: int = 200) -> dict[str, float]:
    """p50/p95 of each check alone and of ``check_input`` (all checks) on ``text``."""
    from paramstack.guard.checks import TextView

    out: dict[str, float] = {}
    for name, chk in guard.checks.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            chk.scan(TextView(text))
            times.append((time.perf_counter() - start) * 1e3)
        out[f"{name}_p50"] = statistics.median(times)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.suppress(ParamstackError):  # a block still costs the scan time
            guard.run(text, Direction.OUTPUT)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    out["all_p50"] = statistics.median(times)
    out["all_p95"] = times[int(0.95 * len(times)) - 1]
    return out
