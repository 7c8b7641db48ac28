"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import JSONResponse, PlainTextResponse, Response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Registry snapshot loaded and serving versions warmed",
    responses={503: {"description": "Still starting", "content": {"application/json": {}}}},
)
async def readyz(request: Request) -> Response:
    routes = request.app.state.predictor.routes
    if not routes.loaded:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready", "models": routes.model_names()})


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    telemetry = request.app.state.telemetry
    predictor = request.app.state.predictor
    telemetry.logs_pending.set(predictor.logs.pending)
    telemetry.ops.refresh(predictor.logs)
    guard = request.app.state.openai.guard
    if guard is not None:
        telemetry.ops.verdicts(*guard.verdict_lookups())
    request.app.state.openai.observe_breakers()
    return Response(telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)
