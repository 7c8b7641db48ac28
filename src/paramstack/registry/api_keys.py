"""API keys in storage: create (shown once), list, revoke, rotate.

Request-time authentication does not read the database: see ``registry.key_ring``, which
holds a snapshot of the active keys built from ``active_keys`` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from paramstack.errors import Conflict, InvalidInput, NotFound
from paramstack.registry.key_material import Pepper, generate_key
from paramstack.registry.tenants import get_tenant
from paramstack.store.tenant_tables import ApiKey

KEY_LIMIT_FIELDS = ("requests_per_second", "requests_per_minute", "tokens_per_day")
ROLES = ("member", "admin")


@dataclass
class KeySpec:
    """Options of a new key; limits tighten the tenant's (None = only the tenant's apply)."""

    name: str = ""
    role: str = "member"  # "admin" may also change the tenant's data (RAG ingest and delete)
    expires_at: datetime | None = None
    requests_per_second: int | None = None
    requests_per_minute: int | None = None
    tokens_per_day: int | None = None


@dataclass(frozen=True)
class CreatedKey:
    """The stored row plus the plaintext, which exists only here and must be shown once."""

    row: ApiKey
    plaintext: str

    def __repr__(self) -> str:
        return f"CreatedKey(prefix={self.row.prefix!r})"


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def create_key(session: Session, tenant_id: str, spec: KeySpec, pepper: Pepper) -> CreatedKey:
    tenant = get_tenant(session, tenant_id)
    if not tenant.active:
        raise Conflict(f"tenant {tenant_id!r} is disabled", code="tenant_disabled")
    for name in KEY_LIMIT_FIELDS:
        value = getattr(spec, name)
        if value is not None and value < 1:
            raise InvalidInput(f"{name} must be a positive integer", param=name)
    expires_at = _aware(spec.expires_at)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidInput("expires_at is in the past", param="expires_at")
    if len(spec.name) > 128:
        raise InvalidInput("a key name is at most 128 characters", param="name")
    if spec.role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", param="role")
    new = generate_key()
    while session.scalar(select(ApiKey.id).where(ApiKey.prefix == new.prefix)) is not None:
        new = generate_key()  # 60 random bits: practically never, but a clash must not 500
    row = ApiKey(
        tenant_id=tenant.id,
        prefix=new.prefix,
        key_hash=pepper.digest(new.plaintext),
        name=spec.name,
        role=spec.role,
        expires_at=expires_at,
        requests_per_second=spec.requests_per_second,
        requests_per_minute=spec.requests_per_minute,
        tokens_per_day=spec.tokens_per_day,
    )
    session.add(row)
    session.flush()
    return CreatedKey(row=row, plaintext=new.plaintext)


def get_key(session: Session, prefix: str) -> ApiKey:
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        raise NotFound(f"no API key with prefix {prefix!r}", code="key_not_found")
    return row


def list_keys(session: Session, tenant_id: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.tenant_id, ApiKey.id)
    if tenant_id is not None:
        get_tenant(session, tenant_id)
        query = query.where(ApiKey.tenant_id == tenant_id)
    return list(session.scalars(query))


def revoke_key(session: Session, prefix: str, *, at: datetime | None = None) -> ApiKey:
    """Revoke now (or at ``at``); revoking twice keeps the first moment."""
    row = get_key(session, prefix)
    if row.revoked_at is None:
        row.revoked_at = _aware(at) or datetime.now(UTC)
        session.flush()
    return row


def rotate_key(
    session: Session, prefix: str, pepper: Pepper, *, grace: timedelta = timedelta(0)
) -> CreatedKey:
    """A new key with the same tenant, name and limits; the old one stops after ``grace``.

    A grace period lets clients roll the new key out before the old one is refused.
    """
    old = get_key(session, prefix)
    now = datetime.now(UTC)
    revoked_at = _aware(old.revoked_at)
    if revoked_at is not None and revoked_at <= now:
        raise Conflict(f"key {prefix} is revoked; create a new key instead", code="key_revoked")
    if grace < timedelta(0):
        raise InvalidInput("grace must not be negative", param="grace")
    created = create_key(
        session,
        old.tenant_id,
        KeySpec(
            name=old.name,
            role=old.role,
            expires_at=_aware(old.expires_at),
            requests_per_second=old.requests_per_second,
            requests_per_minute=old.requests_per_minute,
            tokens_per_day=old.tokens_per_day,
        ),
        pepper,
    )
    created.row.rotated_from_id = old.id
    old.revoked_at = now + grace
    session.flush()
    return created


def active_keys(session: Session, now: datetime | None = None) -> list[ApiKey]:
    """Keys not yet revoked or expired at ``now`` (a later revocation time still counts)."""
    now = now or datetime.now(UTC)
    return list(
        session.scalars(
            select(ApiKey).where(
                or_(ApiKey.revoked_at.is_(None), ApiKey.revoked_at > now),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            )
        )
    )


def describe_key(row: ApiKey) -> dict[str, Any]:
    """Everything about a key except its hash (which is useless to show and better unseen)."""
    expires_at, revoked_at = _aware(row.expires_at), _aware(row.revoked_at)
    return {
        "prefix": row.prefix,
        "tenant": row.tenant_id,
        "name": row.name,
        "role": row.role,
        "limits": {name: getattr(row, name) for name in KEY_LIMIT_FIELDS},
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "expires_at": expires_at.isoformat() if expires_at else None,
        "revoked_at": revoked_at.isoformat() if revoked_at else None,
        "rotated_from_id": row.rotated_from_id,
    }
