"""the user-wide runs list's indexes: every run by (created_at, id), and a chat's runs by (created_at, id)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_workflow_run_created_at_id", "workflow_run", ["created_at", "id"])
    op.create_index("ix_workflow_run_chat_id_created_at_id", "workflow_run", ["chat_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_workflow_run_chat_id_created_at_id", table_name="workflow_run")
    op.drop_index("ix_workflow_run_created_at_id", table_name="workflow_run")
