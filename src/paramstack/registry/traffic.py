"""Traffic splits between LLM public model names: set, promote, roll back, stop, snapshot.

A split sends ``candidate_percent`` of a public name's traffic to the candidate target and
the rest to the stable one (sticky per user in the gateway). ``kind`` says what the split is
for: ``ab`` compares two targets, ``canary`` rolls a new one out under an SLO (error rate
and/or p95 latency over a window, judged after a minimum of requests) and is rolled back
automatically when it breaks it. Every change bumps ``revision`` and adds a history event;
callers append the matching audit-chain entry (``audit_event``) in their own way.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from paramstack.errors import Conflict, InvalidInput, NotFound
from paramstack.store.tables import utcnow
from paramstack.store.traffic_tables import SplitKind, SplitStatus, TrafficEvent, TrafficSplit

SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
MAX_WINDOW_S = 86_400.0
MAX_REASON = 500


@dataclass
class SplitSpec:
    """What an administrator sets; SLO fields apply to canaries only (None = not checked)."""

    stable: str
    candidate: str
    kind: SplitKind = SplitKind.CANARY
    candidate_percent: float = 5.0
    max_error_rate: float | None = None
    max_p95_ms: float | None = None
    window_s: float = 300.0
    min_requests: int = 20


@dataclass(frozen=True, slots=True)
class SplitView:
    """The gateway's read-only snapshot of one split."""

    id: int
    name: str
    stable: str
    candidate: str
    kind: str
    percent: float
    status: str
    revision: int
    max_error_rate: float | None
    max_p95_ms: float | None
    window_s: float
    min_requests: int

    @property
    def splitting(self) -> bool:
        return self.status == SplitStatus.RUNNING and self.percent > 0

    @property
    def guarded(self) -> bool:
        """A running canary with an SLO: the watcher judges it."""
        return (
            self.splitting
            and self.kind == SplitKind.CANARY
            and (self.max_error_rate is not None or self.max_p95_ms is not None)
        )


def _check(name: str, spec: SplitSpec, known_models: Collection[str] | None) -> None:
    if not SPLIT_NAME.fullmatch(name):
        raise InvalidInput(
            "a split name is 1-128 letters, digits, '.', '_', ':' or '-'", param="name"
        )
    for param in ("stable", "candidate"):
        target = getattr(spec, param)
        if not 1 <= len(target) <= 128:
            raise InvalidInput(f"{param} must be 1 to 128 characters", param=param)
        if known_models is not None and target not in known_models:
            raise InvalidInput(f"{param} {target!r} is not in the LLM model table", param=param)
    if spec.stable == spec.candidate:
        raise InvalidInput("stable and candidate must differ", param="candidate")
    if not 0 <= spec.candidate_percent <= 100:
        raise InvalidInput("candidate_percent must be between 0 and 100", param="candidate_percent")
    if spec.max_error_rate is not None and not 0 <= spec.max_error_rate < 1:
        raise InvalidInput("max_error_rate must be in [0, 1)", param="max_error_rate")
    if spec.max_p95_ms is not None and not spec.max_p95_ms > 0:
        raise InvalidInput("max_p95_ms must be positive", param="max_p95_ms")
    if not 0 < spec.window_s <= MAX_WINDOW_S:
        raise InvalidInput(f"window_s must be in (0, {MAX_WINDOW_S:.0f}]", param="window_s")
    if spec.min_requests < 1:
        raise InvalidInput("min_requests must be at least 1", param="min_requests")
    has_slo = spec.max_error_rate is not None or spec.max_p95_ms is not None
    if has_slo and spec.kind != SplitKind.CANARY:
        raise InvalidInput("an SLO applies to canary splits only", param="kind")


def _event(split: TrafficSplit, action: str, actor: str, reason: str | None) -> None:
    split.events.append(
        TrafficEvent(
            action=action,
            stable=split.stable,
            candidate=split.candidate,
            candidate_percent=split.candidate_percent,
            status=split.status.value,
            actor=actor[:64],
            reason=reason,
        )
    )


def _reason(reason: str | None) -> str | None:
    return None if reason is None else reason[:MAX_REASON]


def get_split(session: Session, name: str) -> TrafficSplit:
    split = session.scalar(
        select(TrafficSplit)
        .where(TrafficSplit.name == name)
        .options(selectinload(TrafficSplit.events))
    )
    if split is None:
        raise NotFound(f"no traffic split named {name[:128]!r}", code="split_not_found")
    return split


def list_splits(session: Session) -> list[TrafficSplit]:
    return list(session.scalars(select(TrafficSplit).order_by(TrafficSplit.name)))


