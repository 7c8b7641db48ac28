"""``paramstack serve``: run the gateway with uvicorn."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from paramstack.cli.context import console, settings
from paramstack.gateway.http_protocol import SERVER_OPTIONS
from paramstack.gateway.telemetry import MULTIPROC_ENV
from paramstack.store import migrate


def serve(
    host: Annotated[str | None, typer.Option(help="Default from settings (127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Default from settings (8000).")] = None,
    workers: Annotated[int | None, typer.Option(help="uvicorn worker processes.")] = None,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Upgrade the schema before serving.")
    ] = True,
    log_level: str = "info",
) -> None:
    """Serve registered models (predict, health, metrics) on embedded defaults."""
    import uvicorn

    # Workers re-read settings from the environment, so command-line values travel that way.
    for key, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"PARAMSTACK_{key}"] = str(value)
    cfg = settings()
    if cfg.guard:  # a policy naming a missing NER pipeline: one line and exit 2, not a traceback
        _check_policy(cfg.guard_policy_file)
    if migrate_first:
        migrate.upgrade_url(cfg.resolved_database_url)
    if cfg.workers > 1 and not os.environ.get(MULTIPROC_ENV):
        metrics_dir = cfg.home / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)  # stale files would double-count
        metrics_dir.mkdir(parents=True)
        os.environ[MULTIPROC_ENV] = str(metrics_dir.resolve())
    console.print(f"paramstack gateway on http://{cfg.host}:{cfg.port} ({cfg.workers} worker(s))")
    uvicorn.run(
        "paramstack.gateway.app:served_app",
        factory=True,
        host=cfg.host,
        port=cfg.port,
        workers=cfg.workers,
        log_level=log_level,
        **SERVER_OPTIONS,
        timeout_graceful_shutdown=30,
    )


def _check_policy(path: Path | None) -> None:
    """Read the guard policy and check what it needs from outside (the Presidio extra and its
    spaCy pipeline) before uvicorn starts; the workers build the guard itself."""
    from paramstack.guard.pii_ner import ensure_available
    from paramstack.guard.policy import Policy

    policy = Policy.from_yaml(path)
    if policy.pii.presidio:
        ensure_available(policy.pii.presidio_model)
