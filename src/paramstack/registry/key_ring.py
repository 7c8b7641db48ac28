"""Request-time authentication from an in-memory snapshot of active keys and tenants.

The gateway's request path does no database I/O (DESIGN.md), so it authenticates against a
``KeyRing`` built from the database and rebuilt every few seconds (and right after an admin
change in the same process). A revocation therefore reaches other replicas within one refresh
period; an expiry is exact because it is checked against the clock on every request.

Lookup is by the visible prefix (a dict hit), then one HMAC-SHA256 and ``hmac.compare_digest``.
An unknown prefix still costs one HMAC against a dummy hash, so response time does not tell
which prefixes exist.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from paramstack.errors import Forbidden
from paramstack.rag.policy import rag_policy
from paramstack.registry.api_keys import active_keys
from paramstack.registry.key_material import Pepper, split_key
from paramstack.store.tenant_tables import ApiKey, Tenant

_DUMMY_HASH = bytes(32)


class InvalidApiKey(Forbidden):
    """401 in OpenAI's shape; one message for every cause, so callers cannot probe keys."""

    http_status = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


@dataclass(frozen=True, slots=True)
class Price:
    input_per_1k: Decimal
    output_per_1k: Decimal

    def cost(self, tokens_in: int, tokens_out: int) -> Decimal:
        """Exact: Decimal arithmetic on prices with at most 9 decimal places."""
        return (self.input_per_1k * tokens_in + self.output_per_1k * tokens_out) / 1000


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """What the gateway needs to know about a tenant on every request (immutable)."""

    id: str
    name: str
    domain: str
    default_model: str | None
    default_adapter: str | None
    rag_collection: str | None
    currency: str
    requests_per_second: int | None
    requests_per_minute: int | None
    tokens_per_day: int | None
    prices: Mapping[str, Price]
    # The guard policy override as stored (canonical JSON) and its SHA-256, the gateway's
    # cache key for the tenant's built guard; None = the base policy.
    guard_policy: str | None = None
    guard_policy_sha: str | None = None
    rag_policy: str = "off"  # in force: off | always | auto (see rag/policy.py)

    def price(self, model: str) -> Price | None:
        return self.prices.get(model)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the tenant plus the key (with its own optional limits)."""

    tenant: TenantPolicy
    key_id: int
    key_prefix: str
    requests_per_second: int | None
    requests_per_minute: int | None
    tokens_per_day: int | None
    role: str = "member"

    @property
    def is_admin(self) -> bool:
        """An admin key may also change the tenant's data (RAG ingest and delete)."""
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class _Entry:
    key_hash: bytes
    expires_at: float | None  # epoch seconds
    principal: Principal


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite returns naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _policy(tenant: Tenant) -> TenantPolicy:
    return TenantPolicy(
        id=tenant.id,
        name=tenant.name,
        domain=tenant.domain,
        default_model=tenant.default_model,
        default_adapter=tenant.default_adapter,
        rag_collection=tenant.rag_collection,
        rag_policy=rag_policy(tenant.rag_policy, tenant.rag_collection),
        currency=tenant.currency,
        requests_per_second=tenant.requests_per_second,
        requests_per_minute=tenant.requests_per_minute,
        tokens_per_day=tenant.tokens_per_day,
        prices=MappingProxyType(
            {p.model: Price(p.input_per_1k, p.output_per_1k) for p in tenant.prices}
        ),
        guard_policy=tenant.guard_policy,
        guard_policy_sha=hashlib.sha256(tenant.guard_policy.encode()).hexdigest()
        if tenant.guard_policy
        else None,
    )


class KeyRing:
    """An immutable snapshot; build a new one to refresh and swap the reference (atomic)."""

    def __init__(self, entries: Mapping[str, _Entry], pepper: Pepper) -> None:
        self._entries = entries
        self._pepper = pepper

    def __repr__(self) -> str:
        return f"KeyRing({len(self._entries)} keys)"

    def __len__(self) -> int:
        return len(self._entries)

    def tenants(self) -> list[TenantPolicy]:
        """Each tenant that has a usable key, once (the gateway prepares their guards)."""
        unique = {e.principal.tenant.id: e.principal.tenant for e in self._entries.values()}
        return list(unique.values())

    @classmethod
    def load(cls, session: Session, pepper: Pepper, now: datetime | None = None) -> KeyRing:
        """Every key of an active tenant that is not revoked or expired at ``now``."""
        tenants = {
            t.id: _policy(t)
            for t in session.scalars(
                select(Tenant).where(Tenant.active.is_(True)).options(selectinload(Tenant.prices))
            )
        }
        entries: dict[str, _Entry] = {}
        for row in active_keys(session, now):
            policy = tenants.get(row.tenant_id)
            if policy is None:
                continue
            # A key revoked at a future moment (rotation grace) ends then, like an expiry.
            ends = [t for t in (_epoch(row.expires_at), _epoch(row.revoked_at)) if t is not None]
            entries[row.prefix] = _Entry(
                key_hash=row.key_hash,
                expires_at=min(ends) if ends else None,
                principal=_principal(row, policy),
            )
        return cls(MappingProxyType(entries), pepper)

    def authenticate(self, presented: str | None, now: float | None = None) -> Principal:
        """The principal for a presented key, or ``InvalidApiKey`` (HTTP 401)."""
        prefix = split_key(presented) if presented else None
        entry = self._entries.get(prefix) if prefix else None
        digest = self._pepper.digest(presented or "")
        expected = entry.key_hash if entry is not None else _DUMMY_HASH
        if not hmac.compare_digest(digest, expected) or entry is None:
            raise InvalidApiKey("Incorrect API key provided.")
        if entry.expires_at is not None and (now or time.time()) >= entry.expires_at:
            raise InvalidApiKey("Incorrect API key provided.")
        return entry.principal


def _principal(row: ApiKey, policy: TenantPolicy) -> Principal:
    return Principal(
        tenant=policy,
        key_id=row.id,
        key_prefix=row.prefix,
        requests_per_second=row.requests_per_second,
        requests_per_minute=row.requests_per_minute,
        tokens_per_day=row.tokens_per_day,
        role=row.role,
    )
