"""``paramstack guard cv-context``: the contextual second stage's experiment, on training data
and the dev latent side only (registered on the ``guard`` sub-app)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from paramstack.cli.context import print_json, settings
from paramstack.cli.guard import _data_root, _training_parts, app


def vectors_cached(texts: list[str], encoder: str, home: Path) -> Any:
    """Sentence vectors of ``texts`` by ``encoder``, cached under ``<home>/guard`` by the
    texts' SHA-256 (the encoders are frozen: one pass over the training rows)."""
    from paramstack.guard.context_encoder import encoder_named

    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = home / "guard" / f"context_vectors.{encoder}.{digest}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    vectors = encoder_named(encoder, home)(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors, allow_pickle=False)
    return vectors


@app.command("cv-context")
def cv_context(
    data: Annotated[Path | None, typer.Option(help="Unpacked data root (fetch-data).")] = None,
    out: Annotated[Path, typer.Option(help="JSON report.")] = Path("guard-cv-context.json"),
    folds: int = 4,
    epochs: int = 150,
    per_family: int = 150,
    band: Annotated[float, typer.Option(help="Stage-2 band, logits around threshold.")] = 2.0,
    model: Annotated[
        Path | None, typer.Option(help="Stage-1 model for the dev side; default <home>/guard/.")
    ] = None,
    cv: Annotated[bool, typer.Option(help="Run the CV (else the dev side only).")] = True,
    rescue_only: Annotated[
        bool, typer.Option(help="Stage 2 may only add flags (asked when stage 1 says benign).")
    ] = False,
    encoder: Annotated[str, typer.Option(help="use-m3 | minilm | e5-small.")] = "minilm",
    head: Annotated[
        str,
        typer.Option(
            help="replace: the head's verdict replaces stage 1's in the band (session 5); "
            "stacked: a head on [stage-1 logit, vector], A / M1 / M2 (round 5)."
        ),
    ] = "replace",
) -> None:
    """Template-grouped CV of the detector without / with the contextual second stage, and
    the dev latent side both ways. ``--head replace``: shipped n-gram model on the dev side,
    head written to ``<home>/guard/injection_context_head.npz``; ``--head stacked``: every
    variant fitted on the training rows as in a fold, its M1 head written to
    ``<home>/guard/injection_stack_head.npz`` (for ``bench/guard_context.py``)."""
    from paramstack.guard.context_encoder import ENCODERS

    if encoder not in ENCODERS:
        raise typer.BadParameter(f"--encoder must be one of {', '.join(ENCODERS)}")
    if head not in ("replace", "stacked"):
        raise typer.BadParameter("--head must be replace or stacked")
    if head == "stacked":
        _stacked(data, out, folds, epochs, per_family, band, encoder)
        return
    from paramstack.guard.channel_cv import summarise
    from paramstack.guard.context_cv import ContextCvConfig, context_cv, fit_stages
    from paramstack.guard.context_stage import ContextualDetector, cached_encoder
    from paramstack.guard.datasets import latent_set
    from paramstack.guard.injection import InjectionDetector
    from paramstack.guard.injection_model import InjectionModel

    root = _data_root(data)
    guard_dir = settings().home / "guard"
    rows, channel, _ = _training_parts(root, per_family, True)
    dev = latent_set(root, "dev")  # studied while building: not held out
    judged = rows + channel + dev
    vectors = vectors_cached([r.text for r in judged], encoder, settings().home)
    cfg = ContextCvConfig(folds, epochs, band=band, rescue_only=rescue_only)
    n_cv = len(rows) + len(channel)
    report: dict[str, Any] = {"cv": context_cv(rows, channel, vectors[:n_cv], cfg)} if cv else {}
    # head fit and thresholds set as in a fold (inner template hold-out): the shipped
    # n-gram model saw every row, so its scores on them would set the band's rows wrongly
    _, fitted = fit_stages(rows, vectors[: len(rows)], cfg)
    fitted.save(guard_dir / "injection_context_head.npz")
    shipped = InjectionModel.load(model or guard_dir / "injection_model.npz")
    first = InjectionDetector(shipped)
    lookup = {r.text: vectors[n_cv + i] for i, r in enumerate(dev)}
    second = ContextualDetector(first, fitted, cached_encoder(lookup), rescue_only=rescue_only)
    report["dev"] = {
        "off": summarise(dev, [first.detect(r.text) is not None for r in dev]),
        "on": summarise(dev, [second.detect(r.text) is not None for r in dev]),
        "stage2_share": round(second.asked / max(1, len(dev)), 3),
    }
    out.write_text(json.dumps(report, indent=2))
    print_json(report)


def _stacked(
    data: Path | None,
    out: Path,
    folds: int,
    epochs: int,
    per_family: int,
    band: float,
    encoder: str,
) -> None:
    """Round 5: A, M1 (band) and M2 (every input) in one template-grouped CV + dev side."""
    from paramstack.guard.context_stack_cv import StackCvConfig, stack_cv
    from paramstack.guard.datasets import latent_set

    root = _data_root(data)
    rows, channel, _ = _training_parts(root, per_family, True)
    dev = latent_set(root, "dev")  # studied while building: not held out
    texts = [r.text for r in rows + channel + dev]
    vectors = vectors_cached(texts, encoder, settings().home)
    cfg = StackCvConfig(folds, epochs, band=band, encoder=encoder)
    head_path = settings().home / "guard" / "injection_stack_head.npz"
    report = stack_cv(rows, channel, dev, vectors, cfg, save_head=head_path)
    report["encoder"] = encoder
    report["rows"] = {"whole": len(rows), "channel": len(channel), "dev": len(dev)}
    out.write_text(json.dumps(report, indent=2))
    print_json(report)
