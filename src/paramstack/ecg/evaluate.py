"""Evaluate a trained beat classifier on any annotated WFDB database (DS2 by default) and
write the report: JSON, Markdown with the published anchors side by side, and PNG plots.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from paramstack.config import Settings
from paramstack.ecg.beats import BeatSet, BeatWindow
from paramstack.ecg.bxb import bxb_markdown
from paramstack.ecg.dataset import context_seconds, load_beats
from paramstack.ecg.metrics import (
    PUBLISHED_ANCHORS,
    TARGETS,
    beats_de_chazal,
    de_chazal_beaten,
    ec57_report,
    headline,
)
from paramstack.ecg.models import BeatClassifier
from paramstack.ecg.records import (
    AAMI_CLASSES,
    INTRA_PATIENT_LABEL,
    LABEL_SCHEMES,
    SYMBOL_TO_AAMI,
    split_records,
)
from paramstack.ecg.report_plots import report_plots
from paramstack.ecg.served_eval import SERVED_NOTE, score_served, served_context_seconds
from paramstack.ecg.strip import strip_options
from paramstack.errors import InvalidInput


def predict_probabilities(
    model: BeatClassifier, data: BeatSet, batch_size: int = 1024
) -> npt.NDArray[np.float32]:
    """Softmax probabilities for every beat, in batches, without touching training state."""
    model.eval()
    parts = []
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            stop = start + batch_size
            logits = model(
                torch.from_numpy(data.beats[start:stop]), torch.from_numpy(data.rr[start:stop])
            )
            parts.append(torch.softmax(logits, dim=1).numpy())
    return np.concatenate(parts) if parts else np.zeros((0, model.n_classes), np.float32)


EVAL_INPUTS = ("record", "strip", "both", "context:N", "served", "served:N")
INPUT_LABELS = {
    "record": "whole-record inputs",
    "strip": "served 10 s strip inputs",
}
# where each scored kind goes in the report when it is not the first (top-level) one
_PART_KEYS = {"strip": "served_strip", "context": "served_context", "served": "served_bxb"}
_PLOT_SUFFIX = {"served_strip": "strip", "served_context": "context", "served_bxb": "served"}


def input_kinds(inputs: str) -> list[str]:
    """The scored input kinds of ``--inputs``: a comma list of record, strip, context:N (one),
    served or served:N (one), ``both`` meaning record,strip; the first is the report's top
    level."""
    kinds: list[str] = []
    for item in (k.strip() for k in inputs.split(",") if k.strip()):
        kinds += ["record", "strip"] if item == "both" else [item]
    contexts = [k for k in kinds if context_seconds(k) is not None]
    served = [k for k in kinds if served_context_seconds(k) is not None]
    if (
        not kinds
        or len(set(kinds)) != len(kinds)
        or len(contexts) > 1
        or len(served) > 1
        or any(k not in INPUT_LABELS and k not in contexts + served for k in kinds)
    ):
        raise InvalidInput(
            f"unknown inputs {inputs!r}; valid: a comma list of record, strip, context:N "
            "(one; N seconds of preceding context), served or served:N (one; the served path "
            "with its own detector, EC57 bxb), or both (= record,strip)",
            param="inputs",
        )
    return kinds


def input_label(kind: str) -> str:
    if (served := served_context_seconds(kind)) is not None:
        return "served path, own detector" + (f" + {served:g} s context" if served else "")
    context = context_seconds(kind)
    if context is None:
        return INPUT_LABELS[kind]
    return f"served 10 s strip + {context:g} s context inputs"


def _part_key(kind: str) -> str:
    if served_context_seconds(kind) is not None:
        return _PART_KEYS["served"]
    return _PART_KEYS["context" if context_seconds(kind) is not None else kind]


def _score(
    model: BeatClassifier, data: BeatSet, classes: tuple[str, ...], labels: str
) -> dict[str, Any]:
    """EC57 report of ``model`` on ``data`` with the headline figures and the anchors' verdict;
    fine-grained models are scored as symbols and, for the anchors, mapped to AAMI."""
    probs = predict_probabilities(model, data)
    predicted = probs.argmax(axis=1).astype(np.int64)
    report = ec57_report(data.labels, predicted, data.record, data.record_names, classes)
    if labels == "symbols":  # the same predictions scored as AAMI classes, for the anchors
        to_aami = np.asarray(SYMBOL_TO_AAMI, dtype=np.int64)
        report["symbols"] = dict(report)
        aami = ec57_report(
            to_aami[data.labels], to_aami[predicted], data.record, data.record_names, AAMI_CLASSES
        )
        report.update(aami)
    return _with_verdict(report)


def _with_verdict(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with its headline figures and de Chazal 2004's verdict."""
    figures = headline(report)
    report["headline"] = figures
    report["beats_de_chazal_2004"] = beats_de_chazal(figures)
    report["de_chazal_2004_beaten"] = de_chazal_beaten(figures)
    return report


