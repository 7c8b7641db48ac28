"""Audit chain on SQLite and PostgreSQL: edits, deletes, reorders, truncation are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, update

from paramstack.attest.chain import AuditChain, verify_chain
from paramstack.attest.keys import KeyStore
from paramstack.store.audit_tables import AuditCheckpoint, AuditEntry
from paramstack.store.engine import session_factory, transaction


@pytest.fixture
def chain_db(engine: Engine, tmp_path: Path) -> tuple[Engine, dict[str, object]]:
    store = KeyStore(tmp_path / "keys", "pw")
    store.rotate()
    chain = AuditChain(store.active(), every=4, seconds=3600)
    with transaction(session_factory(engine)) as session:
        for i in range(10):
            chain.append(
                session, "attestation", {"i": i, "score": 0.25, "rule": "pii.email"}, tenant="acme"
            )
    return engine, store.jwks()


def _verify(engine: Engine, jwks: dict[str, object]) -> tuple[bool, int | None, str]:
    with session_factory(engine)() as session:
        report = verify_chain(session, jwks)
    return report.ok, report.first_bad_seq, report.reason


def _run(engine: Engine, stmt: object) -> None:
    with transaction(session_factory(engine)) as session:
        session.execute(stmt)  # type: ignore[call-overload]


def test_intact_chain_verifies(chain_db: tuple[Engine, dict[str, object]]) -> None:
    engine, jwks = chain_db
    assert _verify(engine, jwks) == (True, None, "ok")
    with session_factory(engine)() as session:
        assert len(session.scalars(select(AuditCheckpoint)).all()) == 2  # seq 4 and 8


def test_edit_is_named(chain_db: tuple[Engine, dict[str, object]]) -> None:
    engine, jwks = chain_db
    _run(engine, update(AuditEntry).where(AuditEntry.seq == 6).values(payload={"i": 99}))
    assert _verify(engine, jwks) == (False, 6, "hash_mismatch")


def test_delete_is_named(chain_db: tuple[Engine, dict[str, object]]) -> None:
    engine, jwks = chain_db
    _run(engine, delete(AuditEntry).where(AuditEntry.seq == 3))
    assert _verify(engine, jwks) == (False, 3, "sequence_gap")


def test_reorder_is_named(chain_db: tuple[Engine, dict[str, object]]) -> None:
    engine, jwks = chain_db
    _run(engine, update(AuditEntry).where(AuditEntry.seq == 5).values(seq=-5))
    _run(engine, update(AuditEntry).where(AuditEntry.seq == 6).values(seq=5))
    _run(engine, update(AuditEntry).where(AuditEntry.seq == -5).values(seq=6))
    assert _verify(engine, jwks) == (False, 5, "broken_link")


def test_truncation_is_named(chain_db: tuple[Engine, dict[str, object]]) -> None:
    engine, jwks = chain_db
    _run(engine, delete(AuditEntry).where(AuditEntry.seq >= 8))
    assert _verify(engine, jwks) == (False, 8, "truncated")


def test_forged_checkpoint_is_named(chain_db: tuple[Engine, dict[str, object]]) -> None:
    engine, jwks = chain_db
    _run(engine, update(AuditCheckpoint).where(AuditCheckpoint.seq == 4).values(seq=3))
    assert _verify(engine, jwks) == (False, 3, "checkpoint_signature")


def test_batched_appends_extend_the_same_chain(
    chain_db: tuple[Engine, dict[str, object]], tmp_path: Path
) -> None:
    """The gateway's batch path: one insert per batch, continuing a chain built row by row,
    with checkpoints where due; tampering with a batched row is still named."""
    engine, jwks = chain_db
    chain = AuditChain(KeyStore(tmp_path / "keys", "pw").active(), every=4, seconds=3600)
    events = [{"kind": "attestation", "payload": {"i": i}, "tenant": "acme"} for i in range(10, 17)]
    with transaction(session_factory(engine)) as session:
        assert chain.append_many(session, events[:3]) == 3
        assert chain.append_many(session, events[3:]) == 4
    with session_factory(engine)() as session:
        seqs = list(session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
        checkpoints = list(session.scalars(select(AuditCheckpoint.seq)))
    assert seqs == list(range(1, 18))
    assert max(checkpoints) >= 14  # a checkpoint after each batch that crossed `every`
    assert _verify(engine, jwks) == (True, None, "ok")
    _run(engine, update(AuditEntry).where(AuditEntry.seq == 15).values(tenant="other"))
    assert _verify(engine, jwks) == (False, 15, "hash_mismatch")
