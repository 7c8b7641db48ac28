"""Tenants, price books and the usage ledger on SQLite and PostgreSQL: the migration matches the
models, limits and prices round-trip exactly, and ledger costs sum to the cent and beyond."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, text

from paramstack.errors import Conflict, InvalidInput, NotFound
from paramstack.gateway.log_writer import LogWriter
from paramstack.gateway.usage_ledger import ledger_row
from paramstack.registry import tenants
from paramstack.registry.api_keys import KeySpec, create_key
from paramstack.registry.key_material import Pepper
from paramstack.registry.key_ring import KeyRing
from paramstack.registry.tenants import TenantSpec
from paramstack.registry.usage import usage_report
from paramstack.store import migrate
from paramstack.store.engine import session_factory, transaction
from paramstack.store.tables import Base
from paramstack.store.tenant_tables import UsageRecord

OUR_TABLES = {"tenants", "tenant_prices", "api_keys", "usage_ledger"}
PEPPER = Pepper(b"p" * 32)


def _our_diffs(engine: Engine) -> list[tuple[str, str]]:
    """Autogenerate's differences between the database and the models, for our tables."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, Base.metadata)
    found = []
    for diff in diffs:
        op = diff[0] if isinstance(diff, list) else diff
        kind, target = op[0], op[1]
        if kind in ("add_table", "remove_table"):
            table = target.name
        elif kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
            table = target.table.name
        elif kind in ("add_fk", "remove_fk"):
            table = target.parent.name
        else:  # add_column, remove_column, modify_*: (kind, schema, table, ...)
            table = op[2]
        if table in OUR_TABLES:
            found.append((kind, table))
    return found


