import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from runwire.db import Base, JSONType


class Workflow(Base):
    __tablename__ = "workflow"
    __table_args__ = (sa.Index("ix_workflow_user_id_created_at_id", "user_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.String(1000))
    current_version: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class WorkflowVersion(Base):
    """An immutable snapshot of a workflow's steps, run timeout and reply template; runs are pinned to one."""

    __tablename__ = "workflow_version"

    workflow_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("workflow.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    timeout_seconds: Mapped[int | None]
    reply: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
