"""re-runs: the run a run re-runs, and the run a step's reused output comes from

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workflow_run", sa.Column("rerun_of", sa.Uuid(), nullable=True))
    op.add_column("step_run", sa.Column("reused_from", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("step_run") as batch_op:
        batch_op.drop_column("reused_from")
    with op.batch_alter_table("workflow_run") as batch_op:
        batch_op.drop_column("rerun_of")
