"""The served path scored end to end (``ecg evaluate --inputs served|served:N``): every
record tiled into 10 s strips, each analysed by ``strip.analyze_strip`` (the code the predict
endpoint runs: its own R-peak detector, beat windows, template and inputs), its beats matched
to the reference beats and scored as EC57 bxb does (``ecg.bxb``).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from paramstack.ecg.bxb import TOLERANCE_S, bxb_confusion, bxb_metrics, match_beats
from paramstack.ecg.dataset import suffix_seconds
from paramstack.ecg.models import BeatClassifier
from paramstack.ecg.records import AAMI_CLASSES, AAMI_MAP, BEAT_SYMBOLS, EcgRecord, read_record
from paramstack.ecg.strip import MAX_CONTEXT_SECONDS, MIN_SECONDS, RunModel, analyze_strip
from paramstack.ecg.strip_inputs import STRIP_SECONDS
from paramstack.errors import InvalidInput

SERVED_NOTE = (
    "Served path scored with its own detector (EC57 bxb): each record is tiled into "
    "consecutive 10 s strips from 0 s (a last partial strip is analysed when it lasts at "
    f"least the endpoint's minimum of {MIN_SECONDS:g} s), each analysed by `analyze_strip` "
    "as the predict endpoint does (own R peaks, beat windows, template and inputs; `served:N` "
    "sends the preceding N s as `context`), with the torch model the ONNX export is checked "
    "against. Reference beats (AAMI beat symbols) are matched one to one, nearest first, to "
    "the returned beats within 150 ms; a miss counts against its class's Se, an extra "
    "detection against +P of the class it was given. A lone strip does not classify a beat "
    "whose window passes its end, so such beats are misses; with context, the next strip "
    "returns them (`beats_from_context`)."
)


def served_context_seconds(kind: str) -> float | None:
    """Seconds of context of a ``served`` (0) or ``served:N`` input kind; None otherwise."""
    if kind == "served":
        return 0.0
    return suffix_seconds(kind, "served", MAX_CONTEXT_SECONDS, " (the endpoint's context bound)")


def torch_runner(model: BeatClassifier) -> RunModel:
    """``run_model`` of a trained torch model: logits, without touching training state."""
    model.eval()

    def run(beats: npt.NDArray[np.float32], rr: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        with torch.inference_mode():
            logits: npt.NDArray[Any] = model(torch.from_numpy(beats), torch.from_numpy(rr)).numpy()
            return logits

    return run


def served_beats(
    record: EcgRecord, run_model: RunModel, options: dict[str, Any], context_s: float
) -> tuple[npt.NDArray[np.float64], list[str], dict[str, Any]]:
    """(beat times in s from the record start, their classes, strip counts) of the record
    served as consecutive 10 s strips, each with up to ``context_s`` s before it."""
    fs, signal = record.fs, record.signal
    length = round(STRIP_SECONDS * fs)
    times: list[float] = []
    labels: list[str] = []
    failed: Counter[str] = Counter()
    stats = dict.fromkeys(
        ("strips", "short_tail_dropped", "detected_not_classified", "classified_from_context"), 0
    )
    for start in range(0, len(signal), length):
        strip = signal[start : start + length]
        if len(strip) < math.ceil(MIN_SECONDS * fs):
            stats["short_tail_dropped"] += 1
            continue
        stats["strips"] += 1
        context = signal[max(0, start - round(context_s * fs)) : start] if context_s else None
        try:
            out = analyze_strip(run_model, strip, fs, context=context, **options)
        except InvalidInput as err:
            failed[err.code] += 1
            continue
        times += [start / fs + b["time_s"] for b in out["beats"]]
        labels += [b["class"] for b in out["beats"]]
        summary = out["summary"]
        own = summary["beats_classified"] - summary.get("beats_from_context", 0)
        stats["detected_not_classified"] += summary["beats_detected"] - own
        stats["classified_from_context"] += summary.get("beats_from_context", 0)
    return np.asarray(times, dtype=np.float64), labels, {**stats, "failed": dict(failed)}


def score_served(
    model: BeatClassifier, options: dict[str, Any], db_dir: Path, names: list[str], kind: str
) -> dict[str, Any]:
    """The EC57 bxb report part of ``kind`` (``served`` or ``served:N``) over ``names``, in
    AAMI classes (a fine-grained model's symbols are mapped), in the shape of the other
    input kinds' parts plus ``bxb`` (the full confusion matrix and the strip counts, with the
    misses whose beat window crosses a strip's start or end: a lone strip cannot classify
    them)."""
    context_s = served_context_seconds(kind)
    assert context_s is not None
    run_model, classes = torch_runner(model), AAMI_CLASSES
    index = {name: i for i, name in enumerate(classes)}
    total = np.zeros((len(classes) + 1,) * 2, dtype=np.int64)
    per_record: dict[str, Any] = {}
    strips: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    before_s, after_s = (n / options["model_fs"] for n in options["window"])
    for name in names:
        record = read_record(db_dir, name)
        is_beat = np.array([s in BEAT_SYMBOLS for s in record.beat_symbols], dtype=bool)
        reference = record.beat_samples[is_beat] / record.fs
        ref_class = np.array(
            [index[AAMI_MAP[s]] for s in np.asarray(record.beat_symbols)[is_beat]], np.int64
        )
        times, labels, stats = served_beats(record, run_model, options, context_s)
        given = np.array([index[AAMI_MAP.get(lab, lab)] for lab in labels], dtype=np.int64)
        matched = match_beats(reference, times)
        cm = bxb_confusion(ref_class, given, matched, len(classes))
        phase = (reference % STRIP_SECONDS)[matched < 0]  # where in its strip each miss lies
        strips["missed_near_strip_start"] += int((phase < before_s).sum())
        strips["missed_near_strip_end"] += int((phase > STRIP_SECONDS - after_s).sum())
        total += cm
        per_record[name] = bxb_metrics(cm, classes)
        failed.update(stats.pop("failed"))
        strips.update(stats)
    return {
        "classes": list(classes),
        "gross": bxb_metrics(total, classes),
        "confusion_matrix": total[:-1, :-1].tolist(),
        "per_record": per_record,
        "bxb": {
            "tolerance_s": TOLERANCE_S,
            "context_s": context_s,
            "model": "torch (the weights model.onnx is exported from, parity-checked)",
            "confusion_matrix": total.tolist(),
            "strips": {**strips, "failed": dict(failed)},
        },
    }