def set_split(
    session: Session,
    name: str,
    spec: SplitSpec,
    *,
    actor: str,
    known_models: Collection[str] | None = None,
) -> TrafficSplit:
    """Create the split, or replace its targets, share and SLO; it is running afterwards."""
    _check(name, spec, known_models)
    split = session.scalar(select(TrafficSplit).where(TrafficSplit.name == name))
    if split is None:
        split = TrafficSplit(name=name, revision=0)
        session.add(split)
    split.stable, split.candidate = spec.stable, spec.candidate
    split.kind, split.candidate_percent = SplitKind(spec.kind), float(spec.candidate_percent)
    split.max_error_rate, split.max_p95_ms = spec.max_error_rate, spec.max_p95_ms
    split.window_s, split.min_requests = float(spec.window_s), spec.min_requests
    split.status, split.reason = SplitStatus.RUNNING, None
    split.started_at = utcnow()  # per-arm statistics count from here
    split.revision += 1
    _event(split, "set", actor, None)
    session.flush()
    return split


def set_share(session: Session, name: str, percent: float, *, actor: str) -> TrafficSplit:
    """The same split (targets, kind, SLO) with a new candidate share; running afterwards."""
    row = get_split(session, name)
    spec = SplitSpec(
        stable=row.stable, candidate=row.candidate, kind=row.kind, candidate_percent=percent,
        max_error_rate=row.max_error_rate, max_p95_ms=row.max_p95_ms, window_s=row.window_s,
        min_requests=row.min_requests,
    )  # fmt: skip
    return set_split(session, name, spec, actor=actor)


def _running(session: Session, name: str, action: str) -> TrafficSplit:
    split = get_split(session, name)
    if split.status != SplitStatus.RUNNING:
        raise Conflict(
            f"split {name!r} is {split.status.value}; only a running split can be {action}",
            code="split_not_running",
        )
    return split


def promote(session: Session, name: str, *, actor: str, reason: str | None = None) -> TrafficSplit:
    """The candidate becomes the stable target and takes all traffic."""
    split = _running(session, name, "promoted")
    split.stable = split.candidate
    split.candidate_percent = 0.0
    split.status, split.reason = SplitStatus.PROMOTED, _reason(reason)
    split.revision += 1
    _event(split, "promote", actor, split.reason)
    session.flush()
    return split


def rollback(session: Session, name: str, *, actor: str, reason: str) -> TrafficSplit:
    """The candidate's share goes to 0 and all traffic to stable; the reason is kept."""
    split = _running(session, name, "rolled back")
    split.candidate_percent = 0.0
    split.status, split.reason = SplitStatus.ROLLED_BACK, _reason(reason)
    split.revision += 1
    _event(split, "rollback", actor, split.reason)
    session.flush()
    return split


def stop(session: Session, name: str, *, actor: str) -> TrafficSplit:
    """End the split: the public name is no longer split (it routes as the model table says)."""
    split = get_split(session, name)
    if split.status == SplitStatus.STOPPED:
        raise Conflict(f"split {name!r} is already stopped", code="split_stopped")
    split.status = SplitStatus.STOPPED
    split.revision += 1
    _event(split, "stop", actor, None)
    session.flush()
    return split


def view(split: TrafficSplit) -> SplitView:
    return SplitView(
        id=split.id,
        name=split.name,
        stable=split.stable,
        candidate=split.candidate,
        kind=split.kind.value,
        percent=split.candidate_percent,
        status=split.status.value,
        revision=split.revision,
        max_error_rate=split.max_error_rate,
        max_p95_ms=split.max_p95_ms,
        window_s=split.window_s,
        min_requests=split.min_requests,
    )


def load_views(session: Session) -> dict[str, SplitView]:
    """Every split that still routes its name (all but stopped ones), for the gateway."""
    rows = session.scalars(select(TrafficSplit).where(TrafficSplit.status != SplitStatus.STOPPED))
    return {split.name: view(split) for split in rows}


def audit_event(split: TrafficSplit, action: str, actor: str) -> dict[str, Any]:
    """The audit-chain entry for a change (``kind``, ``payload``, ``tenant``): names only."""
    payload = {
        "split": split.name,
        "action": action,
        "stable": split.stable,
        "candidate": split.candidate,
        "candidate_percent": split.candidate_percent,
        "status": split.status.value,
        "revision": split.revision,
        "actor": actor[:64],
        "reason": split.reason,
    }
    return {"kind": f"traffic_{action}", "payload": payload, "tenant": None}


def describe_split(split: TrafficSplit, *, history: bool = False) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": split.name,
        "kind": split.kind.value,
        "status": split.status.value,
        "stable": split.stable,
        "candidate": split.candidate,
        "candidate_percent": split.candidate_percent,
        "slo": {
            "max_error_rate": split.max_error_rate,
            "max_p95_ms": split.max_p95_ms,
            "window_s": split.window_s,
            "min_requests": split.min_requests,
        },
        "reason": split.reason,
        "revision": split.revision,
        "started_at": split.started_at.isoformat() if split.started_at else None,
        "updated_at": split.updated_at.isoformat() if split.updated_at else None,
    }
    if history:
        info["history"] = [
            {
                "action": e.action,
                "stable": e.stable,
                "candidate": e.candidate,
                "candidate_percent": e.candidate_percent,
                "status": e.status,
                "actor": e.actor,
                "reason": e.reason,
                "at": e.at.isoformat() if e.at else None,
            }
            for e in split.events
        ]
    return info
