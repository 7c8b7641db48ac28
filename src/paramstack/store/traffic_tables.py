"""ORM tables for traffic splits between LLM public model names (A/B tests and canaries).

A split maps one public name to a stable and a candidate target (both public names of the
models YAML) with the candidate's share and an SLO. ``revision`` grows on every change, so a
gateway that rolled a canary back locally can tell an older snapshot from a newer decision.
Every change also appends a ``TrafficEvent``: the history of who moved the share and why.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from paramstack.store.tables import Base, _enum, utcnow


class SplitKind(enum.StrEnum):
    AB = "ab"
    CANARY = "canary"


class SplitStatus(enum.StrEnum):
    RUNNING = "running"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    STOPPED = "stopped"


class TrafficSplit(Base):
    __tablename__ = "traffic_splits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    stable: Mapped[str] = mapped_column(String(128))
    candidate: Mapped[str] = mapped_column(String(128))
    kind: Mapped[SplitKind] = mapped_column(_enum(SplitKind, "split_kind"))
    candidate_percent: Mapped[float] = mapped_column(Float)
    status: Mapped[SplitStatus] = mapped_column(
        _enum(SplitStatus, "split_status"), default=SplitStatus.RUNNING
    )
    max_error_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_p95_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    window_s: Mapped[float] = mapped_column(Float, default=300.0)
    min_requests: Mapped[int] = mapped_column(Integer, default=20)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    events: Mapped[list[TrafficEvent]] = relationship(
        back_populates="split", order_by="TrafficEvent.id", cascade="all, delete-orphan"
    )


class TrafficEvent(Base):
    """One change of a split: what happened, the share after it, who did it and why."""

    __tablename__ = "traffic_events"
    __table_args__ = (Index("ix_traffic_events_split", "split_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    split_id: Mapped[int] = mapped_column(ForeignKey("traffic_splits.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    stable: Mapped[str] = mapped_column(String(128))
    candidate: Mapped[str] = mapped_column(String(128))
    candidate_percent: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    split: Mapped[TrafficSplit] = relationship(back_populates="events")
