"""``GET /v1/usage``: the calling tenant's own usage from the ledger, per UTC day and model.

The tenant comes from the API key alone (there is no tenant parameter), so one tenant can
never read another's usage. The report is a ``GROUP BY`` on the database, run in a worker
thread so the event loop never blocks on it. Costs are exact decimals as strings, as in
``paramstack usage report``. Rows reach the ledger in batches, so the last
``log_flush_interval_s`` of traffic may not be counted yet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from paramstack.errors import InvalidInput
from paramstack.gateway.auth import CurrentPrincipal
from paramstack.gateway.routes.openai import ERRORS
from paramstack.registry.usage import usage_report

router = APIRouter(prefix="/v1", tags=["openai"])

DEFAULT_DAYS = 7
# A string checked by hand rather than ``date``: pydantic's lax ``date`` takes ``0`` as
# 1970-01-01 and Python's ``fromisoformat`` takes ``20261124``; only YYYY-MM-DD is valid.
DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DATE: dict[str, Any] = {"format": "date"}
QUERY = frozenset({"since", "until"})
MAX_DAYS = 366  # one report scans at most a year of the tenant's index range


class UsageDay(BaseModel):
    day: str = Field(description="UTC day, YYYY-MM-DD.")
    model: str
    currency: str
    requests: int
    errors: int = Field(description="Requests whose status was not ok.")
    tokens_in: int
    tokens_out: int
    cost: str = Field(description="Exact decimal in currency, e.g. '0.0125'.")
    mean_latency_ms: float


class UsageReport(BaseModel):
    object: Literal["usage.report"] = "usage.report"
    tenant: str
    since: str
    until: str
    data: list[UsageDay]


def _day(text: str | None, param: str) -> date | None:
    """The pattern passed; this refuses what is no calendar day (2026-02-30)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{param} must be a date like 2026-11-24", param=param) from exc


def _window(since_text: str | None, until_text: str | None) -> tuple[date, date]:
    since, until = _day(since_text, "since"), _day(until_text, "until")
    last = until or datetime.now(UTC).date()
    # ordinals, not timedelta: a last day in year 1 must not overflow into a 500
    first = since or date.fromordinal(max(1, last.toordinal() - (DEFAULT_DAYS - 1)))
    if last < first:
        raise InvalidInput("until is before since", param="until")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput(f"a report covers at most {MAX_DAYS} days", param="since")
    return first, last


def _report(
    factory: sessionmaker[Session], tenant_id: str, since: date, until: date
) -> list[UsageDay]:
    with factory() as session:
        lines = usage_report(session, since=since, until=until, tenant_id=tenant_id)
    return [
        UsageDay(**{k: v for k, v in line.as_dict().items() if k != "tenant"}) for line in lines
    ]


@router.get(
    "/usage",
    summary="The calling tenant's usage and exact cost per UTC day and model",
    response_model=UsageReport,
    responses={400: ERRORS[400], 401: ERRORS[401]},
)
async def usage(
    request: Request,
    principal: CurrentPrincipal,
    since: Annotated[
        str | None,
        Query(
            pattern=DAY,
            json_schema_extra=DATE,
            description=f"First UTC day (default: {DEFAULT_DAYS - 1} days ago).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(pattern=DAY, json_schema_extra=DATE, description="Last UTC day (default: today)."),
    ] = None,
) -> UsageReport:
    unknown = sorted(set(request.query_params) - QUERY)
    if unknown:  # a misspelt ?from= must not silently report the default window
        raise InvalidInput(f"unknown query parameter {unknown[0][:64]!r}", param=unknown[0][:64])
    first, last = _window(since, until)
    tenant = principal.tenant.id
    data = await to_thread.run_sync(_report, request.app.state.factory, tenant, first, last)
    return UsageReport(tenant=tenant, since=first.isoformat(), until=last.isoformat(), data=data)
