"""Tamper-evident audit log: hash-chained rows in the database plus signed head checkpoints.

Entry ``n`` stores ``entry_hash = SHA-256(JCS({seq, kind, tenant, ts, payload, prev_hash}))``
with ``prev_hash`` = entry ``n-1``'s hash (64 zeros for the first). Editing a row breaks its own
hash; deleting or reordering rows breaks a link or the ``seq`` sequence; rewriting the whole
tail consistently is caught by the Ed25519-signed checkpoints of the head taken every
``every`` entries or ``seconds`` seconds, and cutting off the tail is caught because a
checkpoint names a ``seq`` the chain no longer reaches. (Rows appended after the newest
checkpoint can still be dropped unseen: publish checkpoints outside the database to close
that window.)

Appends go through the caller's session and transaction; one writer at a time (the gateway's
batched log writer) — concurrent writers collide on the unique ``seq`` and must retry.
Payloads hold digests and rule names, never prompt text or PII.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from paramstack.attest.keys import SigningKey, b64url, b64url_decode, key_from_jwks, verify_raw
from paramstack.errors import ParamstackError
from paramstack.store.audit_tables import AuditCheckpoint, AuditEntry

GENESIS = "0" * 64


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _unix(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def entry_hash(
    seq: int, kind: str, tenant: str | None, ts: str, payload: dict[str, Any], prev: str
) -> str:
    body: dict[str, Any] = {
        "seq": seq,
        "kind": kind,
        "tenant": tenant,
        "ts": ts,
        "payload": payload,
        "prev_hash": prev,
    }
    return hashlib.sha256(rfc8785.dumps(body)).hexdigest()


def checkpoint_bytes(seq: int, head_hash: str, ts: str, kid: str) -> bytes:
    return rfc8785.dumps({"seq": seq, "head_hash": head_hash, "ts": ts, "kid": kid})


class AuditChain:
    """Appends entries and writes checkpoints; keep one per process (it caches the head)."""

    def __init__(self, key: SigningKey | None, *, every: int = 100, seconds: float = 60.0) -> None:
        self.key = key
        self.every = every
        self.seconds = seconds
        self._head: tuple[int, str] | None = None
        self._last_cp: tuple[int, float] | None = None
        self._cp_wall: float | None = None  # Unix time of the newest checkpoint, for metrics

    def _load(self, session: Session) -> tuple[int, str]:
        if self._head is None:
            last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
            row = last.first()
            self._head = (row.seq, row.entry_hash) if row else (0, GENESIS)
            cp = session.scalars(
                select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)
            ).first()
            self._last_cp = (cp.seq if cp else 0, time.monotonic())
            self._cp_wall = _unix(cp.ts) if cp else time.time()
        return self._head

    def append(
        self, session: Session, kind: str, payload: dict[str, Any], *, tenant: str | None = None
    ) -> AuditEntry:
        """Add one entry (flushes, does not commit); may add a checkpoint after it."""
        seq, prev = self._load(session)
        seq += 1
        ts = _now()
        digest = entry_hash(seq, kind, tenant, ts, payload, prev)
        entry = AuditEntry(
            seq=seq,
            kind=kind,
            tenant=tenant,
            ts=ts,
            payload=payload,
            prev_hash=prev,
            entry_hash=digest,
        )
        session.add(entry)
        session.flush()
        self._head = (seq, digest)
        self._maybe_checkpoint(session)
        return entry

    def append_many(self, session: Session, events: list[dict[str, Any]]) -> int:
        """Chain a batch (``kind``, ``payload``, ``tenant`` each) with ONE multi-row insert.

        The hashes are chained in order in Python, so the result is the same chain as
        ``append`` one by one, at a fraction of the ORM cost — the gateway appends one entry
        per signed response. Returns the number of entries."""
        seq, prev = self._load(session)
        rows = []
        for event in events:
            seq += 1
            ts = _now()
            kind, tenant, payload = event["kind"], event.get("tenant"), event["payload"]
            digest = entry_hash(seq, kind, tenant, ts, payload, prev)
            rows.append(
                {"seq": seq, "kind": kind, "tenant": tenant, "ts": ts, "payload": payload,
                 "prev_hash": prev, "entry_hash": digest}
            )  # fmt: skip
            prev = digest
        if rows:
            session.execute(insert(AuditEntry), rows)
            self._head = (seq, prev)
            self._maybe_checkpoint(session)
        return len(rows)

    def _maybe_checkpoint(self, session: Session) -> None:
        assert self._head is not None
        assert self._last_cp is not None
        cp_seq, cp_time = self._last_cp
        if self.key is not None and (
            self._head[0] - cp_seq >= self.every or time.monotonic() - cp_time >= self.seconds
        ):
            self.checkpoint(session)

    def checkpoint(self, session: Session) -> AuditCheckpoint | None:
        """Sign the current head (needs a key); returns None on an empty chain."""
        if self.key is None:
            raise ValueError("checkpoints need a signing key")
        seq, head = self._load(session)
        if seq == 0:
            return None
        ts = _now()
        signature = b64url(self.key.sign(checkpoint_bytes(seq, head, ts, self.key.kid)))
        cp = AuditCheckpoint(seq=seq, head_hash=head, ts=ts, kid=self.key.kid, signature=signature)
        session.add(cp)
        session.flush()
        self._last_cp = (seq, time.monotonic())
        self._cp_wall = time.time()
        return cp

    def lag(self) -> tuple[int, float] | None:
        """(entries, seconds) since the newest signed checkpoint, read from memory only (the
        metrics scrape must not query the database); None without a key or before the chain
        has been loaded. With no checkpoint yet, seconds count from when the chain was loaded."""
        head, cp, wall = self._head, self._last_cp, self._cp_wall
        if self.key is None or head is None or cp is None or wall is None:
            return None
        return head[0] - cp[0], max(0.0, time.time() - wall)

    def forget_head(self) -> None:
        """Drop the cached head (after a rolled-back transaction)."""
        self._head = None
        self._last_cp = None


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    checkpoints: int
    first_bad_seq: int | None = None
    reason: str = "ok"

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def verify_chain(session: Session, jwks: dict[str, Any] | None) -> ChainReport:
    """Walk the chain in ``seq`` order; the report names the first entry that does not hold.

    Reasons: ``sequence_gap`` (deleted/reordered row), ``hash_mismatch`` (edited row),
    ``broken_link`` (prev_hash differs), ``checkpoint_signature``, ``checkpoint_mismatch``
    (tail rewritten), ``truncated`` (checkpoint beyond the end). ``jwks=None`` skips
    checkpoint signatures but still checks heads and truncation.
    """
    hashes: dict[int, str] = {}
    prev, expected, count = GENESIS, 1, 0
    for row in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        count += 1
        if row.seq != expected:
            return ChainReport(False, count, 0, expected, "sequence_gap")
        if row.prev_hash != prev:
            return ChainReport(False, count, 0, row.seq, "broken_link")
        if entry_hash(row.seq, row.kind, row.tenant, row.ts, row.payload, row.prev_hash) != (
            row.entry_hash
        ):
            return ChainReport(False, count, 0, row.seq, "hash_mismatch")
        hashes[row.seq] = row.entry_hash
        prev, expected = row.entry_hash, expected + 1
    checkpoints = list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))
    for cp in checkpoints:
        if jwks is not None:
            try:
                public = key_from_jwks(jwks, cp.kid)
            except ParamstackError:
                return ChainReport(False, count, len(checkpoints), cp.seq, "checkpoint_key")
            data = checkpoint_bytes(cp.seq, cp.head_hash, cp.ts, cp.kid)
            if not verify_raw(public, b64url_decode(cp.signature), data):
                return ChainReport(False, count, len(checkpoints), cp.seq, "checkpoint_signature")
        if cp.seq > count:
            return ChainReport(False, count, len(checkpoints), count + 1, "truncated")
        if hashes[cp.seq] != cp.head_hash:
            return ChainReport(False, count, len(checkpoints), cp.seq, "checkpoint_mismatch")
    return ChainReport(True, count, len(checkpoints))
