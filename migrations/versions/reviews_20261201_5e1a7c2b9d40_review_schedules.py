"""reviews: card columns of review_items, review_logs, review_schedules

Revision ID: 5e1a7c2b9d40
Revises: a1f3c5e7d901
Create Date: 2026-12-01 17:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e1a7c2b9d40"
down_revision: str | Sequence[str] | None = "a1f3c5e7d901"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("review_items", sa.Column("track_slug", sa.String(length=80), nullable=True))
    op.add_column(
        "review_items", sa.Column("state", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column("review_items", sa.Column("stability", sa.Float(), nullable=True))
    op.add_column("review_items", sa.Column("difficulty", sa.Float(), nullable=True))
    op.add_column("review_items", sa.Column("last_rating", sa.String(length=10), nullable=True))
    op.add_column(
        "review_items", sa.Column("lapses", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "review_items",
        sa.Column("status", sa.String(length=20), server_default="scheduled", nullable=False),
    )
    op.add_column("review_items", sa.Column("notified_batch", sa.Uuid(), nullable=True))
    op.add_column(
        "review_items", sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "review_items", sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.add_column(
        "review_items",
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
    )
    op.create_check_constraint(
        op.f("ck_review_items_status"), "review_items", "status IN ('scheduled','due')"
    )
    op.create_table(
        "review_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("problem_id", sa.String(length=120), nullable=False),
        sa.Column("rating", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("elapsed_days", sa.Integer(), nullable=True),
        sa.Column("state_before", sa.Integer(), nullable=False),
        sa.Column("state_after", sa.Integer(), nullable=False),
        sa.Column("stability_before", sa.Float(), nullable=True),
        sa.Column("stability_after", sa.Float(), nullable=True),
        sa.Column("difficulty_before", sa.Float(), nullable=True),
        sa.Column("difficulty_after", sa.Float(), nullable=True),
        sa.Column("due_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "rating IN ('again','hard','good','easy')", name=op.f("ck_review_logs_rating")
        ),
        sa.CheckConstraint("source IN ('self','submission')", name=op.f("ck_review_logs_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_logs")),
    )
    op.create_index(
        "ix_review_logs_user_reviewed", "review_logs", ["user_id", "reviewed_at"], unique=False
    )
    op.create_table(
        "review_schedules",
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("desired_retention", sa.Float(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("card_count", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "desired_retention >= 0.7 AND desired_retention <= 0.97",
            name=op.f("ck_review_schedules_retention"),
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_review_schedules")),
    )


def downgrade() -> None:
    op.drop_table("review_schedules")
    op.drop_index("ix_review_logs_user_reviewed", table_name="review_logs")
    op.drop_table("review_logs")
    op.drop_constraint(op.f("ck_review_items_status"), "review_items", type_="check")
    for column in (
        "created_at",
        "seq",
        "notified_at",
        "notified_batch",
        "status",
        "lapses",
        "last_rating",
        "difficulty",
        "stability",
        "state",
        "track_slug",
    ):
        op.drop_column("review_items", column)
