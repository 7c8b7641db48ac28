"""Traffic-split changes made by the gateway itself: snapshot refresh, rollback, SLO watcher.

A rollback (from the watcher, the admin API or an Alertmanager alert) commits to the
registry first, then takes effect in this process at once; other workers and replicas pick it
up with their next snapshot. Its audit-chain entry goes through the batched log writer, the
chain's single writer in this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from anyio import to_thread
from sqlalchemy.orm import Session, sessionmaker

from paramstack.errors import Conflict
from paramstack.gateway.log_writer import LogWriter
from paramstack.gateway.traffic import TrafficTable
from paramstack.registry import traffic as registry
from paramstack.registry.traffic import SplitView
from paramstack.store.audit_tables import AuditEntry
from paramstack.store.engine import transaction
from paramstack.store.traffic_tables import SplitKind, TrafficSplit

log = logging.getLogger(__name__)

Change = Callable[[Session], TrafficSplit]


def _load(factory: sessionmaker[Session]) -> dict[str, SplitView]:
    with factory() as session:
        return registry.load_views(session)


async def refresh_traffic(factory: sessionmaker[Session], table: TrafficTable) -> None:
    table.replace(await to_thread.run_sync(_load, factory))


async def change_split(
    factory: sessionmaker[Session],
    table: TrafficTable,
    logs: LogWriter,
    change: Change,
    *,
    action: str,
    actor: str,
) -> dict[str, Any]:
    """Run one registry change in its own transaction, apply it here and audit it."""

    def run() -> tuple[SplitView, dict[str, Any], dict[str, Any]]:
        with transaction(factory) as session:
            split = change(session)
            result = (
                registry.view(split),
                registry.audit_event(split, action, actor),
                registry.describe_split(split),
            )
        if result[0].status != "stopped":
            table.apply(result[0])  # right after the commit, in this thread: no request between
        return result

    view, event, described = await to_thread.run_sync(run)
    if view.status == "stopped":
        await refresh_traffic(factory, table)  # a stopped split leaves the snapshot
    logs.submit(AuditEntry, event)
    return described


async def rollback(
    factory: sessionmaker[Session],
    table: TrafficTable,
    logs: LogWriter,
    name: str,
    *,
    reason: str,
    actor: str,
    trigger: str,
    canary_only: bool = False,
) -> dict[str, Any]:
    def change(session: Session) -> TrafficSplit:
        if canary_only and registry.get_split(session, name).kind != SplitKind.CANARY:
            raise Conflict(f"split {name!r} is not a canary", code="not_a_canary")
        return registry.rollback(session, name, actor=actor, reason=reason)

    described = await change_split(factory, table, logs, change, action="rollback", actor=actor)
    if table.metrics is not None:
        table.metrics.rollbacks.labels(name, trigger).inc()
    log.warning("traffic split %s rolled back by %s: %s", name, actor, reason)
    return described


async def watch_slos(
    factory: sessionmaker[Session], table: TrafficTable, logs: LogWriter, interval_s: float
) -> None:
    """Judge every guarded canary each ``interval_s``; roll back the ones over their SLO."""
    while True:
        await asyncio.sleep(interval_s)
        for split, reason in table.breaches():
            try:
                await rollback(
                    factory, table, logs, split.name,
                    reason=f"SLO breached: {reason}", actor="slo-watcher", trigger="slo",
                )  # fmt: skip
            except Conflict:  # changed elsewhere meanwhile (promoted, stopped, rolled back)
                await refresh_traffic(factory, table)
            except Exception:  # keep watching the others; the next round retries this one
                log.exception("rolling back %s failed", split.name)
