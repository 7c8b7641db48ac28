"""Per-arm statistics of a traffic split from the usage ledger (what was actually billed).

The gateway writes ``{"traffic": {"split", "arm", "target", ...}}`` into each ledger row's
``routing`` JSON (other routing keys may sit beside it). The rows of the split's two targets
since it started are read and grouped by arm in Python, which works the same on SQLite and
PostgreSQL (the column is text, not a JSON type). Errors are server-side failures (5xx);
a 4xx is the caller's fault, not the arm's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paramstack.registry.stats import mean, percentile
from paramstack.store.tenant_tables import UsageRecord
from paramstack.store.traffic_tables import TrafficSplit

ARMS = ("stable", "candidate")


@dataclass(frozen=True)
class ArmUsage:
    requests: int
    errors: int
    error_rate: float | None
    mean_latency_ms: float | None
    p95_latency_ms: float | None
    tokens_in: int
    tokens_out: int
    cost: Decimal
    targets: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        data = vars(self).copy()
        data["cost"] = format(self.cost.normalize(), "f")
        data["targets"] = list(self.targets)
        return data


def traffic_of(routing: str | None) -> dict[str, Any] | None:
    """The ``traffic`` part of a ledger row's routing JSON, if any (bad JSON counts as none)."""
    if not routing:
        return None
    try:
        data = json.loads(routing)
    except ValueError:
        return None
    traffic = data.get("traffic") if isinstance(data, dict) else None
    return traffic if isinstance(traffic, dict) else None


def arm_usage(
    session: Session, split: TrafficSplit, *, since: datetime | None = None
) -> dict[str, ArmUsage]:
    u = UsageRecord
    start = since or split.started_at
    rows = session.execute(
        select(
            u.model, u.routing, u.status_code, u.latency_ms, u.tokens_in, u.tokens_out, u.cost
        ).where(u.day >= start.date(), u.created_at >= start, u.routing.is_not(None))
    ).all()
    grouped: dict[str, list[Any]] = {arm: [] for arm in ARMS}
    for row in rows:
        traffic = traffic_of(row.routing)
        if traffic is not None and traffic.get("split") == split.name:
            arm = traffic.get("arm")
            if arm in grouped:
                grouped[arm].append(row)
    result = {}
    for arm, mine in grouped.items():
        errors = sum(1 for r in mine if r.status_code >= 500)
        latencies = [float(r.latency_ms) for r in mine if r.status_code < 400]
        result[arm] = ArmUsage(
            requests=len(mine),
            errors=errors,
            error_rate=errors / len(mine) if mine else None,
            mean_latency_ms=mean(latencies),
            p95_latency_ms=percentile(latencies, 95),
            tokens_in=sum(r.tokens_in for r in mine),
            tokens_out=sum(r.tokens_out for r in mine),
            cost=sum((r.cost for r in mine), Decimal(0)),
            targets=tuple(sorted({r.model for r in mine})),
        )
    return result
