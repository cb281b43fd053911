"""chats that talk: a chat's reply workflow, workflow versions' timeout and reply, and a chat's messages

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import runwire.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workflow_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_chat_workflow_id_workflow"), "workflow", ["workflow_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("workflow_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timeout_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reply", sa.Text(), nullable=True))
    op.create_table(
        "message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("chat_id", sa.Uuid(), nullable=False),
        sa.Column("chat_seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("error", runwire.db.JSONType, nullable=True),
        sa.Column("created_at", runwire.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["chat_id"], ["chat.id"], name=op.f("fk_message_chat_id_chat"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["workflow_run.id"], name=op.f("fk_message_run_id_workflow_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
        sa.UniqueConstraint("chat_id", "chat_seq", name=op.f("uq_message_chat_id_chat_seq")),
        sa.UniqueConstraint("run_id", "role", name=op.f("uq_message_run_id_role")),
    )


def downgrade() -> None:
    op.drop_table("message")
    with op.batch_alter_table("workflow_version", schema=None) as batch_op:
        batch_op.drop_column("reply")
        batch_op.drop_column("timeout_seconds")
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_chat_workflow_id_workflow"), type_="foreignkey")
        batch_op.drop_column("workflow_id")