def evaluate_model(
    out_dir: Path,
    *,
    db: Path | None = None,
    split: str = "ds2",
    records: list[str] | None = None,
    report_dir: Path | None = None,
    settings: Settings | None = None,
    inputs: str = "both",
) -> dict[str, Any]:
    """Score the model in ``out_dir`` on ``split`` of ``db`` and write the report files.

    ``inputs`` says which per-beat scalar inputs (RR, morphology, AF columns) the model reads:
    ``record`` computes them over the whole record (30 min of context, as in training),
    ``strip`` as a served 10 s strip computes them (``ecg.strip_inputs``: each beat takes its
    inputs from a 10 s strip of its record; the beat windows stay the record's), ``both``
    scores the same beats both ways: the record figures at the top level, the strip ones under
    ``served_strip`` (session 7: the DS2 looks before it described the record inputs only).
    ``context:N`` (session 7, may be listed with the others, comma-separated) computes them on
    the same 10 s strips, each served with the N s of its record before it, under
    ``served_context`` when not first.
    ``split="intra"`` scores the held-out beats of a model trained with ``intra_patient``;
    its report is labelled as inflated.
    """
    from paramstack.ecg.train import intra_patient_part, load_trained

    kinds = input_kinds(inputs)
    model, config, meta = load_trained(out_dir)
    if (split == "intra") != config.intra_patient:
        raise InvalidInput(
            "--split intra needs a model trained with intra_patient=true, and such a model "
            "can only be scored on its own held-out beats (--split intra)",
            param="split",
        )
    db_dir = Path(db or config.db)
    if split == "intra":
        names = config.records or split_records(db_dir, "all")
    else:
        names = records or split_records(db_dir, split)  # type: ignore[arg-type]
    window = BeatWindow(config.before, config.after)
    home = (settings or Settings()).home
    started = time.perf_counter()
    classes = LABEL_SCHEMES[config.labels]
    parts: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        if served_context_seconds(kind) is not None:
            if split == "intra":
                raise InvalidInput("served inputs score whole records, not --split intra",
                                   param="inputs")  # fmt: skip
            options = strip_options(meta)
            parts[kind] = _with_verdict(score_served(model, options, db_dir, names, kind))
            parts[kind].update({"scalar_inputs": kind, "inputs_label": input_label(kind)})
            continue
        data = load_beats(
            db_dir, names, config.model_fs, window, cache_dir=home / "cache" / "ecg",
            scalar_inputs=kind,
        ).labelled(config.labels)  # fmt: skip
        if split == "intra":
            data = intra_patient_part(data, config, "test")
        parts[kind] = _score(model, data, classes, config.labels)
        parts[kind].update({"scalar_inputs": kind, "inputs_label": input_label(kind)})
    report = parts[kinds[0]]
    for kind in kinds[1:]:
        report[_part_key(kind)] = parts[kind]
    report.update(
        {
            "database": str(db_dir),
            "split": split if records is None else "custom",
            "split_note": INTRA_PATIENT_LABEL if split == "intra" else "inter-patient",
            "records": names,
            "r_peaks": "the served path's detector (EC57 bxb)"
            if served_context_seconds(kinds[0]) is not None
            else "reference annotations",
            "inputs": inputs,
            "model_scalar_inputs": config.scalar_inputs,
            "model_dir": str(out_dir),
            "arch": config.arch,
            "mlflow_run_id": meta.get("training", {}).get("mlflow_run_id"),
            "targets": TARGETS,
            "anchors": PUBLISHED_ANCHORS,
            "seconds": time.perf_counter() - started,
        }
    )
    write_report(report, Path(report_dir or Path(out_dir) / f"report-{report['split']}"))
    return report


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _class_rows(classes: dict[str, Any]) -> list[str]:
    rows = []
    for name, m in classes.items():
        pct = [None if m[k] is None else 100 * m[k] for k in ("se", "ppv", "f1", "fpr")]
        rows.append(f"| {name} | {m['support']} | " + " | ".join(_fmt(v) for v in pct) + " |")
    return rows


_HEADLINE_KEYS = ("S_se", "S_ppv", "S_f1", "V_se", "V_ppv", "V_f1", "accuracy")
_STRIP_NOTE = (
    "Served 10 s strip inputs: each beat's RR, morphology and AF inputs are computed from a "
    "10 s strip of its record alone (`ecg.strip_inputs`, the code `analyze_strip` runs: the "
    "strip's own mean RR, its median beat as template, its own R peaks), as the predict "
    "endpoint computes them; the beat windows and the CNN's template channel stay the "
    "record's. Whole-record inputs use 30 min of context, which a served strip does not have."
)


