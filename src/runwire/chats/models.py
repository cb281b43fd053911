import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from runwire.db import Base


class Chat(Base):
    __tablename__ = "chat"
    __table_args__ = (sa.Index("ix_chat_user_id_created_at_id", "user_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"))
    title: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]
    # The last id of the chat's event sequence (its runs' events and its messages, in commit order), which its stream
    # and ETags use.
    last_event_seq: Mapped[int] = mapped_column(default=0, server_default="0")
    # The reply workflow: the one a message without a workflow of its own starts.
    workflow_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("workflow.id", ondelete="SET NULL"))
