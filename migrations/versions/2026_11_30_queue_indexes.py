"""partial indexes of pending and running runs, for the queue's metrics

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")
RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.create_index(
        "ix_workflow_run_pending_created_at",
        "workflow_run",
        ["created_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index(
        "ix_workflow_run_running_chat_id",
        "workflow_run",
        ["chat_id"],
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )


def downgrade() -> None:
    op.drop_index("ix_workflow_run_running_chat_id", table_name="workflow_run")
    op.drop_index("ix_workflow_run_pending_created_at", table_name="workflow_run")
