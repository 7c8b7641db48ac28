"""Admin API for traffic splits and the Alertmanager webhook that rolls canaries back.

Changes go through ``gateway.traffic_ops`` (the registry functions ``paramstack traffic``
uses, then applied in this process at once and appended to the audit chain). Statistics come
from the usage ledger (what was billed, all workers) plus this process's live SLO window.

Alertmanager (webhook v4 payload, ``http_config.authorization`` carrying the admin token):
a *firing* alert whose ``paramstack_model`` label (else its ``split`` label, which every
``paramstack_traffic_*`` series has) names a running canary split rolls it back;
resolved alerts, unknown names, A/B splits and splits no longer running are acknowledged
and ignored, so repeated notifications are harmless.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from paramstack.errors import Conflict, InvalidInput, NotFound
from paramstack.gateway import traffic_ops
from paramstack.gateway.admin_auth import AdminActor, require_admin
from paramstack.gateway.routes.admin import ERRORS, Strict, known_query_only
from paramstack.gateway.traffic import TrafficTable
from paramstack.registry import traffic as registry
from paramstack.registry.traffic import SplitSpec
from paramstack.registry.traffic_stats import arm_usage
from paramstack.store.traffic_tables import SplitKind

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin), Depends(known_query_only)],
)

ALERT_LABEL = "paramstack_model"
SplitName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
Reason = Annotated[str | None, Field(None, max_length=500)]


class SplitBody(Strict):
    stable: str = Field(min_length=1, max_length=128)
    candidate: str = Field(min_length=1, max_length=128)
    kind: SplitKind = SplitKind.CANARY
    candidate_percent: float = Field(5.0, ge=0, le=100)
    max_error_rate: float | None = Field(None, ge=0, lt=1)
    max_p95_ms: float | None = Field(None, gt=0, le=3_600_000)
    window_s: float = Field(300.0, gt=0, le=registry.MAX_WINDOW_S)
    min_requests: int = Field(20, ge=1, le=1_000_000)


class ReasonBody(Strict):
    reason: Reason = None


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str = Field(max_length=32)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook body (version 4); fields other than the alerts are ignored."""

    model_config = ConfigDict(extra="allow")

    version: str = Field("4", max_length=8)
    status: str = Field("firing", max_length=32)
    alerts: list[Alert] = Field(default_factory=list, max_length=1000)


def _state(request: Request) -> tuple[Any, TrafficTable, Any]:
    state = request.app.state
    return state.factory, state.traffic, state.logs


def _live(table: TrafficTable, name: str) -> dict[str, Any] | None:
    """This process's sliding window per arm (what the SLO watcher judges)."""
    split = table.get(name)
    if split is None:
        return None
    return {
        arm: {
            "requests": w.requests,
            "errors": w.errors,
            "p95_ms": w.p95_ms,
            "cost": {currency: format(c.normalize(), "f") for currency, c in w.cost.items()},
        }
        for arm in ("stable", "candidate")
        for w in [table.window(split, arm)]
    }


async def _read(request: Request, name: str, *, history: bool) -> dict[str, Any]:
    factory, table, _ = _state(request)

    def run() -> dict[str, Any]:
        with factory() as session:
            return registry.describe_split(registry.get_split(session, name), history=history)

    info = await to_thread.run_sync(run)
    info["live_window"] = _live(table, name)
    local = table.get(name)  # what this process routes by now (the snapshot may lag)
    info["in_this_process"] = (
        None
        if local is None
        else {
            "status": local.status,
            "candidate_percent": local.percent,
            "revision": local.revision,
        }
    )
    return info


@router.get("/traffic", summary="Every traffic split", responses=ERRORS)
async def list_splits(request: Request, _: AdminActor) -> dict[str, Any]:
    factory = request.app.state.factory

    def run() -> list[dict[str, Any]]:
        with factory() as session:
            return [registry.describe_split(s) for s in registry.list_splits(session)]

    return {"object": "list", "data": await to_thread.run_sync(run)}


@router.put(
    "/traffic/{name}", summary="Create or replace a split (A/B or canary)", responses=ERRORS
)
async def set_split(
    request: Request, name: SplitName, body: SplitBody, actor: AdminActor
) -> dict[str, Any]:
    factory, table, logs = _state(request)
    routers = request.app.state.openai.routers.specs()  # virtual models are targets too
    known = [*request.app.state.models.names(), *(r.name for r in routers)]
    spec = SplitSpec(**body.model_dump())
    return await traffic_ops.change_split(
        factory, table, logs,
        lambda s: registry.set_split(s, name, spec, actor=actor, known_models=known),
        action="set", actor=actor,
    )  # fmt: skip


