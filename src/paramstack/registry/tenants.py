"""Tenants: create, look up, change defaults and limits, keep the price book, price a request.

Limits are ``None`` for unlimited. Prices are per 1k tokens in the tenant's currency and are
``Decimal`` end to end (see ``store.tenant_tables.FixedPoint``), so costs computed from them
(``registry.key_ring.Price.cost``) are exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from paramstack.errors import Conflict, InvalidInput, NotFound
from paramstack.guard import overrides
from paramstack.guard.policy import Policy
from paramstack.rag.policy import check_rag_policy, rag_policy
from paramstack.store.tenant_tables import PRICE_SCALE, ModelPrice, Tenant

_TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
LIMIT_FIELDS = ("requests_per_second", "requests_per_minute", "tokens_per_day")
PROFILE_FIELDS = (
    "name",
    "domain",
    "default_model",
    "default_adapter",
    "rag_collection",
    "rag_policy",
)


@dataclass
class TenantSpec:
    """What an administrator hands over to create a tenant."""

    id: str
    name: str
    domain: str = "general"
    default_model: str | None = None
    default_adapter: str | None = None
    rag_collection: str | None = None
    rag_policy: str | None = None
    currency: str = "USD"
    requests_per_second: int | None = None
    requests_per_minute: int | None = None
    tokens_per_day: int | None = None


def _check_limit(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise InvalidInput(f"{name} must be a positive integer or unlimited", param=name)


def create_tenant(session: Session, spec: TenantSpec) -> Tenant:
    if not _TENANT_ID.fullmatch(spec.id):
        raise InvalidInput(
            f"invalid tenant id {spec.id!r}: lowercase letters, digits, '-' or '_' (max 64)",
            param="id",
        )
    if not spec.name.strip():
        raise InvalidInput("a tenant needs a name", param="name")
    if not re.fullmatch(r"[A-Z]{3}", spec.currency):
        raise InvalidInput("currency must be an ISO 4217 code like USD", param="currency")
    for name in LIMIT_FIELDS:
        _check_limit(name, getattr(spec, name))
    check_rag_policy(spec.rag_policy)
    if session.get(Tenant, spec.id) is not None:
        raise Conflict(f"tenant {spec.id!r} already exists", code="tenant_exists")
    tenant = Tenant(**vars(spec), active=True)
    session.add(tenant)
    session.flush()
    return tenant


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = session.scalar(
        select(Tenant).where(Tenant.id == tenant_id).options(selectinload(Tenant.prices))
    )
    if tenant is None:
        raise NotFound(f"tenant {tenant_id!r} does not exist", code="tenant_not_found")
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return list(
        session.scalars(select(Tenant).options(selectinload(Tenant.prices)).order_by(Tenant.id))
    )


def update_tenant(session: Session, tenant_id: str, changes: Mapping[str, Any]) -> Tenant:
    """Change profile fields and/or limits; only the keys present in ``changes`` move."""
    unknown = set(changes) - set(PROFILE_FIELDS) - set(LIMIT_FIELDS) - {"active"}
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}")
    for name in LIMIT_FIELDS:
        if name in changes:
            _check_limit(name, changes[name])
    check_rag_policy(changes.get("rag_policy"))
    tenant = get_tenant(session, tenant_id)
    for name, value in changes.items():
        setattr(tenant, name, value)
    session.flush()
    return tenant


def set_limits(session: Session, tenant_id: str, limits: Mapping[str, int | None]) -> Tenant:
    """Set requests/s, requests/min and tokens/day (``None`` = unlimited); others unchanged."""
    unknown = set(limits) - set(LIMIT_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown limit {', '.join(sorted(unknown))}; valid: {LIMIT_FIELDS}")
    return update_tenant(session, tenant_id, limits)


def parse_price(text: str | Decimal, param: str) -> Decimal:
    """A non-negative price with at most ``PRICE_SCALE`` decimal places, never via float."""
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidInput(f"{param} must be a decimal number, got {text!r}", param=param) from exc
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"{param} must be a finite, non-negative number", param=param)
    if value != value.quantize(Decimal(1).scaleb(-PRICE_SCALE)):
        raise InvalidInput(f"{param} has more than {PRICE_SCALE} decimal places", param=param)
    return value


def set_price(
    session: Session, tenant_id: str, model: str, input_per_1k: Decimal, output_per_1k: Decimal
) -> ModelPrice:
    """Insert or replace one model's prices in the tenant's price book."""
    if not model or len(model) > 128:
        raise InvalidInput("model must be 1 to 128 characters", param="model")
    tenant = get_tenant(session, tenant_id)
    inp = parse_price(input_per_1k, "input_per_1k")
    out = parse_price(output_per_1k, "output_per_1k")
    price = next((p for p in tenant.prices if p.model == model), None)
    if price is None:
        price = ModelPrice(model=model, input_per_1k=inp, output_per_1k=out)
        tenant.prices.append(price)
    else:
        price.input_per_1k, price.output_per_1k = inp, out
    session.flush()
    return price


def set_guard_policy(
    session: Session, tenant_id: str, override: Mapping[str, Any] | None, base: Policy
) -> Tenant:
    """Store (or with ``None`` clear) the tenant's guard override, validated against ``base``
    first: an invalid override raises ``InvalidInput`` and nothing is written."""
    tenant = get_tenant(session, tenant_id)
    if override is None:
        tenant.guard_policy = None
    else:
        overrides.merge(base, overrides.as_mapping(override), tenant_id)
        tenant.guard_policy = overrides.canonical(override)
    session.flush()
    return tenant


def guard_override(tenant: Tenant) -> dict[str, Any] | None:
    return json.loads(tenant.guard_policy) if tenant.guard_policy else None


def plain(value: Decimal) -> str:
    """``0.0005`` rather than ``5.00E-4``: the form people and spreadsheets read."""
    return format(value.normalize(), "f")


def describe_tenant(tenant: Tenant) -> dict[str, Any]:
    """A JSON-friendly view; prices as strings so no float ever touches them."""
    return {
        "id": tenant.id,
        "name": tenant.name,
        "domain": tenant.domain,
        "active": tenant.active,
        "default_model": tenant.default_model,
        "default_adapter": tenant.default_adapter,
        "rag_collection": tenant.rag_collection,
        "rag_policy": rag_policy(tenant.rag_policy, tenant.rag_collection),
        "currency": tenant.currency,
        "limits": {name: getattr(tenant, name) for name in LIMIT_FIELDS},
        "guard_policy": guard_override(tenant),
        "prices": {
            p.model: {
                "input_per_1k": plain(p.input_per_1k),
                "output_per_1k": plain(p.output_per_1k),
            }
            for p in tenant.prices
        },
        "created_at": tenant.created_at.isoformat() if tenant.created_at else None,
    }
