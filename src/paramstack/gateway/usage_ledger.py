"""Usage ledger rows: what one request cost, ready for the batched ``LogWriter``.

The route builds the row after the response (or the failure) with ``ledger_row`` and hands it
to ``LogWriter.submit(UsageRecord, row)``: no database write on the request path, and the
writer's shutdown flush means a SIGTERM loses no billing row. The cost is computed here, from
the tenant's price book snapshot, in exact ``Decimal``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from paramstack.registry.key_ring import Principal


def ledger_row(
    principal: Principal,
    *,
    request_id: str,
    model: str,
    backend: str,
    tokens_in: int,
    tokens_out: int,
    latency_ms: float,
    status: str,
    status_code: int,
    routing: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """One ``UsageRecord`` row; a model missing from the price book costs 0 (visible in
    reports as tokens with no cost, rather than a guessed price)."""
    at = at or datetime.now(UTC)
    price = principal.tenant.price(model)
    cost = price.cost(tokens_in, tokens_out) if price is not None else Decimal(0)
    return {
        "request_id": request_id,
        "tenant_id": principal.tenant.id,
        "key_id": principal.key_id,
        "model": model,
        "backend": backend,
        "routing": routing,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost": cost,
        "currency": principal.tenant.currency,
        "latency_ms": latency_ms,
        "status": status,
        "status_code": status_code,
        "day": at.astimezone(UTC).date(),
        "created_at": at,
    }
