"""a chat-wide event sequence: chat.last_event_seq, and each run event's place in its chat

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_event_seq", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("run_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chat_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("chat_seq", sa.Integer(), nullable=True))
    # Events written before this revision take their places in commit order as far as it can be known.
    op.execute(
        "UPDATE run_event SET chat_id = (SELECT chat_id FROM workflow_run WHERE workflow_run.id = run_event.run_id)"
    )
    op.execute(
        "UPDATE run_event SET chat_seq = numbered.n FROM ("
        " SELECT run_id, seq, row_number() OVER (PARTITION BY chat_id ORDER BY created_at, run_id, seq) AS n"
        " FROM run_event) AS numbered"
        " WHERE run_event.run_id = numbered.run_id AND run_event.seq = numbered.seq"
    )
    op.execute(
        "UPDATE chat SET last_event_seq = COALESCE("
        "(SELECT MAX(chat_seq) FROM run_event WHERE run_event.chat_id = chat.id), 0)"
    )
    with op.batch_alter_table("run_event", schema=None) as batch_op:
        batch_op.alter_column("chat_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column("chat_seq", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_run_event_chat_id_chat"), "chat", ["chat_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_unique_constraint(batch_op.f("uq_run_event_chat_id_chat_seq"), ["chat_id", "chat_seq"])


def downgrade() -> None:
    with op.batch_alter_table("run_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_run_event_chat_id_chat_seq"), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_run_event_chat_id_chat"), type_="foreignkey")
        batch_op.drop_column("chat_seq")
        batch_op.drop_column("chat_id")
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.drop_column("last_event_seq")
