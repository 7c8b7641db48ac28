"""Admin API for tenants and API keys: the same registry functions as ``paramstack tenants``
and ``paramstack keys``, behind the admin token (``gateway.admin_auth``).

Each call is one transaction in a worker thread: a refused request writes nothing. Request
models bound every field to what the columns hold, so bad input is a 400, never a database
error. A new or rotated key's secret is in that one response only; revocations and new keys
reach the gateway's key ring within ``registry_refresh_s``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from paramstack.errors import InvalidInput
from paramstack.gateway.admin_auth import AdminActor, require_admin
from paramstack.gateway.schemas import ErrorResponse
from paramstack.registry import api_keys, tenants
from paramstack.registry.api_keys import KeySpec
from paramstack.registry.tenants import TenantSpec
from paramstack.store.engine import transaction

T = TypeVar("T")


async def known_query_only(request: Request) -> None:
    """A misspelt ``?tennant=`` must not silently list everything: unknown parameters are 400."""
    route = request.scope.get("route")
    declared = {p.alias for p in route.dependant.query_params} if route is not None else set()
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        raise InvalidInput(f"unknown query parameter {unknown[0][:64]!r}", param=unknown[0][:64])


router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin), Depends(known_query_only)],
)

_ERRORS = {
    400: "Malformed request",
    401: "Missing or wrong admin token (or the admin API is not configured)",
    404: "No such tenant, key or split",
    409: "Clashes with the current state (exists already, revoked, not running)",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in _ERRORS.items()
}
MAX_INT = 2**31 - 1
TenantId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
KeyPrefix = Annotated[str, Path(pattern=r"^psk_[a-z2-7]{12}$")]
Limit = Annotated[int | None, Field(None, ge=1, le=MAX_INT)]
TokenLimit = Annotated[int | None, Field(None, ge=1, le=2**62)]
PRICE = r"^[0-9]{1,9}(\.[0-9]{1,9})?$"  # what the fixed-point column holds exactly


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(Strict):
    """Omitted: unchanged; null: unlimited."""

    requests_per_second: Limit = None
    requests_per_minute: Limit = None
    tokens_per_day: TokenLimit = None


class TenantCreate(Limits):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    domain: str = Field("general", min_length=1, max_length=64)
    default_model: str | None = Field(None, min_length=1, max_length=128)
    default_adapter: str | None = Field(None, min_length=1, max_length=128)
    rag_collection: str | None = Field(None, min_length=1, max_length=128)
    rag_policy: Literal["off", "always", "auto"] | None = Field(
        None, description="Chat retrieval; default: auto with a rag_collection, else off."
    )
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")


class PriceSet(Strict):
    model: str = Field(min_length=1, max_length=128)
    input_per_1k: str = Field(pattern=PRICE, description="Decimal string, per 1k tokens.")
    output_per_1k: str = Field(pattern=PRICE)


class KeyCreate(Limits):
    name: str = Field("", max_length=128)
    role: Literal["member", "admin"] = Field(
        "member", description="admin: may also ingest and delete the tenant's RAG documents."
    )
    expires_at: datetime | None = Field(None, description="ISO 8601; UTC when naive.")

    @field_validator("expires_at")
    @classmethod
    def _plausible(cls, value: datetime | None) -> datetime | None:
        if value is not None and not 2000 <= value.year <= 9000:
            raise ValueError("expires_at must lie between the years 2000 and 9000")
        return value


class KeyRotate(Strict):
    grace_hours: float = Field(0.0, ge=0, le=24 * 366)


async def _in_transaction(request: Request, work: Callable[[Session], T]) -> T:
    factory = request.app.state.factory

    def run() -> T:
        with transaction(factory) as session:
            return work(session)

    return await to_thread.run_sync(run)


@router.get("/tenants", summary="Every tenant with limits and price book", responses=ERRORS)
async def list_tenants(request: Request, _: AdminActor) -> dict[str, Any]:
    rows = await _in_transaction(
        request, lambda s: [tenants.describe_tenant(t) for t in tenants.list_tenants(s)]
    )
    return {"object": "list", "data": rows}


@router.post("/tenants", status_code=201, summary="Create a tenant", responses=ERRORS)
async def create_tenant(request: Request, body: TenantCreate, _: AdminActor) -> dict[str, Any]:
    spec = TenantSpec(**body.model_dump())
    return await _in_transaction(
        request, lambda s: tenants.describe_tenant(tenants.create_tenant(s, spec))
    )


@router.get("/tenants/{tenant_id}", summary="One tenant", responses=ERRORS)
async def show_tenant(request: Request, tenant_id: TenantId, _: AdminActor) -> dict[str, Any]:
    return await _in_transaction(
        request, lambda s: tenants.describe_tenant(tenants.get_tenant(s, tenant_id))
    )


@router.patch("/tenants/{tenant_id}/limits", summary="Set a tenant's limits", responses=ERRORS)
async def set_limits(
    request: Request, tenant_id: TenantId, body: Limits, _: AdminActor
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return await _in_transaction(
        request, lambda s: tenants.describe_tenant(tenants.set_limits(s, tenant_id, changes))
    )


@router.post("/tenants/{tenant_id}/prices", summary="Set one model's prices", responses=ERRORS)
async def set_price(
    request: Request, tenant_id: TenantId, body: PriceSet, _: AdminActor
) -> dict[str, Any]:
    inp, out = Decimal(body.input_per_1k), Decimal(body.output_per_1k)

    def work(s: Session) -> dict[str, Any]:
        tenants.set_price(s, tenant_id, body.model, inp, out)
        return tenants.describe_tenant(tenants.get_tenant(s, tenant_id))

    return await _in_transaction(request, work)


def _with_secret(created: api_keys.CreatedKey) -> dict[str, Any]:
    return {**api_keys.describe_key(created.row), "key": created.plaintext}


@router.post(
    "/tenants/{tenant_id}/keys",
    status_code=201,
    summary="Create an API key (its secret is in this response only)",
    responses=ERRORS,
)
async def create_key(
    request: Request, tenant_id: TenantId, body: KeyCreate, _: AdminActor
) -> dict[str, Any]:
    spec = KeySpec(**body.model_dump())
    pepper = request.app.state.pepper
    return await _in_transaction(
        request, lambda s: _with_secret(api_keys.create_key(s, tenant_id, spec, pepper))
    )


@router.get("/keys", summary="API keys (never a secret or a hash)", responses=ERRORS)
async def list_keys(
    request: Request,
    _: AdminActor,
    tenant: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] = None,
) -> dict[str, Any]:
    rows = await _in_transaction(
        request, lambda s: [api_keys.describe_key(k) for k in api_keys.list_keys(s, tenant)]
    )
    return {"object": "list", "data": rows}


@router.post("/keys/{prefix}/revoke", summary="Revoke an API key", responses=ERRORS)
async def revoke_key(request: Request, prefix: KeyPrefix, _: AdminActor) -> dict[str, Any]:
    return await _in_transaction(
        request, lambda s: api_keys.describe_key(api_keys.revoke_key(s, prefix))
    )


@router.post(
    "/keys/{prefix}/rotate",
    summary="Replace an API key (the new secret is in this response only)",
    responses=ERRORS,
)
async def rotate_key(
    request: Request, prefix: KeyPrefix, _: AdminActor, body: KeyRotate | None = None
) -> dict[str, Any]:
    grace = timedelta(hours=(body or KeyRotate()).grace_hours)
    pepper = request.app.state.pepper
    return await _in_transaction(
        request, lambda s: _with_secret(api_keys.rotate_key(s, prefix, pepper, grace=grace))
    )
