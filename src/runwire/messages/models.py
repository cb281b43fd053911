import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from runwire.db import Base


class Message(Base):
    """A turn of a chat. A user message names the run it started; the run's reply (role `assistant`) names the same
    run, and is written in the transaction that ends the run. Each message has its place in the chat's sequence."""

    __tablename__ = "message"
    __table_args__ = (sa.UniqueConstraint("chat_id", "chat_seq"), sa.UniqueConstraint("run_id", "role"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    chat_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("chat.id", ondelete="CASCADE"))
    chat_seq: Mapped[int]
    role: Mapped[str] = mapped_column(sa.String(16))
    content: Mapped[str] = mapped_column(sa.Text)
    run_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("workflow_run.id", ondelete="CASCADE"))
    error: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
