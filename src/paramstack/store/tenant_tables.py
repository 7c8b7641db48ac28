"""ORM tables for tenants, their API keys, price books and the usage ledger.

Money is stored as an integer count of fixed units (``FixedPoint``): SQLite has no decimal
type (SQLAlchemy's ``Numeric`` goes through float there), and integers keep ``SUM`` exact on
every dialect. The ledger has no foreign keys on purpose: it is append-only history written in
batches off the request path, and a billing row must never be refused because a key or tenant
changed after the request.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from paramstack.store.tables import Base, utcnow

PRICE_SCALE = 9  # price per 1k tokens in units of 1e-9 (a nano-dollar for USD)
COST_SCALE = 12  # tokens x price / 1000 needs three more places: costs are exact, never rounded


class FixedPoint(TypeDecorator[Decimal]):
    """A ``Decimal`` stored as ``BigInteger`` count of ``10**-scale`` units.

    A value with more decimal places than ``scale`` is refused rather than rounded: silently
    rounding a price would make every later cost wrong.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value).scaleb(self.scale)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(scaled)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(int(value)).scaleb(-self.scale)


class Tenant(Base):
    """An organisation: its defaults, limits (None = unlimited) and price book."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(64), default="general")
    default_model: Mapped[str | None] = mapped_column(String(128), nullable=True)
    default_adapter: Mapped[str | None] = mapped_column(String(128), nullable=True)
    rag_collection: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Chat retrieval: off | always | auto; None = auto with a rag_collection, else off.
    rag_policy: Mapped[str | None] = mapped_column(String(16), nullable=True)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    requests_per_second: Mapped[int | None] = mapped_column(Integer, nullable=True)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_per_day: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # A partial guard policy deep-merged over the gateway's base policy: canonical JSON text
    # (sorted keys), so equal overrides hash equal; validated before it is stored.
    guard_policy: Mapped[str | None] = mapped_column(Text, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    prices: Mapped[list[ModelPrice]] = relationship(
        back_populates="tenant", order_by="ModelPrice.model", cascade="all, delete-orphan"
    )


class ModelPrice(Base):
    """Input and output price per 1k tokens of one model for one tenant, in its currency."""

    __tablename__ = "tenant_prices"
    __table_args__ = (UniqueConstraint("tenant_id", "model", name="uq_tenant_prices_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(128))
    input_per_1k: Mapped[Decimal] = mapped_column("input_per_1k_e9", FixedPoint(PRICE_SCALE))
    output_per_1k: Mapped[Decimal] = mapped_column("output_per_1k_e9", FixedPoint(PRICE_SCALE))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    tenant: Mapped[Tenant] = relationship(back_populates="prices")


class ApiKey(Base):
    """One API key: only its visible prefix and HMAC-SHA256(pepper, key) are stored."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_tenant", "tenant_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    name: Mapped[str] = mapped_column(String(128), default="")
    # "member" calls the APIs; "admin" may also change the tenant's data (RAG ingest/delete)
    role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")
    requests_per_second: Mapped[int | None] = mapped_column(Integer, nullable=True)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_per_day: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rotated_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UsageRecord(Base):
    """The usage ledger: one row per gateway request, the source of truth for billing."""

    __tablename__ = "usage_ledger"
    __table_args__ = (
        Index("ix_usage_ledger_tenant_day_model", "tenant_id", "day", "model"),
        Index("ix_usage_ledger_day_model", "day", "model"),
        Index("ix_usage_ledger_key_day", "key_id", "day"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model: Mapped[str] = mapped_column(String(128))
    backend: Mapped[str] = mapped_column(String(64))
    routing: Mapped[str | None] = mapped_column(Text, nullable=True)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal] = mapped_column("cost_e12", FixedPoint(COST_SCALE), default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    latency_ms: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[int] = mapped_column(Integer)
    # The UTC day of created_at, stored so per-day reports group the same way on every dialect.
    day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
