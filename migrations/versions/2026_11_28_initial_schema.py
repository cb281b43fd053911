"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import runwire.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", runwire.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
        sa.UniqueConstraint("email", name=op.f("uq_user_email")),
    )
    op.create_table(
        "auth_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", runwire.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", runwire.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", runwire.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_auth_session_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_auth_session_token_hash")),
    )
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_session_user_id"), ["user_id"], unique=False)

    op.create_table(
        "chat",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("created_at", runwire.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", runwire.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", runwire.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_chat_user_id_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat")),
    )
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.create_index("ix_chat_user_id_created_at_id", ["user_id", "created_at", "id"], unique=False)

    op.create_table(
        "workflow",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", runwire.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", runwire.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", runwire.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_workflow_user_id_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow")),
    )
    with op.batch_alter_table("workflow", schema=None) as batch_op:
        batch_op.create_index("ix_workflow_user_id_created_at_id", ["user_id", "created_at", "id"], unique=False)

    op.create_table(
        "workflow_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("chat_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("chat_seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("input", runwire.db.JSONType, nullable=False),
        sa.Column("error", runwire.db.JSONType, nullable=True),
        sa.Column("last_event_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", runwire.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", runwire.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", runwire.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chat.id"], name=op.f("fk_workflow_run_chat_id_chat"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow.id"],
            name=op.f("fk_workflow_run_workflow_id_workflow"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_run")),
        sa.UniqueConstraint("chat_id", "chat_seq", name=op.f("uq_workflow_run_chat_id_chat_seq")),
    )
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_run_workflow_id"), ["workflow_id"], unique=False)

    op.create_table(
        "workflow_version",
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("steps", runwire.db.JSONType, nullable=False),
        sa.Column("created_at", runwire.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow.id"],
            name=op.f("fk_workflow_version_workflow_id_workflow"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workflow_id", "version", name=op.f("pk_workflow_version")),
    )
    op.create_table(
        "run_event",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("data", runwire.db.JSONType, nullable=False),
        sa.Column("created_at", runwire.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["workflow_run.id"], name=op.f("fk_run_event_run_id_workflow_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_run_event")),
    )
    op.create_table(
        "step_run",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("tool_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("inputs", runwire.db.JSONType, nullable=True),
        sa.Column("output", runwire.db.JSONType, nullable=True),
        sa.Column("error", runwire.db.JSONType, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("logs", runwire.db.JSONType, nullable=False),
        sa.Column("started_at", runwire.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", runwire.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["workflow_run.id"], name=op.f("fk_step_run_run_id_workflow_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "step_id", name=op.f("pk_step_run")),
    )


def downgrade() -> None:
    op.drop_table("step_run")
    op.drop_table("run_event")
    op.drop_table("workflow_version")
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_run_workflow_id"))

    op.drop_table("workflow_run")
    with op.batch_alter_table("workflow", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_user_id_created_at_id")

    op.drop_table("workflow")
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_user_id_created_at_id")

    op.drop_table("chat")
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_session_user_id"))

    op.drop_table("auth_session")
    op.drop_table("user")
