"""Traffic splits in the registry (SQLite and PostgreSQL), their ledger statistics and the
``paramstack traffic`` CLI, whose every change enters the audit chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select
from typer.testing import CliRunner, Result

from paramstack.attest.chain import verify_chain
from paramstack.cli import audit, traffic
from paramstack.config import Settings
from paramstack.errors import Conflict, InvalidInput, NotFound
from paramstack.registry import traffic as registry
from paramstack.registry.traffic import SplitSpec
from paramstack.registry.traffic_stats import arm_usage
from paramstack.store import migrate
from paramstack.store.audit_tables import AuditEntry
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tables import Base
from paramstack.store.tenant_tables import UsageRecord
from paramstack.store.traffic_tables import SplitKind, SplitStatus

CANARY = SplitSpec(stable="chat-v1", candidate="chat-v2", candidate_percent=10,
                   max_error_rate=0.2, max_p95_ms=500, window_s=60, min_requests=5)  # fmt: skip


def test_migration_matches_the_tables(engine: Engine) -> None:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diffs if "traffic" in repr(d)]
    assert ours == []
    migrate.downgrade(engine, "0003")
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_set_promote_rollback_stop_keep_a_history(engine: Engine) -> None:
    factory = session_factory(engine)
    with transaction(factory) as s:
        split = registry.set_split(
            s, "chat", CANARY, actor="t", known_models=["chat-v1", "chat-v2"]
        )
        assert (split.status, split.revision, split.kind) == (
            SplitStatus.RUNNING, 1, SplitKind.CANARY,
        )  # fmt: skip
    with transaction(factory) as s:
        views = registry.load_views(s)
        assert views["chat"].guarded and views["chat"].percent == 10
        back = registry.rollback(s, "chat", actor="slo", reason="error rate 0.5 > 0.2")
        assert (back.candidate_percent, back.status) == (0.0, SplitStatus.ROLLED_BACK)
        with pytest.raises(Conflict):
            registry.rollback(s, "chat", actor="slo", reason="again")
        with pytest.raises(Conflict):
            registry.promote(s, "chat", actor="t")
    with transaction(factory) as s:  # set again: running, then promoted
        registry.set_split(s, "chat", CANARY, actor="t")
        promoted = registry.promote(s, "chat", actor="t", reason="good numbers")
        assert (promoted.stable, promoted.candidate_percent) == ("chat-v2", 0.0)
        assert registry.load_views(s)["chat"].splitting is False
    with transaction(factory) as s:
        registry.stop(s, "chat", actor="t")
        assert registry.load_views(s) == {}
        with pytest.raises(Conflict):
            registry.stop(s, "chat", actor="t")
    with factory() as s:
        info = registry.describe_split(registry.get_split(s, "chat"), history=True)
    assert [e["action"] for e in info["history"]] == ["set", "rollback", "set", "promote", "stop"]
    assert info["history"][1]["reason"] == "error rate 0.5 > 0.2"
    assert info["revision"] == 5


BAD = [
    ({"candidate": "chat-v1"}, "candidate"),
    ({"candidate_percent": 101}, "candidate_percent"),
    ({"max_error_rate": 1.5}, "max_error_rate"),
    ({"window_s": 0}, "window_s"),
    ({"min_requests": 0}, "min_requests"),
    ({"kind": SplitKind.AB}, "kind"),  # an SLO on an A/B split
    ({"stable": "nope"}, "stable"),  # not in the model table
]


def test_bad_splits_are_refused_and_write_nothing(engine: Engine) -> None:
    known = ["chat-v1", "chat-v2"]
    for change, param in BAD:
        spec = SplitSpec(**{**vars(CANARY), **change})  # type: ignore[arg-type]
        with pytest.raises(InvalidInput) as err, transaction(session_factory(engine)) as s:
            registry.set_split(s, "chat", spec, actor="t", known_models=known)
        assert err.value.param == param, change
    with pytest.raises(InvalidInput) as err, transaction(session_factory(engine)) as s:
        registry.set_split(s, "bad name/with slash", CANARY, actor="t")
    assert err.value.param == "name"
    with session_factory(engine)() as s:
        assert registry.list_splits(s) == []
        with pytest.raises(NotFound):
            registry.get_split(s, "chat")


def _ledger(arm: str, model: str, status: int, latency: float, at: datetime) -> UsageRecord:
    routing = {"traffic": {"split": "chat", "arm": arm, "target": model}, "router": {"band": "x"}}
    return UsageRecord(
        request_id=f"r-{arm}-{latency}", tenant_id="acme", key_id=1, model=model,
        backend="openai-compatible", routing=json.dumps(routing), tokens_in=10, tokens_out=5,
        cost=Decimal("0.001"), currency="USD", latency_ms=latency, status="ok" if status < 400
        else "upstream_error", status_code=status, day=at.date(), created_at=at,
    )  # fmt: skip


def test_arm_usage_from_the_ledger(engine: Engine) -> None:
    factory = session_factory(engine)
    now = datetime.now(UTC)
    with transaction(factory) as s:
        split = registry.set_split(s, "chat", CANARY, actor="t")
        split.started_at = now - timedelta(minutes=5)
        s.add_all([_ledger("stable", "chat-v1", 200, float(ms), now) for ms in range(1, 21)])
        before = now - timedelta(hours=1)
        s.add_all([_ledger("candidate", "chat-v2", 200, 50.0, now),
                   _ledger("candidate", "chat-v2", 502, 70.0, now),
                   _ledger("candidate", "chat-v2", 502, 90.0, before)])  # fmt: skip
        s.add(UsageRecord(**{**_row_without_routing(now)}))
    with factory() as s:
        usage = arm_usage(s, registry.get_split(s, "chat"))
    stable, candidate = usage["stable"], usage["candidate"]
    assert (stable.requests, stable.errors, stable.targets) == (20, 0, ("chat-v1",))
    assert stable.p95_latency_ms == pytest.approx(19.05)
    assert stable.cost == Decimal("0.020") and stable.tokens_in == 200
    # the row from before the split started is not counted
    assert (candidate.requests, candidate.errors, candidate.error_rate) == (2, 1, 0.5)
    assert candidate.mean_latency_ms == 50.0  # failed calls are not in the latency figures


def _row_without_routing(at: datetime) -> dict[str, object]:
    return {"request_id": "plain", "tenant_id": "acme", "key_id": 1, "model": "chat-v1",
            "backend": "openai-compatible", "routing": None, "tokens_in": 1, "tokens_out": 1,
            "cost": Decimal(0), "currency": "USD", "latency_ms": 1.0, "status": "ok",
            "status_code": 200, "day": at.date(), "created_at": at}  # fmt: skip


def _invoke(settings: Settings, app: object, *args: str) -> Result:
    env = {"PARAMSTACK_HOME": str(settings.home), "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)  # type: ignore[arg-type]


def test_cli_changes_are_audited_and_the_chain_verifies(settings: Settings, tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  - {name: chat-v1, base_url: http://x/v1}\n"
                      "  - {name: chat-v2, base_url: http://x/v1}\n")  # fmt: skip
    cfg = ["chat", "--stable", "chat-v1", "--candidate", "chat-v2", "--percent", "20",
           "--max-error-rate", "0.1", "--min-requests", "5", "--json"]  # fmt: skip
    env = {"PARAMSTACK_HOME": str(settings.home), "PARAMSTACK_LLM_MODELS_FILE": str(models)}
    runner = CliRunner()
    out = runner.invoke(traffic.app, ["set", *cfg], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["candidate_percent"] == 20
    typo = runner.invoke(
        traffic.app, ["set", "chat", "--stable", "chat-v1", "--candidate", "chat-v3"], env=env
    )
    assert isinstance(typo.exception, InvalidInput)
    out = _invoke(settings, traffic.app, "rollback", "chat", "--reason", "manual test", "--json")
    assert json.loads(out.stdout)["status"] == "rolled_back", out.output
    again = _invoke(settings, traffic.app, "promote", "chat")
    assert isinstance(again.exception, Conflict)
    assert _invoke(settings, traffic.app, "set", *cfg).exit_code == 0
    assert _invoke(settings, traffic.app, "promote", "chat").exit_code == 0
    shown = _invoke(settings, traffic.app, "show", "chat")
    assert "promote" in shown.stdout and "manual test" in shown.stdout
    listed = _invoke(settings, traffic.app, "list")
    assert "chat-v2" in listed.stdout and "promoted" in listed.stdout
    stats = _invoke(settings, traffic.app, "stats", "chat", "--json")
    assert json.loads(stats.stdout)["arms"]["candidate"]["requests"] == 0
    assert _invoke(settings, traffic.app, "stop", "chat").exit_code == 0
    missing = _invoke(settings, traffic.app, "show", "nothing")
    assert isinstance(missing.exception, NotFound)
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as s:
            kinds = [e.kind for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
            payload = (
                s.scalars(select(AuditEntry).where(AuditEntry.kind == "traffic_rollback"))
                .one()
                .payload
            )
            assert verify_chain(s, None).ok
    finally:
        engine.dispose()
    assert kinds == ["traffic_set", "traffic_rollback", "traffic_set", "traffic_promote",
                     "traffic_stop"]  # fmt: skip
    assert payload["reason"] == "manual test" and payload["candidate_percent"] == 0
    verified = _invoke(settings, audit.app, "verify")
    assert verified.exit_code == 0, verified.output
