"""approval steps: what a running step waits for (a person's decision), or nothing

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("step_run", sa.Column("waiting_for", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("step_run") as batch_op:
        batch_op.drop_column("waiting_for")
