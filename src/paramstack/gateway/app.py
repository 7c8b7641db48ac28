"""App factory: services are built once in the lifespan and kept on ``app.state``.

Start with ``paramstack serve`` (or ``uvicorn --factory paramstack.gateway.app:served_app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from paramstack import __version__
from paramstack.backends.onnx_sessions import SessionCache
from paramstack.config import Settings
from paramstack.errors import ParamstackError, Unavailable
from paramstack.gateway import tracing
from paramstack.gateway.admin_auth import admin_digest
from paramstack.gateway.attestation import Attestor, audit_chain, load_key
from paramstack.gateway.chat_guard import build_chat_guard
from paramstack.gateway.client_address import parse_trusted_proxies
from paramstack.gateway.errors import document_errors_as_400, install_error_handlers
from paramstack.gateway.hot_routes import GatewayApp, HotRoutes
from paramstack.gateway.limits import InProcessLimiter, build_limiter
from paramstack.gateway.log_writer import LogWriter
from paramstack.gateway.middleware import RequestContext
from paramstack.gateway.model_table import ModelTable
from paramstack.gateway.predictor import Predictor
from paramstack.gateway.rag_context import ChatRetriever
from paramstack.gateway.result_cache import ResultCache
from paramstack.gateway.routes import (
    admin,
    admin_traffic,
    attestations,
    health,
    openai,
    predict,
    rag,
    usage,
)
from paramstack.gateway.routing import RouteTable
from paramstack.gateway.serving_chat import OpenAIServing
from paramstack.gateway.tasks import get_task
from paramstack.gateway.tasks.ecg import set_context_limit
from paramstack.gateway.telemetry import Telemetry
from paramstack.gateway.traffic import TrafficMetrics, TrafficTable
from paramstack.gateway.traffic_ops import refresh_traffic, watch_slos
from paramstack.registry.key_material import Pepper, resolve_pepper
from paramstack.registry.key_ring import KeyRing
from paramstack.registry.serving import ModelEntry, load_snapshot
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.migrate import current_revision, head_revision
from paramstack.store.tables import Stage

log = logging.getLogger(__name__)


def _check_schema(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise Unavailable(
            f"database schema is at {current or 'nothing'}, expected {head}: "
            "run `paramstack db upgrade` first",
            code="schema_out_of_date",
        )


def _load_and_warm(factory: sessionmaker[Session], sessions: SessionCache) -> dict[str, ModelEntry]:
    """Read the registry and load the sessions requests will hit first (blocking: a thread)."""
    with factory() as session:
        entries = load_snapshot(session)
    for entry in entries.values():
        warm = [entry.newest_in(Stage.PRODUCTION)]
        if entry.abtest is not None:
            warm += [entry.abtest.version_a, entry.abtest.version_b]
        for served in warm:
            if served is not None and served.type == "onnx":
                try:
                    sessions.load(served.id, served.artifact_path)
                    get_task(served.task).warm()
                except ParamstackError as exc:
                    log.error("cannot warm %s v%s: %s", served.name, served.version, exc.message)
    return entries


async def refresh_routes(app: FastAPI) -> None:
    """Swap in a fresh registry snapshot; evict sessions and cached results no longer served."""
    state = app.state
    entries = await to_thread.run_sync(_load_and_warm, state.factory, state.sessions)
    keep = state.predictor.routes.replace(entries)
    for version_id in state.sessions.evict_except(keep):
        log.info("evicted model version %s", version_id)
    state.predictor.cache.evict_versions(keep)
    state.telemetry.sessions_loaded.set(len(state.sessions))


def _load_key_ring(factory: sessionmaker[Session], pepper: Pepper) -> KeyRing:
    with factory() as session:
        return KeyRing.load(session, pepper)


async def refresh_keys(app: FastAPI) -> None:
    """Swap in a fresh API-key snapshot: revocations reach this replica within one period."""
    state = app.state
    ring = await to_thread.run_sync(_load_key_ring, state.factory, state.pepper)
    if state.openai.guard is not None:  # tenants' guards exist before their keys are usable
        await to_thread.run_sync(state.openai.guard.prepare, ring.tenants())
    state.key_ring = ring


async def refresh_splits(app: FastAPI) -> None:
    await refresh_traffic(app.state.factory, app.state.traffic)


async def _refresh_forever(app: FastAPI, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        for refresh in (refresh_routes, refresh_keys, refresh_splits):
            try:
                await refresh(app)
            except Exception:  # keep serving the last good snapshot
                log.exception("registry refresh failed (%s)", refresh.__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = make_engine(settings.resolved_database_url)
    _check_schema(engine)
    telemetry = Telemetry()
    factory = session_factory(engine)
    key = load_key(settings)
    chain = audit_chain(settings, key)
    logs = LogWriter(
        factory,
        interval_s=settings.log_flush_interval_s,
        batch_size=settings.log_batch_size,
        max_pending=settings.log_queue_max,
        on_written=telemetry.logs_written.inc,
        audit=chain,
        observer=telemetry.ops,
    )
    sessions = SessionCache(settings.ort_intra_op_threads)
    set_context_limit(settings.ecg_context_max_s)
    pepper = resolve_pepper(settings)
    models = ModelTable.from_file(settings.resolved_llm_models_file)
    # Only the LLM routes are limited: a predict-only server with several workers needs no
    # shared limiter (build_limiter refuses per-process counters with several workers).
    limiter = build_limiter(settings) if models.names() else InProcessLimiter()
    app.state.factory = factory
    app.state.admin_digest = admin_digest(settings)
    app.state.logs = logs
    app.state.models = models
    app.state.traffic = traffic = TrafficTable(TrafficMetrics(telemetry.registry))
    app.state.pepper = pepper
    app.state.telemetry = telemetry
    app.state.sessions = sessions
    app.state.predictor = Predictor(
        RouteTable(),
        sessions,
        ResultCache(settings.result_cache_size),
        logs,
        telemetry,
        Attestor(key, logs) if key is not None else None,
        pepper,
    )
    app.state.openai = OpenAIServing(
        models,
        limiter,
        logs,
        build_chat_guard(settings),
        Attestor(key, logs) if key is not None else None,
        telemetry.llm,
        traffic,
    )
    app.state.openai.retriever = ChatRetriever(app)
    logs.start()
    await refresh_routes(app)
    await refresh_keys(app)
    await refresh_splits(app)
    background = [
        asyncio.create_task(_refresh_forever(app, settings.registry_refresh_s)),
        asyncio.create_task(watch_slos(factory, traffic, logs, settings.traffic_check_s)),
    ]
    if app.state.freeze_heap:
        # What startup built (modules, schemas, guard tables, snapshots) lives as long as the
        # process: frozen, it leaves the collector's generations, so a full collection no
        # longer walks it again (~80 ms each, every few thousand requests, measured).
        gc.collect()
        gc.freeze()
    try:
        yield
    finally:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for close in (models.aclose, limiter.aclose):
            try:
                await close()
            except Exception:  # never let a failed close skip the ledger flush below
                log.exception("closing %s failed", close)
        await to_thread.run_sync(logs.close)
        await rag.close_rag(app)
        log.info("flushed inference logs: %d written, %d dropped", logs.written, logs.dropped)
        if key is not None:  # sign the final head, so a cut-off tail is detectable
            with transaction(factory) as session:
                chain.checkpoint(session)
        engine.dispose()


def create_app(
    settings: Settings | None = None, *, hot_routes: bool = True, freeze_heap: bool = False
) -> FastAPI:
    """``hot_routes=False`` leaves the LLM POST routes to FastAPI alone: the reference that
    ``HotRoutes`` is tested against (same answers), never a setting. ``freeze_heap``: see
    :func:`served_app`."""
    app = GatewayApp(
        title="paramstack gateway",
        version=__version__,
        lifespan=lifespan,
        description="Serves registered models; every error uses OpenAI's error shape.",
        # Metrics are Prometheus (/metrics). FastAPI's OpenTelemetry bridge, unused here, looks
        # up three provider variables in os.environ on every request (~7-10 µs measured).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings or Settings()
    app.state.freeze_heap = freeze_heap
    install_error_handlers(app)
    app.include_router(predict.router)
    app.include_router(openai.router)
    app.include_router(usage.router)
    app.include_router(rag.router)
    app.include_router(attestations.router)
    app.include_router(admin.router)
    app.include_router(admin_traffic.router)
    app.include_router(health.router)
    max_body = app.state.settings.max_body_bytes
    trusted = parse_trusted_proxies(app.state.settings.trusted_proxies)
    app.add_middleware(RequestContext, max_body_bytes=max_body, trusted=trusted)
    hot = HotRoutes(app, max_body, trusted) if hot_routes else None
    if tracing.install(app, app.state.settings):  # outermost: its span parents everything
        app.hot = tracing.TracingMiddleware(hot) if hot is not None else None
    else:
        app.hot = hot
    document_errors_as_400(app)
    return app


def served_app() -> FastAPI:
    """The app of ``paramstack serve``: one per process, so its startup heap is frozen out of
    the garbage collector (``gc.freeze``) once started. Not in ``create_app``'s default: a
    test process builds many apps, and freezing would keep each one's garbage for good."""
    return create_app(freeze_heap=True)
