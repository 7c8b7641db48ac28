"""Usage reports from the ledger: requests, tokens and exact cost per tenant, UTC day and model.

One ``GROUP BY`` over ``usage_ledger`` served by its ``(tenant_id, day, model)`` index; the
cost column sums as integers in SQL and comes back as an exact ``Decimal``. Used by
``paramstack usage report`` and meant for ``GET /v1/usage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from paramstack.errors import InvalidInput
from paramstack.store.tenant_tables import UsageRecord


@dataclass(frozen=True)
class UsageLine:
    tenant_id: str
    day: date
    model: str
    currency: str
    requests: int
    errors: int
    tokens_in: int
    tokens_out: int
    cost: Decimal
    mean_latency_ms: float

    def as_dict(self) -> dict[str, Any]:
        """JSON/CSV friendly: the day as ISO text and the cost as a plain decimal string."""
        return {
            "tenant": self.tenant_id,
            "day": self.day.isoformat(),
            "model": self.model,
            "currency": self.currency,
            "requests": self.requests,
            "errors": self.errors,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost": format(self.cost.normalize(), "f"),
            "mean_latency_ms": round(self.mean_latency_ms, 3),
        }


def usage_report(
    session: Session, *, since: date, until: date, tenant_id: str | None = None
) -> list[UsageLine]:
    """Lines for ``since <= day <= until`` (UTC days), ordered by tenant, day and model."""
    if until < since:
        raise InvalidInput("the report ends before it starts", param="until")
    u = UsageRecord
    query = (
        select(
            u.tenant_id,
            u.day,
            u.model,
            u.currency,
            func.count(),
            func.sum(case((u.status != "ok", 1), else_=0)),
            func.sum(u.tokens_in),
            func.sum(u.tokens_out),
            func.sum(u.cost),
            func.avg(u.latency_ms),
        )
        .where(u.day >= since, u.day <= until)
        .group_by(u.tenant_id, u.day, u.model, u.currency)
        .order_by(u.tenant_id, u.day, u.model)
    )
    if tenant_id is not None:
        query = query.where(u.tenant_id == tenant_id)
    return [
        UsageLine(
            tenant_id=row[0],
            day=row[1],
            model=row[2],
            currency=row[3],
            requests=int(row[4]),
            errors=int(row[5] or 0),
            tokens_in=int(row[6] or 0),
            tokens_out=int(row[7] or 0),
            cost=row[8] if row[8] is not None else Decimal(0),
            mean_latency_ms=float(row[9] or 0),
        )
        for row in session.execute(query)
    ]
