"""Roll inference logs up into one row per model version and day (idempotent: re-running a day
replaces its rows, so a late flush of logs is picked up by aggregating again)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from paramstack.registry.stats import mean, percentile
from paramstack.store.tables import DailyMetric, InferenceLog, PredictionFeedback


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def aggregate_day(session: Session, day: date) -> list[DailyMetric]:
    start, end = day_bounds(day)
    rows = session.execute(
        select(
            InferenceLog.model_version_id,
            InferenceLog.status,
            InferenceLog.latency_ms,
            InferenceLog.confidence,
            InferenceLog.cached,
            InferenceLog.result_class,
            PredictionFeedback.label,
        )
        .outerjoin(PredictionFeedback, PredictionFeedback.request_id == InferenceLog.request_id)
        .where(InferenceLog.created_at >= start, InferenceLog.created_at < end)
    ).all()
    by_version: dict[int, list[tuple]] = defaultdict(list)  # type: ignore[type-arg]
    for row in rows:
        by_version[row.model_version_id].append(tuple(row))
    session.execute(delete(DailyMetric).where(DailyMetric.day == day))
    out = []
    for version_id, items in sorted(by_version.items()):
        ok = [r for r in items if r[1] == "ok"]
        latencies = [r[2] for r in ok]
        confidences = [r[3] for r in ok if r[3] is not None]
        labelled = [r for r in ok if r[6] is not None]
        metric = DailyMetric(
            model_version_id=version_id,
            day=day,
            total_requests=len(items),
            successful_requests=len(ok),
            cache_hits=sum(1 for r in ok if r[4]),
            mean_latency_ms=mean(latencies),
            p95_latency_ms=percentile(latencies, 95),
            p99_latency_ms=percentile(latencies, 99),
            mean_confidence=mean(confidences),
            labelled_requests=len(labelled),
            accuracy=(sum(1 for r in labelled if r[5] == r[6]) / len(labelled))
            if labelled
            else None,
        )
        session.add(metric)
        out.append(metric)
    session.flush()
    return out


def list_daily(session: Session, since: date | None = None) -> list[DailyMetric]:
    query = select(DailyMetric).order_by(DailyMetric.day, DailyMetric.model_version_id)
    if since is not None:
        query = query.where(DailyMetric.day >= since)
    return list(session.scalars(query))
