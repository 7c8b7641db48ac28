"""Operational gauges the alert rules read: writer backlog per kind, dropped rows, and the
audit chain's checkpoint lag — driven through a real writer on a real database, and read back
from a running gateway's ``/metrics`` after real chat calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import Engine

from paramstack.attest.chain import AuditChain
from paramstack.attest.keys import KeyStore
from paramstack.config import Settings
from paramstack.errors import Unavailable
from paramstack.gateway.log_writer import LogWriter
from paramstack.gateway.ops_metrics import OpsMetrics
from paramstack.store.audit_tables import AuditEntry
from paramstack.store.engine import session_factory, transaction
from paramstack.store.tables import InferenceLog
from tests.test_openai_gateway import MESSAGES, open_gateway
from tests.test_openai_metrics import scrape, value

PENDING = "paramstack_log_writer_pending"
DROPPED = "paramstack_log_writer_dropped_rows_total"
UNSIGNED = "paramstack_audit_entries_since_checkpoint"
AGE = "paramstack_audit_checkpoint_age_seconds"


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_backlog_drops_and_checkpoint_lag_move(engine: Engine, tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys", "pw")
    store.rotate()
    chain = AuditChain(store.active(), every=1000, seconds=3600)
    registry = CollectorRegistry()
    ops = OpsMetrics(registry)
    factory = session_factory(engine)
    writer = LogWriter(factory, max_pending=3, audit=chain, observer=ops)  # not started
    for i in range(3):
        writer.submit(AuditEntry, {"kind": "test", "payload": {"i": i}, "tenant": None})
    with pytest.raises(Unavailable):
        writer.submit(InferenceLog, {"request_id": "late"})
    ops.refresh(writer)
    assert sample(registry, PENDING, kind="audit_entries") == 3
    assert sample(registry, PENDING, kind="inference_logs") == 0
    assert sample(registry, DROPPED, kind="inference_logs", reason="queue_full") == 1
    assert sample(registry, UNSIGNED) == 0  # chain not loaded yet: nothing claimed

    writer.flush()
    ops.refresh(writer)
    assert sample(registry, PENDING, kind="audit_entries") == 0
    assert sample(registry, UNSIGNED) == 3
    assert 0 <= sample(registry, AGE) < 60
    with transaction(factory) as session:
        assert chain.checkpoint(session) is not None
    ops.refresh(writer)
    assert sample(registry, UNSIGNED) == 0

    writer.submit(InferenceLog, {"request_id": "no-version"})  # NOT NULL columns missing
    ops.refresh(writer)
    assert sample(registry, PENDING, kind="inference_logs") == 1
    writer.flush()
    ops.refresh(writer)
    assert sample(registry, PENDING, kind="inference_logs") == 0
    assert sample(registry, DROPPED, kind="inference_logs", reason="database_refused") == 1
    assert writer.written == 3 and writer.dropped == 1


def test_gateway_exports_writer_and_checkpoint_gauges(settings: Settings, tmp_path: Path) -> None:
    cfg = settings.model_copy(
        update={"attest_passphrase": SecretStr("pw"), "audit_checkpoint_every": 1000}
    )
    KeyStore(cfg.resolved_attest_keys_dir, "pw").rotate()
    with open_gateway(cfg, tmp_path, tokens_per_day=100_000) as gw:
        for _ in range(2):
            gw.client().chat.completions.create(model="chat-small", messages=MESSAGES)
        with gw.server.client() as http:
            for _ in range(50):  # the writer thread commits within its interval
                m = scrape(http.get("/metrics").text)
                if value(m, UNSIGNED) >= 2:
                    break
    assert value(m, UNSIGNED) >= 2  # two signed answers chained, not yet checkpointed
    assert 0 <= value(m, AGE) < 60
    for kind in ("inference_logs", "usage_ledger", "audit_entries"):
        assert (PENDING, frozenset({("kind", kind)})) in m
