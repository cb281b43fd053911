import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from runwire.db import Base, JSONType


class WorkflowRun(Base):
    __tablename__ = "workflow_run"
    # (chat_id, chat_seq) serves the run list: chat_seq is request order, which created_at can tie on. The user-wide
    # list (newest first across a user's chats, paged by (created_at, id)) walks (created_at, id), and with a chatId
    # filter (chat_id, created_at, id): see runs/listing.list_user_runs. The partial indexes of pending and running
    # runs serve the queue's metrics (runs/queue_stats.py) at any volume.
    __table_args__ = (
        sa.UniqueConstraint("chat_id", "chat_seq"),
        sa.Index("ix_workflow_run_created_at_id", "created_at", "id"),
        sa.Index("ix_workflow_run_chat_id_created_at_id", "chat_id", "created_at", "id"),
        sa.Index(
            "ix_workflow_run_pending_created_at",
            "created_at",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_workflow_run_running_chat_id",
            "chat_id",
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    chat_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("chat.id", ondelete="CASCADE"))
    workflow_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("workflow.id", ondelete="CASCADE"), index=True)
    workflow_version: Mapped[int]
    # Position of the run in its chat (1, 2, ...): the order in which the chat's runs execute.
    chat_seq: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16))
    input: Mapped[Any] = mapped_column(JSONType)
    error: Mapped[dict[str, Any] | None]
    # The run this one re-runs. No foreign key: a re-run is in its source's chat, so the two are deleted together.
    rerun_of: Mapped[uuid.UUID | None]
    last_event_seq: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class StepRun(Base):
    __tablename__ = "step_run"

    run_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("workflow_run.id", ondelete="CASCADE"), primary_key=True)
    step_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    # Index of the step in dependency order (ties by definition order): the order the API lists steps in.
    position: Mapped[int]
    name: Mapped[str | None] = mapped_column(sa.String(255))
    tool_id: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    inputs: Mapped[Any] = mapped_column(JSONType, nullable=True)
    output: Mapped[Any] = mapped_column(JSONType, nullable=True)
    error: Mapped[dict[str, Any] | None]
    attempts: Mapped[int] = mapped_column(default=0)
    logs: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    # The run whose completed step this one reuses (its output copied, its tool not called again), or None.
    reused_from: Mapped[uuid.UUID | None]
    # What the running step waits for ("decision": an approval step's), or None.
    waiting_for: Mapped[str | None] = mapped_column(sa.String(16))
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class RunEvent(Base):
    """The per-run, gap-free, append-only log of what happened, written with each state change. Each event also
    has its place in its chat's sequence (`chat_seq`, growing in commit order; see `Chat.last_event_seq`)."""

    __tablename__ = "run_event"
    __table_args__ = (sa.UniqueConstraint("chat_id", "chat_seq"),)

    run_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("workflow_run.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    chat_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("chat.id", ondelete="CASCADE"))
    chat_seq: Mapped[int]
    type: Mapped[str] = mapped_column(sa.String(32))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class IdempotencyKey(Base):
    """A client's Idempotency-Key on run creation: which run it made, for which request (see runs/idempotency.py)."""

    __tablename__ = "idempotency_key"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("workflow_run.id", ondelete="CASCADE"), index=True)
    # sha256 of the chat id and the canonical JSON of the validated body: a reuse for another request is refused.
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
