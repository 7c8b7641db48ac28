"""What every command needs: settings, a registry session, and consistent output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from sqlalchemy.orm import Session

from paramstack.config import Settings
from paramstack.store.engine import make_engine, session_factory, transaction

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return Settings()


@contextmanager
def registry_session(cfg: Settings | None = None) -> Iterator[Session]:
    """A session in one transaction: everything a command writes commits together or not at all."""
    cfg = cfg or settings()
    engine = make_engine(cfg.resolved_database_url)
    try:
        with transaction(session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def fmt_float(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
