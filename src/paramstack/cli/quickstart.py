"""``paramstack quickstart``: the main job on embedded defaults — migrate, train the demo digits
classifier, export it to ONNX with a parity check, register it and promote it to production."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from paramstack import __version__
from paramstack.attest.keys import KeyStore
from paramstack.cli.context import console, registry_session, settings
from paramstack.cli.quickstart_llm import setup_local_llm
from paramstack.config import Settings
from paramstack.errors import NotFound
from paramstack.registry import versions as registry
from paramstack.registry.versions import Registration
from paramstack.store import migrate
from paramstack.store.tables import Stage

DEMO_MODEL = "digits"


def ensure_attest_key(cfg: Settings) -> None:
    """Embedded default: a signing key whose passphrase sits in <home>/secrets (0600), so
    predictions are signed out of the box. Production sets PARAMSTACK_ATTEST_PASSPHRASE."""
    passphrase = cfg.resolved_attest_passphrase()
    if passphrase is None:
        passphrase = secrets.token_urlsafe(32)
        cfg.passphrase_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        cfg.passphrase_file.touch(mode=0o600)
        cfg.passphrase_file.write_text(passphrase)
    store = KeyStore(cfg.resolved_attest_keys_dir, passphrase)
    if not store.jwks()["keys"]:
        console.print(f"created attestation key {store.rotate()}")


def quickstart(
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 8,
    force: Annotated[bool, typer.Option(help="Retrain even if a matching model serves.")] = False,
    llm: Annotated[
        bool, typer.Option(help="Also serve the offline base LLM in-process, with a demo tenant.")
    ] = True,
    base_model: Annotated[
        Path | None, typer.Option(help="Base model directory [fetched into <home>/models/base].")
    ] = None,
) -> None:
    """Build and register the demo classifier, and (``--llm``) set up the local LLM and a demo
    tenant, so `paramstack serve` has real models on both kinds of route."""
    from paramstack.vision.train_digits import DigitsTrainConfig, export_digits_onnx, train_digits

    cfg = settings()
    migrate.upgrade_url(cfg.resolved_database_url)
    ensure_attest_key(cfg)
    if llm:
        setup_local_llm(cfg, base_model)
    config = DigitsTrainConfig(epochs=epochs)
    with registry_session(cfg) as session:
        try:
            current = registry.get_version(session, DEMO_MODEL, stage=Stage.PRODUCTION)
        except NotFound:
            current = None
        if current is not None and not force and current.lineage.get("config") == asdict(config):
            console.print(f"{DEMO_MODEL} v{current.version} already serves; --force to retrain")
            return

    console.print(f"training the {DEMO_MODEL} CNN on scikit-learn digits ({epochs} epochs, CPU)")
    with Progress(
        TextColumn("[bold]train"), BarColumn(), TextColumn("epoch {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), console=console,
    ) as bar:  # fmt: skip
        task = bar.add_task("train", total=epochs, loss=float("nan"))
        trained = train_digits(
            config, progress=lambda epoch, loss: bar.update(task, completed=epoch, loss=loss)
        )
    out_dir = cfg.home / "build" / DEMO_MODEL
    artifact = export_digits_onnx(trained, out_dir)
    meta = artifact.meta
    console.print(
        f"held-out accuracy {trained.accuracy:.4f}, macro F1 {trained.f1:.4f}, "
        f"ONNX parity max |Δ| {meta['metrics']['parity_max_abs_diff']:.2e}"
    )
    with registry_session(cfg) as session:
        version = registry.register(
            session,
            Registration(
                name=DEMO_MODEL,
                artifact=artifact.onnx_path,
                type="onnx",
                domain="vision",
                description="Demo CNN on scikit-learn digits (ImageNet-normalised RGB input).",
                class_labels=list(meta["class_labels"]),
                input_shape=list(meta["input_shape"]),
                output_shape=list(meta["output_shape"]),
                metrics=dict(meta["metrics"]),
                lineage={
                    "dataset": meta["dataset"],
                    "data_hash": meta["data_hash"],
                    "config": meta["config"],
                    "training_run_id": uuid.uuid4().hex,
                    "code_version": __version__,
                    "torch_version": meta["torch_version"],
                },
            ),
            cfg.resolved_artifacts_dir,
        )
        registry.set_stage(session, DEMO_MODEL, version.version, Stage.PRODUCTION)
        number = version.version
    console.print(f"registered {DEMO_MODEL} v{number} → production")
    console.print(
        "try it:  paramstack serve  then  curl -F file=@digit.png "
        f"http://{cfg.host}:{cfg.port}/v1/models/{DEMO_MODEL}/predict"
    )
