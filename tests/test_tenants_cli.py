"""``paramstack tenants`` and ``paramstack keys`` through Typer's runner on a migrated SQLite home:
the key is printed once and works, lists never show it, rotate and revoke take effect."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner, Result

from paramstack.cli import keys, rag, tenants, usage
from paramstack.config import Settings
from paramstack.errors import InvalidInput, NotFound
from paramstack.gateway.usage_ledger import ledger_row
from paramstack.registry.key_material import resolve_pepper
from paramstack.registry.key_ring import InvalidApiKey, KeyRing
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tenant_tables import UsageRecord


def _invoke(settings: Settings, app: object, *args: str) -> Result:
    env = {"PARAMSTACK_HOME": str(settings.home), "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)  # type: ignore[arg-type]


def _ring(settings: Settings) -> KeyRing:
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as s:
            return KeyRing.load(s, resolve_pepper(settings))
    finally:
        engine.dispose()


def test_tenant_commands_create_show_limit_and_price(settings: Settings) -> None:
    out = _invoke(settings, tenants.app, "add", "acme", "--name", "Acme Hukuk", "--domain", "law",
                  "--rps", "5", "--tokens-per-day", "1_000_000", "--default-model", "smollm2",
                  "--json")  # fmt: skip
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["limits"]["requests_per_second"] == 5
    out = _invoke(settings, tenants.app, "set-limits", "acme", "--rps", "none", "--rpm", "120")
    assert out.exit_code == 0, out.output
    out = _invoke(settings, tenants.app, "set-price", "acme", "smollm2",
                  "--input", "0.00015", "--output", "0.0006")  # fmt: skip
    assert out.exit_code == 0 and "0.00015 in / 0.0006 out USD" in out.stdout
    shown = json.loads(_invoke(settings, tenants.app, "show", "acme", "--json").stdout)
    assert shown["limits"] == {
        "requests_per_second": None,
        "requests_per_minute": 120,
        "tokens_per_day": 1_000_000,
    }
    assert shown["prices"] == {"smollm2": {"input_per_1k": "0.00015", "output_per_1k": "0.0006"}}
    listed = _invoke(settings, tenants.app, "list")
    assert "acme" in listed.stdout and "Acme Hukuk" in listed.stdout and "120" in listed.stdout

    bad = _invoke(settings, tenants.app, "set-limits", "acme", "--rpm", "0")
    assert isinstance(bad.exception, InvalidInput)
    bad = _invoke(settings, tenants.app, "set-price", "acme", "m", "--input", "0.1234567891",
                  "--output", "1")  # fmt: skip
    assert isinstance(bad.exception, InvalidInput) and "decimal places" in bad.exception.message
    missing = _invoke(settings, tenants.app, "show", "nobody")
    assert isinstance(missing.exception, NotFound) and missing.exception.exit_code == 3


def test_key_commands_print_once_and_rotate_and_revoke(settings: Settings) -> None:
    assert _invoke(settings, tenants.app, "add", "acme", "--name", "Acme").exit_code == 0
    out = _invoke(settings, keys.app, "create", "acme", "--name", "ci", "--rpm", "30",
                  "--expires-in-days", "30")  # fmt: skip
    assert out.exit_code == 0, out.output
    key = out.stdout.strip()
    assert "not shown again" in out.stderr and key not in out.stderr
    principal = _ring(settings).authenticate(key)
    assert principal.tenant.id == "acme" and principal.requests_per_minute == 30

    listed = _invoke(settings, keys.app, "list", "--json")
    rows = json.loads(listed.stdout)
    assert [r["prefix"] for r in rows] == [principal.key_prefix]
    assert key[17:] not in listed.stdout and "hash" not in listed.stdout
    assert rows[0]["expires_at"] is not None

    rotated = _invoke(settings, keys.app, "rotate", principal.key_prefix, "--json")
    assert rotated.exit_code == 0, rotated.output
    new_key = json.loads(rotated.stdout)["key"]
    ring = _ring(settings)
    assert ring.authenticate(new_key).requests_per_minute == 30
    with pytest.raises(InvalidApiKey):
        ring.authenticate(key)

    revoked = _invoke(settings, keys.app, "revoke", new_key)  # a pasted key counts by its prefix
    assert revoked.exit_code == 0 and new_key not in revoked.stdout
    with pytest.raises(InvalidApiKey):
        _ring(settings).authenticate(new_key)
    missing = _invoke(settings, keys.app, "create", "nobody")
    assert isinstance(missing.exception, NotFound)
    both = _invoke(settings, keys.app, "create", "acme", "--expires-at", "2030-01-01",
                   "--expires-in-days", "1")  # fmt: skip
    assert isinstance(both.exception, InvalidInput)


def test_usage_report_prints_exact_costs_as_csv_and_json(settings: Settings) -> None:
    assert _invoke(settings, tenants.app, "add", "acme", "--name", "Acme").exit_code == 0
    assert _invoke(settings, tenants.app, "set-price", "acme", "m", "--input", "0.001",
                   "--output", "0.002").exit_code == 0  # fmt: skip
    key = _invoke(settings, keys.app, "create", "acme").stdout.strip()
    principal = _ring(settings).authenticate(key)
    at = datetime(2026, 11, 24, 12, tzinfo=UTC)
    rows = [
        ledger_row(
            principal,
            request_id=str(i),
            model="m",
            backend="local",
            tokens_in=333,
            tokens_out=777,
            latency_ms=10.0,
            status="ok" if i else "error",
            status_code=200 if i else 502,
            at=at,
        )
        for i in range(3)
    ]
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(session_factory(engine)) as s:
            s.execute(insert(UsageRecord), rows)
    finally:
        engine.dispose()
    window = ("--since", "2026-11-24", "--until", "2026-11-24")
    out = _invoke(settings, usage.app, "report", *window, "--format", "csv")
    assert out.exit_code == 0, out.output
    (line,) = list(csv.DictReader(io.StringIO(out.stdout)))
    assert (line["requests"], line["errors"], line["tokens_in"]) == ("3", "1", "999")
    assert line["cost"] == "0.005661"  # 3 x (333 x 0.001 + 777 x 0.002) / 1000, exactly
    data = json.loads(_invoke(settings, usage.app, "report", *window, "--format", "json").stdout)
    assert data[0]["cost"] == "0.005661" and data[0]["tenant"] == "acme"
    empty = _invoke(settings, usage.app, "report", "--since", "2026-01-01", "--until", "2026-01-02")
    assert "no usage" in empty.stdout
    bad = _invoke(settings, usage.app, "report", "--since", "yesterday")
    assert isinstance(bad.exception, InvalidInput)


def test_rag_policy_is_set_on_the_tenant_from_either_command(settings: Settings) -> None:
    out = _invoke(settings, tenants.app, "add", "acme", "--name", "A", "--rag-policy", "always")
    assert out.exit_code == 0, out.output
    assert _invoke(settings, rag.app, "policy", "-t", "acme").stdout.strip() == "acme: always"
    out = _invoke(settings, rag.app, "policy", "-t", "acme", "off")
    assert out.exit_code == 0 and out.stdout.strip() == "acme: off", out.output
    assert (
        json.loads(_invoke(settings, tenants.app, "show", "acme", "--json").stdout)["rag_policy"]
        == "off"
    )
    bad = _invoke(settings, rag.app, "policy", "-t", "acme", "sometimes")
    assert isinstance(bad.exception, InvalidInput) and "rag_policy must be one of" in str(
        bad.exception
    )
    assert isinstance(_invoke(settings, rag.app, "policy", "-t", "nobody").exception, NotFound)
