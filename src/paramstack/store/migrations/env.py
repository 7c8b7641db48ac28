"""Alembic environment: runs online against the URL (or connection) the CLI hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from paramstack.store import audit_tables as _audit_tables  # noqa: F401  (registers tables)
from paramstack.store import rag_tables as _rag_tables  # noqa: F401  (registers tables)
from paramstack.store import tenant_tables as _tenant_tables  # noqa: F401  (registers tables)
from paramstack.store import traffic_tables as _traffic_tables  # noqa: F401  (registers tables)
from paramstack.store.engine import make_engine
from paramstack.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
