"""MLflow tracking to a local store under the paramstack home, or nothing when disabled.

mlflow-skinny 3.x refuses the ``file:`` store (maintenance mode), so the default is a
SQLite file, ``sqlite:///<home>/mlflow.db``, with artifacts in ``<home>/mlflow-artifacts``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from paramstack.config import Settings


class TrackingRun:
    """A thin handle so training code does not care whether MLflow is on."""

    def __init__(self, mlflow: Any | None, run_id: str | None) -> None:
        self._mlflow, self.run_id = mlflow, run_id

    def log_params(self, config: Any) -> None:
        if self._mlflow is not None:
            params = {k: str(v) for k, v in dataclasses.asdict(config).items()}
            self._mlflow.log_params(params)

    def log_metric(self, key: str, value: float, step: int) -> None:
        if self._mlflow is not None:
            self._mlflow.log_metric(key, value, step=step)

    def log_artifacts(self, folder: Path, exclude: tuple[str, ...] = ()) -> None:
        if self._mlflow is not None:
            for path in sorted(Path(folder).iterdir()):
                if path.is_file() and path.name not in exclude:
                    self._mlflow.log_artifact(str(path))


def tracking_uri(settings: Settings | None = None, uri: str | None = None) -> str:
    home = (settings or Settings()).home.resolve()
    return uri or f"sqlite:///{home / 'mlflow.db'}"


@contextlib.contextmanager
def tracking_run(config: Any, settings: Settings | None = None) -> Iterator[TrackingRun]:
    """Start an MLflow run when ``config.mlflow`` is true; the run ends with the block."""
    if not config.mlflow:
        yield TrackingRun(None, None)
        return
    import mlflow

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    home = (settings or Settings()).home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri(settings, config.mlflow_uri))
    if mlflow.get_experiment_by_name(config.experiment) is None:
        mlflow.create_experiment(
            config.experiment, artifact_location=(home / "mlflow-artifacts").as_uri()
        )
    mlflow.set_experiment(config.experiment)
    with mlflow.start_run() as run:
        yield TrackingRun(mlflow, run.info.run_id)
