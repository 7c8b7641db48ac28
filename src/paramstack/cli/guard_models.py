"""``paramstack guard cv-models``: which whole-prompt classifier (linear or wide-and-deep, with
or without sentence windows) serves, decided on training data and the dev latent side only
(registered on the ``guard`` sub-app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from paramstack.cli.context import print_json
from paramstack.cli.guard import _data_root, _training_parts, app


@app.command("cv-models")
def cv_models(
    data: Annotated[Path | None, typer.Option(help="Unpacked data root (fetch-data).")] = None,
    out: Annotated[Path, typer.Option(help="JSON report.")] = Path("guard-cv-models.json"),
    folds: int = 4,
    epochs: int = 150,
    per_family: int = 150,
    kinds: Annotated[
        str, typer.Option(help="Comma-separated: linear, deep; ':aug' fits benign windows too.")
    ] = "linear,deep",
    windows: Annotated[str, typer.Option(help="Comma-separated window widths (0 = off).")] = "0,3",
    dev: Annotated[bool, typer.Option(help="Also judge the dev latent side.")] = True,
    calibrations: Annotated[
        str,
        typer.Option(help="Window thresholds: holdout, matched (to the whole text's FPR), byfold."),
    ] = "holdout",
) -> None:
    """Template-grouped CV of the detector (channels off) per model kind and window width,
    and each variant on the dev latent side."""
    from paramstack.guard.datasets import latent_set
    from paramstack.guard.model_cv import ModelCvConfig, model_cv

    kind_list = tuple(k.strip() for k in kinds.split(",") if k.strip())
    known = ("linear", "deep", "linear:aug", "deep:aug")
    if not kind_list or any(k not in known for k in kind_list):
        raise typer.BadParameter(f"--kinds must be among {', '.join(known)}; got {kinds!r}")
    try:
        widths = tuple(int(w) for w in windows.split(","))
    except ValueError as exc:
        raise typer.BadParameter(f"--windows must be integers, got {windows!r}") from exc
    if any(w < 0 or w == 1 for w in widths):
        raise typer.BadParameter("window widths must be 0 (off) or >= 2")
    cal_list = tuple(c.strip() for c in calibrations.split(",") if c.strip())
    if not cal_list or any(c not in ("holdout", "matched", "byfold") for c in cal_list):
        raise typer.BadParameter(
            f"--calibrations: holdout, matched and/or byfold; got {calibrations!r}"
        )
    root = _data_root(data)
    rows, channel, _ = _training_parts(root, per_family, True)
    dev_rows = latent_set(root, "dev") if dev else []  # studied while building: not held out
    cfg = ModelCvConfig(folds, epochs, kinds=kind_list, windows=widths, calibrations=cal_list)
    report = model_cv(rows, channel, dev_rows, cfg)
    out.write_text(json.dumps(report, indent=2))
    print_json(report)