_CONTEXT_NOTE = (
    "Served strip + context inputs (session 7): the same 10 s strips, each analysed with the "
    "preceding N s of its record as `context` (fewer at the record's start), as "
    "`analyze_strip(..., context=...)` and the predict endpoint's `context` field do."
)


_PER_RECORD = ("N Se", "S Se", "S +P", "V Se", "V +P")


def _sections(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The scored input kinds: the top level, then the served-strip and served-with-context
    parts when they ran."""
    return [report, *(report[key] for key in _PART_KEYS.values() if key in report)]


def _confusion(part: dict[str, Any]) -> list[str]:
    classes = part["classes"]
    lines = [
        f"Confusion matrix, {part['inputs_label']} (rows reference, columns predicted):",
        "",
        "| | " + " | ".join(classes) + " |",
        "|---" * (len(classes) + 1) + "|",
    ]
    for name, row in zip(classes, part["confusion_matrix"], strict=True):
        lines.append(f"| **{name}** | " + " | ".join(str(v) for v in row) + " |")
    return [*lines, ""]


def markdown_report(report: dict[str, Any]) -> str:
    """The human-readable report: headline vs anchors, per class, confusion, per record."""
    keys = _HEADLINE_KEYS
    sections = _sections(report)
    lines = [
        f"# ECG beat classification: {report['split']} ({report['split_note']})",
        "",
        f"Database `{report['database']}`, {len(report['records'])} records, "
        f"{report['gross']['beats']} beats, R peaks from {report['r_peaks']}; model "
        f"`{report['arch']}` from `{report['model_dir']}` (its head fitted on "
        f"{report['model_scalar_inputs']} inputs).",
        "",
        "| source | S Se | S +P | S F1 | V Se | V +P | V F1 | accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for part in sections:
        lines.append(
            f"| **this model, {part['inputs_label']}** | "
            + " | ".join(_fmt(part["headline"][k]) for k in keys)
            + " |"
        )
    for anchor in report["anchors"]:
        lines.append(f"| {anchor['source']} | " + " | ".join(_fmt(anchor[k]) for k in keys) + " |")
    lines.append("| target | " + " | ".join(_fmt(report["targets"].get(k)) for k in keys) + " |")
    lines.append("")
    for part in sections:
        beaten = part["de_chazal_2004_beaten"]
        verdict = "beats" if part["beats_de_chazal_2004"] else "does NOT beat"
        lines.append(
            f"On {part['inputs_label']} this model {verdict} de Chazal 2004 on every S and V "
            f"Se/+P figure (beaten: {', '.join(beaten) or 'none'})."
        )
        lines.append("")
    if any(part["scalar_inputs"] != "record" and "bxb" not in part for part in sections):
        lines += [_STRIP_NOTE, ""]
    if any(part["scalar_inputs"].startswith("context:") for part in sections):
        lines += [_CONTEXT_NOTE, ""]
    for part in sections:
        lines += [
            f"Per class, {part['inputs_label']}:",
            "",
            "| class | beats | Se % | +P % | F1 % | FPR % |",
            "| --- | --- | --- | --- | --- | --- |",
            *_class_rows(part["gross"]["classes"]),
            "",
        ]
    if "symbols" in report:
        lines += [
            "Fine-grained mode: the model predicts MIT-BIH beat symbols; the figures above map",
            f"them to AAMI classes. Per symbol ({report['inputs_label']}):",
            "",
            "| symbol | beats | Se % | +P % | F1 % | FPR % |",
            "| --- | --- | --- | --- | --- | --- |",
            *_class_rows(report["symbols"]["gross"]["classes"]),
            "",
        ]
    if any("bxb" in part for part in sections):
        lines += [SERVED_NOTE, ""]
    for part in sections:
        lines += bxb_markdown(part) if "bxb" in part else _confusion(part)
    header = "| record | beats |"
    for part in sections:
        tag = part["scalar_inputs"] if len(sections) > 1 else ""
        header += "".join(f" {f'{tag} {c}'.strip()} |" for c in _PER_RECORD)
    lines += [
        "Per record (Se / +P in %):",
        "",
        header,
        "| --- " * (2 + 5 * len(sections)) + "|",
    ]
    for name, rec in report["per_record"].items():
        cells = []
        for part in sections:
            c = part["per_record"][name]["classes"]
            vals = [c["N"]["se"], c["S"]["se"], c["S"]["ppv"], c["V"]["se"], c["V"]["ppv"]]
            cells += [_fmt(None if v is None else 100 * v) for v in vals]
        lines.append(f"| {name} | {rec['beats']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], folder: Path) -> Path:
    """``report.json``, ``report.md`` and the PNG plots (``report_plots``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (folder / "report.md").write_text(markdown_report(report), encoding="utf-8")
    parts = {suffix: report[key] for key, suffix in _PLOT_SUFFIX.items() if key in report}
    report_plots(report, folder, parts)
    return folder
