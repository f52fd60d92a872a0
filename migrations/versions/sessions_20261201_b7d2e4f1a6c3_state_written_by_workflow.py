"""sessions: the state columns are written by SessionWorkflow alone (state may be NULL
until its first projection)

Revision ID: b7d2e4f1a6c3
Revises: 5e1a7c2b9d40
Create Date: 2026-12-01 20:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b7d2e4f1a6c3"
down_revision: str | Sequence[str] | None = "5e1a7c2b9d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSONB = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    # The API inserts identity and the active claim only; NULL means "not projected yet".
    op.alter_column("sessions", "state", existing_type=_JSONB, nullable=True)


def downgrade() -> None:
    # Sessions never projected have no state to put back: the previous code needs one.
    op.execute("UPDATE sessions SET state = '{}'::jsonb WHERE state IS NULL")
    op.alter_column("sessions", "state", existing_type=_JSONB, nullable=False)
