"""``paramstack db``: schema migrations."""

from __future__ import annotations

import typer

from paramstack.cli.context import console, settings
from paramstack.store import migrate
from paramstack.store.engine import make_engine

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or upgrade the schema (SQLite by default, PostgreSQL by URL)."""
    cfg = settings()
    engine = make_engine(cfg.resolved_database_url)
    try:
        migrate.upgrade(engine, revision)
        console.print(f"schema at [bold]{migrate.current_revision(engine)}[/] ({engine.url!r})")
    finally:
        engine.dispose()


@app.command()
def current() -> None:
    """Show the schema revision of the database and the newest one this code knows."""
    engine = make_engine(settings().resolved_database_url)
    try:
        console.print(
            f"database: {migrate.current_revision(engine)}  code: {migrate.head_revision()}"
        )
    finally:
        engine.dispose()
