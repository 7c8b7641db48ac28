"""traffic splits between LLM public model names (A/B, canary) and their history

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traffic_splits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("stable", sa.String(length=128), nullable=False),
        sa.Column("candidate", sa.String(length=128), nullable=False),
        sa.Column(
            "kind", sa.Enum("ab", "canary", name="split_kind", native_enum=False), nullable=False
        ),
        sa.Column("candidate_percent", sa.Float(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "promoted",
                "rolled_back",
                "stopped",
                name="split_status",
                native_enum=False,
            ),
            nullable=False,
        ),
        sa.Column("max_error_rate", sa.Float(), nullable=True),
        sa.Column("max_p95_ms", sa.Float(), nullable=True),
        sa.Column("window_s", sa.Float(), nullable=False),
        sa.Column("min_requests", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "traffic_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("split_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("stable", sa.String(length=128), nullable=False),
        sa.Column("candidate", sa.String(length=128), nullable=False),
        sa.Column("candidate_percent", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["split_id"], ["traffic_splits.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("traffic_events", schema=None) as batch_op:
        batch_op.create_index("ix_traffic_events_split", ["split_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("traffic_events", schema=None) as batch_op:
        batch_op.drop_index("ix_traffic_events_split")
    op.drop_table("traffic_events")
    op.drop_table("traffic_splits")
