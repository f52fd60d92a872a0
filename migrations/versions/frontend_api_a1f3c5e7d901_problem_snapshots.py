"""frontend API: problem snapshots, draft updated_at, evaluation retry status

Revision ID: a1f3c5e7d901
Revises: c93987a0320b
Create Date: 2026-12-01 17:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a1f3c5e7d901"
down_revision: str | Sequence[str] | None = "c93987a0320b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "problem_snapshots",
        sa.Column("track_version_id", sa.Uuid(), nullable=False),
        sa.Column("problem_id", sa.String(length=120), nullable=False),
        sa.Column(
            "problem",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["track_version_id"],
            ["track_versions.id"],
            name=op.f("fk_problem_snapshots_track_version_id_track_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("track_version_id", "problem_id", name=op.f("pk_problem_snapshots")),
    )
    op.create_index(
        op.f("ix_problem_snapshots_problem_id"), "problem_snapshots", ["problem_id"], unique=False
    )
    op.add_column(
        "track_versions",
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
    )
    op.add_column(
        "submissions",
        sa.Column("evaluation_attempt", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("submissions", sa.Column("retry_reason", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column("submissions", "retry_reason")
    op.drop_column("submissions", "evaluation_attempt")
    op.drop_column("track_versions", "updated_at")
    op.drop_index(op.f("ix_problem_snapshots_problem_id"), table_name="problem_snapshots")
    op.drop_table("problem_snapshots")
