"""The log writer's insert paths write what the ORM would, on SQLite and PostgreSQL.

Uniform batches (every usage-ledger row has the same keys) take a Core insert, with the
``cost`` attribute written to its ``cost_e12`` column; a batch whose rows differ in keys (a
row leaving a defaulted column out) keeps the ORM bulk insert. Both read back exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

from paramstack.gateway.log_writer import LogWriter, _plain_insert
from paramstack.store import migrate
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tenant_tables import UsageRecord

AT = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)


def _row(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": f"req-{n}",
        "tenant_id": "acme",
        "key_id": None,
        "model": "m",
        "backend": "openai-compatible",
        "routing": None if n % 2 else '{"route":"local"}',
        "tokens_in": n,
        "tokens_out": 2 * n,
        "latency_ms": 1.5 * n,
        "status": "ok",
        "status_code": 200,
        "day": AT.date(),
        **extra,
    }


def _written(engine: Engine) -> list[tuple[Any, ...]]:
    with session_factory(engine)() as session:
        records = session.scalars(select(UsageRecord).order_by(UsageRecord.request_id)).all()
        return [
            (r.request_id, r.tokens_in, r.tokens_out, r.cost, r.currency, r.routing, r.day)
            for r in records
        ]


def test_uniform_and_mixed_batches_write_the_same_rows(engine: Engine) -> None:
    writer = LogWriter(session_factory(engine))
    uniform = [
        _row(n, cost=Decimal("0.000001234567") * n, currency="EUR", created_at=AT)
        for n in range(1, 5)
    ]
    # the second row leaves cost, currency and created_at to their column defaults
    mixed = [
        _row(5, cost=Decimal("1.5"), currency="USD", created_at=AT),
        _row(6),
    ]
    for row in uniform:
        writer.submit(UsageRecord, row)
    writer.flush()  # one uniform batch: the Core insert
    for row in mixed:
        writer.submit(UsageRecord, row)
    writer.close()  # one mixed batch: the ORM bulk insert
    assert writer.written == 6 and writer.dropped == 0
    rows = _written(engine)
    assert rows[:4] == [
        (f"req-{n}", n, 2 * n, Decimal("0.000001234567") * n, "EUR", r, date(2026, 11, 24))
        for n, r in zip(range(1, 5), [None, '{"route":"local"}'] * 2, strict=True)
    ]
    assert rows[4] == ("req-5", 5, 10, Decimal("1.5"), "USD", None, date(2026, 11, 24))
    assert rows[5] == ("req-6", 6, 12, Decimal(0), "USD", '{"route":"local"}', date(2026, 11, 24))


def test_sqlite_plain_insert_stores_what_the_core_insert_stores(tmp_path: Path) -> None:
    """On SQLite a uniform batch giving every column is sent as multi-row INSERTs of
    SQLAlchemy's compiled statement with its bind processors: the stored values (dates,
    timestamps, fixed-point cost) must equal, column for column, what a Core insert stores."""
    rows = [  # three multi-row statements of 66 rows (999 variables), the last one partial
        _row(n, cost=Decimal("0.000001234567") * n, currency="EUR", created_at=AT, key_id=n)
        for n in range(1, 151)
    ]
    engines = []
    for name in ("plain", "core"):
        eng = make_engine(f"sqlite:///{tmp_path / name}.db")
        migrate.upgrade(eng)
        engines.append(eng)
    assert _plain_insert(UsageRecord, frozenset(rows[0]), engines[0].dialect) is not None
    writer = LogWriter(session_factory(engines[0]))
    for row in rows:
        writer.submit(UsageRecord, dict(row))
    writer.close()
    with transaction(session_factory(engines[1])) as session:
        session.execute(insert(UsageRecord.__table__), [_renamed(r) for r in rows])
    stored = []
    for eng in engines:
        with eng.connect() as conn:
            result = conn.exec_driver_sql("SELECT * FROM usage_ledger ORDER BY request_id")
            stored.append([r._asdict() | {"id": None} for r in result])
        eng.dispose()
    assert len(stored[0]) == 150 and stored[0] == stored[1]
    by_request = {r["request_id"]: r["cost_e12"] for r in stored[0]}
    assert by_request == {f"req-{n}": 1_234_567 * n for n in range(1, 151)}


def _renamed(row: dict[str, Any]) -> dict[str, Any]:
    return {("cost_e12" if k == "cost" else k): v for k, v in row.items()}