@router.get("/traffic/{name}", summary="One split with its history", responses=ERRORS)
async def show_split(request: Request, name: SplitName, _: AdminActor) -> dict[str, Any]:
    return await _read(request, name, history=True)


@router.post("/traffic/{name}/promote", summary="Make the candidate stable", responses=ERRORS)
async def promote(
    request: Request, name: SplitName, actor: AdminActor, body: ReasonBody | None = None
) -> dict[str, Any]:
    factory, table, logs = _state(request)
    reason = body.reason if body else None
    return await traffic_ops.change_split(
        factory, table, logs,
        lambda s: registry.promote(s, name, actor=actor, reason=reason),
        action="promote", actor=actor,
    )  # fmt: skip


@router.post("/traffic/{name}/rollback", summary="Candidate share to 0", responses=ERRORS)
async def rollback(
    request: Request, name: SplitName, actor: AdminActor, body: ReasonBody | None = None
) -> dict[str, Any]:
    factory, table, logs = _state(request)
    reason = (body.reason if body else None) or "rolled back through the admin API"
    return await traffic_ops.rollback(
        factory, table, logs, name, reason=reason, actor=actor, trigger="admin"
    )


@router.post("/traffic/{name}/stop", summary="End the split", responses=ERRORS)
async def stop(request: Request, name: SplitName, actor: AdminActor) -> dict[str, Any]:
    factory, table, logs = _state(request)
    return await traffic_ops.change_split(
        factory, table, logs, lambda s: registry.stop(s, name, actor=actor),
        action="stop", actor=actor,
    )  # fmt: skip


@router.get("/traffic/{name}/stats", summary="Per-arm usage from the ledger", responses=ERRORS)
async def stats(
    request: Request,
    name: SplitName,
    _: AdminActor,
    since: Annotated[
        datetime | None, Query(description="ISO 8601 (UTC when naive); default: split start.")
    ] = None,
) -> dict[str, Any]:
    if since is not None and not 2000 <= since.year <= 9000:
        raise InvalidInput("since must lie between the years 2000 and 9000", param="since")
    start = since.astimezone(UTC) if since is not None and since.tzinfo else since
    factory, table, _ = _state(request)

    def run() -> dict[str, Any]:
        with factory() as session:
            split = registry.get_split(session, name)
            arms = arm_usage(session, split, since=start)
            return {
                "split": registry.describe_split(split),
                "arms": {arm: usage.as_dict() for arm, usage in arms.items()},
            }

    report = await to_thread.run_sync(run)
    report["live_window"] = _live(table, name)
    return report


@router.post(
    "/alertmanager",
    summary="Alertmanager webhook: a firing alert naming a canary rolls it back",
    responses=ERRORS,
)
async def alertmanager(
    request: Request, payload: AlertmanagerPayload, actor: AdminActor
) -> dict[str, Any]:
    factory, table, logs = _state(request)
    rolled_back: list[str] = []
    ignored: list[dict[str, str]] = []
    for alert in payload.alerts:
        # paramstack_model, else the split label every paramstack_traffic_* series carries
        name = (alert.labels.get(ALERT_LABEL) or alert.labels.get("split", ""))[:128]
        alertname = alert.labels.get("alertname", "alert")[:128]
        if alert.status != "firing" or not name:
            why = f"status {alert.status[:32]}" if name else f"no {ALERT_LABEL} label"
            ignored.append({"alert": alertname, "model": name, "reason": why})
            continue
        summary = alert.annotations.get("summary", "")[:300]
        reason = f"Alertmanager alert {alertname} firing" + (f": {summary}" if summary else "")
        try:
            await traffic_ops.rollback(
                factory, table, logs, name, reason=reason, actor="alertmanager",
                trigger="alertmanager", canary_only=True,
            )  # fmt: skip
            rolled_back.append(name)
        except (NotFound, Conflict) as exc:  # unknown, an A/B split, or no longer running
            ignored.append({"alert": alertname, "model": name, "reason": exc.message})
    return {"rolled_back": rolled_back, "ignored": ignored}
