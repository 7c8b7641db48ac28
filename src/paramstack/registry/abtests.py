"""A/B tests between two versions of one model: create, report per arm, stop with a winner.

Arm statistics are computed from the inference logs (which record test id and arm), so the
numbers a report shows are the ones the gateway actually served, not a separate counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from paramstack.errors import Conflict, InvalidInput, NotFound
from paramstack.registry.stats import mean, percentile
from paramstack.registry.versions import get_model, get_version
from paramstack.store.tables import ABStatus, ABTest, InferenceLog, PredictionFeedback, Stage

MIN_DECISION_REQUESTS = 30


@dataclass(frozen=True)
class ArmStats:
    requests: int
    errors: int
    mean_latency_ms: float | None
    p95_latency_ms: float | None
    labelled: int
    accuracy: float | None


def create(
    session: Session, name: str, model_name: str, version_a: int, version_b: int, split_b: float
) -> ABTest:
    """Start a test sending ``split_b`` percent of the model's traffic to version B."""
    if not 0 < split_b < 100:
        raise InvalidInput("traffic split must be between 0 and 100 (exclusive)", param="split")
    if version_a == version_b:
        raise InvalidInput("an A/B test needs two different versions", param="version_b")
    if session.scalar(select(ABTest).where(ABTest.name == name)) is not None:
        raise Conflict(f"an A/B test named {name!r} already exists", code="abtest_exists")
    model = get_model(session, model_name)
    running = session.scalar(
        select(ABTest).where(ABTest.model_id == model.id, ABTest.status == ABStatus.RUNNING)
    )
    if running is not None:
        raise Conflict(
            f"A/B test {running.name!r} is already running on {model_name!r}; stop it first",
            code="abtest_running",
        )
    a = get_version(session, model_name, version_a)
    b = get_version(session, model_name, version_b)
    for v in (a, b):
        if v.stage == Stage.ARCHIVED:
            raise Conflict(f"version {v.version} is archived; restore it to staging first")
    test = ABTest(
        name=name, model_id=model.id, version_a_id=a.id, version_b_id=b.id, split_b_percent=split_b
    )
    session.add(test)
    session.flush()
    return test


def get(session: Session, name: str) -> ABTest:
    test = session.scalar(select(ABTest).where(ABTest.name == name))
    if test is None:
        raise NotFound(f"A/B test {name!r} does not exist", code="abtest_not_found")
    return test


def list_tests(session: Session) -> list[ABTest]:
    return list(session.scalars(select(ABTest).order_by(ABTest.created_at)))


def arm_stats(session: Session, test: ABTest) -> dict[str, ArmStats]:
    rows = session.execute(
        select(
            InferenceLog.arm,
            InferenceLog.status,
            InferenceLog.latency_ms,
            InferenceLog.result_class,
            PredictionFeedback.label,
        )
        .outerjoin(PredictionFeedback, PredictionFeedback.request_id == InferenceLog.request_id)
        .where(InferenceLog.ab_test_id == test.id)
    ).all()
    stats = {}
    for arm in ("A", "B"):
        mine = [r for r in rows if r.arm == arm]
        ok = [r.latency_ms for r in mine if r.status == "ok"]
        labelled = [r for r in mine if r.label is not None and r.status == "ok"]
        correct = sum(1 for r in labelled if r.label == r.result_class)
        stats[arm] = ArmStats(
            requests=len(mine),
            errors=len(mine) - len(ok),
            mean_latency_ms=mean(ok),
            p95_latency_ms=percentile(ok, 95),
            labelled=len(labelled),
            accuracy=correct / len(labelled) if labelled else None,
        )
    return stats


def pick_winner(stats: dict[str, ArmStats]) -> str | None:
    """Accuracy decides when both arms have enough labels; otherwise p95 latency; else nobody."""
    a, b = stats["A"], stats["B"]
    if min(a.labelled, b.labelled) >= MIN_DECISION_REQUESTS and a.accuracy != b.accuracy:
        return "A" if (a.accuracy or 0) > (b.accuracy or 0) else "B"
    if (
        min(a.requests, b.requests) >= MIN_DECISION_REQUESTS
        and a.p95_latency_ms
        and b.p95_latency_ms
    ):
        return "A" if a.p95_latency_ms <= b.p95_latency_ms else "B"
    return None


def record_stats(test: ABTest, stats: dict[str, ArmStats]) -> None:
    test.requests_a, test.requests_b = stats["A"].requests, stats["B"].requests
    test.mean_latency_a_ms, test.mean_latency_b_ms = (
        stats["A"].mean_latency_ms,
        stats["B"].mean_latency_ms,
    )
    test.p95_latency_a_ms, test.p95_latency_b_ms = (
        stats["A"].p95_latency_ms,
        stats["B"].p95_latency_ms,
    )


def stop(session: Session, name: str, winner: str | None = None) -> ABTest:
    """Freeze the per-arm numbers and the winner (given, or picked from the numbers)."""
    test = get(session, name)
    if test.status == ABStatus.STOPPED:
        raise Conflict(f"A/B test {name!r} is already stopped", code="abtest_stopped")
    if winner is not None and winner not in ("A", "B"):
        raise InvalidInput("winner must be A or B", param="winner")
    stats = arm_stats(session, test)
    record_stats(test, stats)
    test.winner = winner or pick_winner(stats)
    test.status = ABStatus.STOPPED
    test.stopped_at = datetime.now(UTC)
    session.flush()
    return test
