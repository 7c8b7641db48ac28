"""Per-language classifier thresholds at a group-averaged benign false-positive rate.

Shared by ``train`` (whole-text scoring) and window scoring, whose thresholds are *matched*:
a max over sentence windows scores long benign text higher than the whole text does, so a
window model calibrated to the same nominal target on whole-prompt rows drifted to a higher
benign FPR on framed documents (session 6, rounds 1–2). Matching sets the window thresholds
so the benign FPR they reach on a calibration set — including the task × document twins —
is the one the same weights reach scoring whole texts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_SLACK = 1e-9


def lang_of(group: str) -> str:
    return group.split(":")[0]


def thresholds(
    scores: Sequence[float], groups: Sequence[str], target_fpr: float | Mapping[str, float]
) -> dict[str, float]:
    """Per language, the lowest threshold whose group-averaged benign FPR is ``<= target_fpr``
    (one float, or one per language). A row is flagged at ``score >= threshold``.

    Each benign row weighs ``1 / size of its group``, so a family of 15 hard instructions
    counts as much as 1,500 speech sentences. The earlier rule (every group at most
    ``target_fpr``) let the single worst row of a 15-row group set the threshold, which cost
    a third of the Turkish validation recall.
    """
    out: dict[str, float] = {}
    for lang in sorted({lang_of(g) for g in groups}):
        # a matched target is itself a sum of 1/size terms: float noise must not cost a row
        target = target_fpr if isinstance(target_fpr, float) else target_fpr[lang] + _SLACK
        members = [(s, g) for s, g in zip(scores, groups, strict=True) if lang_of(g) == lang]
        sizes: dict[str, int] = {}
        for _, g in members:
            sizes[g] = sizes.get(g, 0) + 1
        ranked = sorted(members, key=lambda m: -m[0])
        flagged = 0.0
        threshold = ranked[0][0] + 1e-6
        for score, group in ranked:
            flagged += 1 / (sizes[group] * len(sizes))
            if flagged > target:
                break
            threshold = score
        out[lang] = min(0.99, threshold)
    return out


def group_mean_fpr(
    scores: Sequence[float], groups: Sequence[str], limits: Mapping[str, float]
) -> dict[str, float]:
    """Per language, the benign rows' flagged share (``score >= limits[lang]``) averaged over
    groups."""
    cells: dict[str, list[bool]] = {}
    for score, group in zip(scores, groups, strict=True):
        cells.setdefault(group, []).append(score >= limits[lang_of(group)])
    per_lang: dict[str, list[float]] = {}
    for group, flags in cells.items():
        per_lang.setdefault(lang_of(group), []).append(sum(flags) / len(flags))
    return {lang: sum(v) / len(v) for lang, v in per_lang.items()}


def matched_thresholds(
    whole: Sequence[float],
    windowed: Sequence[float],
    groups: Sequence[str],
    base: Mapping[str, float],
) -> tuple[dict[str, float], dict[str, float]]:
    """Thresholds for the ``windowed`` scores of benign calibration rows whose group-mean FPR
    per language does not exceed what the ``whole``-text scores of the same rows reach at the
    ``base`` thresholds; also returns that target FPR per language."""
    target = group_mean_fpr(whole, groups, base)
    return thresholds(windowed, groups, target), target