def test_migration_matches_the_models_and_downgrades_cleanly(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= OUR_TABLES
    assert _our_diffs(engine) == []
    migrate.downgrade(engine, "0002")
    assert not OUR_TABLES & set(inspect(engine).get_table_names())
    assert {t for kind, t in _our_diffs(engine) if kind == "add_table"} == OUR_TABLES
    migrate.upgrade(engine)
    assert _our_diffs(engine) == []


def test_tenants_are_validated_listed_and_their_limits_change(engine: Engine) -> None:
    factory = session_factory(engine)
    with transaction(factory) as s:
        created = tenants.create_tenant(
            s, TenantSpec(id="acme", name="Acme Hukuk", domain="law", requests_per_second=5,
                          tokens_per_day=1_000_000, default_model="smollm2",
                          rag_collection="acme-docs"),
        )  # fmt: skip
        assert created.active and created.currency == "USD"
        tenants.create_tenant(s, TenantSpec(id="beta", name="Beta"))
    with pytest.raises(Conflict), transaction(factory) as s:
        tenants.create_tenant(s, TenantSpec(id="acme", name="again"))
    for bad in (TenantSpec(id="Acme!", name="x"), TenantSpec(id="ok", name=" "),
                TenantSpec(id="ok", name="x", requests_per_minute=0),
                TenantSpec(id="ok", name="x", currency="usd")):  # fmt: skip
        with pytest.raises(InvalidInput), transaction(factory) as s:
            tenants.create_tenant(s, bad)
    with transaction(factory) as s:
        tenants.set_limits(s, "acme", {"requests_per_minute": 120, "requests_per_second": None})
        with pytest.raises(InvalidInput):
            tenants.set_limits(s, "acme", {"tokens_per_hour": 5})
        with pytest.raises(NotFound):
            tenants.set_limits(s, "nobody", {"requests_per_minute": 1})
    with factory() as s:
        info = tenants.describe_tenant(tenants.get_tenant(s, "acme"))
        assert [t.id for t in tenants.list_tenants(s)] == ["acme", "beta"]
    assert info["limits"] == {
        "requests_per_second": None,
        "requests_per_minute": 120,
        "tokens_per_day": 1_000_000,
    }
    assert (info["default_model"], info["rag_collection"]) == ("smollm2", "acme-docs")


def test_rag_policy_defaults_by_collection_validates_and_reaches_the_key_ring(
    engine: Engine,
) -> None:
    factory = session_factory(engine)
    pepper = PEPPER
    with transaction(factory) as s:
        tenants.create_tenant(s, TenantSpec(id="acme", name="Acme", rag_collection="docs"))
        tenants.create_tenant(s, TenantSpec(id="beta", name="Beta"))
        tenants.create_tenant(s, TenantSpec(id="gamma", name="Gamma", rag_policy="always"))
        secret = create_key(s, "beta", KeySpec(), pepper).plaintext
    with pytest.raises(InvalidInput), transaction(factory) as s:
        tenants.create_tenant(s, TenantSpec(id="delta", name="D", rag_policy="sometimes"))
    with pytest.raises(InvalidInput), transaction(factory) as s:
        tenants.update_tenant(s, "acme", {"rag_policy": "never"})
    with factory() as s:
        shown = {t.id: tenants.describe_tenant(t)["rag_policy"] for t in tenants.list_tenants(s)}
        ring = KeyRing.load(s, pepper)
    assert shown == {"acme": "auto", "beta": "off", "gamma": "always"}
    assert ring.authenticate(secret).tenant.rag_policy == "off"
    with transaction(factory) as s:
        tenants.update_tenant(s, "beta", {"rag_policy": "always"})
    with factory() as s:
        assert KeyRing.load(s, pepper).authenticate(secret).tenant.rag_policy == "always"


def test_price_book_round_trips_decimal_exact(engine: Engine) -> None:
    factory = session_factory(engine)
    with transaction(factory) as s:
        tenants.create_tenant(s, TenantSpec(id="acme", name="Acme", currency="TRY"))
        tenants.set_price(s, "acme", "gpt-x", Decimal("0.000000001"), Decimal("123456.123456789"))
        tenants.set_price(s, "acme", "local", Decimal("0.1"), Decimal("0.3"))
        tenants.set_price(s, "acme", "local", Decimal("0.2"), Decimal("0.6"))  # replaces
        for bad in ("0.0000000001", "-1", "NaN", "abc"):
            with pytest.raises(InvalidInput):
                tenants.set_price(s, "acme", "m", tenants.parse_price(bad, "p"), Decimal(0))
    with factory() as s:
        prices = {p.model: p for p in tenants.get_tenant(s, "acme").prices}
    assert prices["gpt-x"].input_per_1k == Decimal("0.000000001")
    assert prices["gpt-x"].output_per_1k == Decimal("123456.123456789")
    assert (prices["local"].input_per_1k, prices["local"].output_per_1k) == (
        Decimal("0.2"),
        Decimal("0.6"),
    )
    with factory() as s:
        described = tenants.describe_tenant(tenants.get_tenant(s, "acme"))
    assert described["prices"]["local"] == {"input_per_1k": "0.2", "output_per_1k": "0.6"}
    assert described["prices"]["gpt-x"]["input_per_1k"] == "0.000000001"


def test_ledger_rows_go_through_the_batched_writer_and_costs_sum_exactly(
    engine: Engine,
) -> None:
    factory = session_factory(engine)
    with transaction(factory) as s:
        tenants.create_tenant(s, TenantSpec(id="acme", name="Acme"))
        tenants.set_price(s, "acme", "smollm2", Decimal("0.000150"), Decimal("0.000600"))
        tenants.set_price(s, "acme", "claude", Decimal("0.003"), Decimal("0.015"))
        key = create_key(s, "acme", KeySpec(name="app"), PEPPER)
    with factory() as s:
        principal = KeyRing.load(s, PEPPER).authenticate(key.plaintext)
    rng = random.Random(5)
    day1 = datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC)
    rows = [
        ledger_row(
            principal,
            request_id=f"req-{i}",
            model=rng.choice(["smollm2", "claude", "unpriced"]),
            backend="local",
            tokens_in=rng.randint(1, 4000),
            tokens_out=rng.randint(0, 2000),
            latency_ms=rng.random() * 100,
            status="ok",
            status_code=200,
            routing="simple->local",
            at=day1 + timedelta(seconds=i % 2),
        )
        for i in range(600)
    ]
    writer = LogWriter(factory, interval_s=0.02, batch_size=128)
    writer.start()
    for row in rows:
        writer.submit(UsageRecord, row)
    writer.close()
    assert (writer.written, writer.dropped) == (600, 0)
    expected: dict[tuple[str, str], Decimal] = {}
    for row in rows:
        group = (row["day"].isoformat(), row["model"])
        expected[group] = expected.get(group, Decimal(0)) + row["cost"]
    with factory() as s:
        report = s.execute(
            select(UsageRecord.day, UsageRecord.model, func.sum(UsageRecord.cost))
            .where(UsageRecord.tenant_id == "acme")
            .group_by(UsageRecord.day, UsageRecord.model)
        ).all()
        raw_total = s.scalar(text("SELECT SUM(cost_e12) FROM usage_ledger"))
    # SUM over the FixedPoint column comes back as Decimal: exact to 1e-12, no float anywhere
    got = {(str(day), model): total for day, model, total in report}
    assert got == expected and all(isinstance(v, Decimal) for v in got.values())
    assert {day for day, _ in got} == {"2026-11-23", "2026-11-24"}
    assert expected[("2026-11-23", "unpriced")] == 0
    assert Decimal(int(raw_total)).scaleb(-12) == sum(r["cost"] for r in rows)
    assert all(r["key_id"] == principal.key_id for r in rows)
    with factory() as s:
        lines = usage_report(
            s, since=date(2026, 11, 23), until=date(2026, 11, 24), tenant_id="acme"
        )
        assert usage_report(s, since=date(2026, 11, 25), until=date(2026, 11, 30)) == []
        with pytest.raises(InvalidInput):
            usage_report(s, since=date(2026, 11, 25), until=date(2026, 11, 24))
    assert {(line.day.isoformat(), line.model): line.cost for line in lines} == expected
    assert sum(line.requests for line in lines) == 600
    assert sum(line.tokens_out for line in lines) == sum(r["tokens_out"] for r in rows)
    assert lines[0].as_dict()["cost"] == format(lines[0].cost.normalize(), "f")
