"""ORM tables; JSON columns hold shapes, labels, metrics and lineage (SQLite and PostgreSQL)."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Stage(enum.StrEnum):
    REGISTERED = "registered"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class ABStatus(enum.StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: readable in SQL, portable across dialects.
    return Enum(cls, name=name, native_enum=False, values_callable=lambda e: [m.value for m in e])


class Model(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    domain: Mapped[str] = mapped_column(String(64), default="general")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.version"
    )


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
        Index("ix_model_versions_model_stage", "model_id", "stage"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    artifact_path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    opset: Mapped[int | None] = mapped_column(Integer, nullable=True)
    input_shape: Mapped[list[Any]] = mapped_column(JSON, default=list)
    output_shape: Mapped[list[Any]] = mapped_column(JSON, default=list)
    class_labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stage: Mapped[Stage] = mapped_column(_enum(Stage, "stage"), default=Stage.REGISTERED)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    model: Mapped[Model] = relationship(back_populates="versions")


class InferenceLog(Base):
    """One row per predict request; the raw input is never stored, only its SHA-256."""

    __tablename__ = "inference_logs"
    __table_args__ = (
        Index("ix_inference_logs_version_created", "model_version_id", "created_at"),
        Index("ix_inference_logs_abtest_arm", "ab_test_id", "arm"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # Not unique: callers may supply their own x-request-id, and a log row must never be refused.
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    ab_test_id: Mapped[int | None] = mapped_column(ForeignKey("ab_tests.id"), nullable=True)
    arm: Mapped[str | None] = mapped_column(String(1), nullable=True)
    tenant_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    input_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    preprocessing_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    inference_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    result_class: Mapped[str | None] = mapped_column(String(128), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PredictionFeedback(Base):
    """Ground-truth labels fed back after the fact; joined by request id for daily accuracy."""

    __tablename__ = "prediction_feedback"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ABTest(Base):
    __tablename__ = "ab_tests"
    __table_args__ = (Index("ix_ab_tests_model_status", "model_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version_a_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    version_b_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    split_b_percent: Mapped[float] = mapped_column(Float)
    status: Mapped[ABStatus] = mapped_column(_enum(ABStatus, "ab_status"), default=ABStatus.RUNNING)
    requests_a: Mapped[int] = mapped_column(Integer, default=0)
    requests_b: Mapped[int] = mapped_column(Integer, default=0)
    mean_latency_a_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_latency_b_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p95_latency_a_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p95_latency_b_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    winner: Mapped[str | None] = mapped_column(String(1), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    model: Mapped[Model] = relationship()
    version_a: Mapped[ModelVersion] = relationship(foreign_keys=[version_a_id])
    version_b: Mapped[ModelVersion] = relationship(foreign_keys=[version_b_id])


class DailyMetric(Base):
    __tablename__ = "daily_metrics"
    __table_args__ = (
        UniqueConstraint("model_version_id", "day", name="uq_daily_metrics_version_day"),
        Index("ix_daily_metrics_day", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    day: Mapped[date] = mapped_column(Date)
    total_requests: Mapped[int] = mapped_column(Integer)
    successful_requests: Mapped[int] = mapped_column(Integer)
    cache_hits: Mapped[int] = mapped_column(Integer, default=0)
    mean_latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p95_latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p99_latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    labelled_requests: Mapped[int] = mapped_column(Integer, default=0)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
