"""A chat's messages: the user's turns, the replies its runs leave, their place in the chat's sequence, and the
history a model is shown."""

import uuid
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.chats.models import Chat
from runwire.db import utcnow
from runwire.messages.models import Message
from runwire.pagination import encode_sequence

USER = "user"
ASSISTANT = "assistant"

_CHATS = cast(sa.Table, Chat.__table__)
_MESSAGES = cast(sa.Table, Message.__table__)
# Under the chat's lock: the next place in the chat's sequence.
_TAKE_CHAT_SEQ = (
    sa.update(_CHATS)
    .where(_CHATS.c.id == sa.bindparam("chat_key", type_=sa.Uuid()))
    .values(last_event_seq=_CHATS.c.last_event_seq + 1)
    .returning(_CHATS.c.last_event_seq)
)
_USER_MESSAGE_OF_RUN = sa.select(_MESSAGES.c.chat_seq).where(
    _MESSAGES.c.run_id == sa.bindparam("run_key", type_=sa.Uuid()), _MESSAGES.c.role == USER
)
_INSERT = sa.insert(_MESSAGES)


def add_user_message(chat: Chat, content: str, *, run_id: uuid.UUID | None, session: Session) -> Message:
    """A user's message, at the next place of the chat's sequence; the caller holds the chat's lock."""
    session.flush()
    chat_seq = session.connection().execute(_TAKE_CHAT_SEQ, {"chat_key": chat.id}).scalar_one()
    session.expire(chat, ["last_event_seq"])
    message = Message(
        chat_id=chat.id, chat_seq=chat_seq, role=USER, content=content, run_id=run_id, created_at=utcnow()
    )
    session.add(message)
    session.flush()
    return message


def user_message_seq(run_id: uuid.UUID, *, session: Session) -> int | None:
    """The place of the message that started the run, or None for a run no message started."""
    seq: int | None = session.connection().execute(_USER_MESSAGE_OF_RUN, {"run_key": run_id}).scalar_one_or_none()
    return seq


def insert_reply(
    *,
    chat_id: uuid.UUID,
    chat_seq: int,
    run_id: uuid.UUID,
    content: str,
    error: dict[str, Any] | None,
    created_at: datetime,
    session: Session,
) -> None:
    """The reply a run leaves, at the place the caller took for it (in the transaction that ends the run)."""
    row = {
        "id": uuid.uuid4(),
        "chat_id": chat_id,
        "chat_seq": chat_seq,
        "role": ASSISTANT,
        "content": content,
        "run_id": run_id,
        "error": error,
        "created_at": created_at,
    }
    session.connection().execute(_INSERT, row)


def list_messages(
    chat_id: uuid.UUID, *, descending: bool, limit: int | None, after: int | None, session: Session
) -> tuple[list[Message], str | None]:
    """The chat's messages in sequence order (or its reverse), paged by their place in the sequence: those past
    the place `after` (a decoded cursor), when given."""
    query = sa.select(Message).where(Message.chat_id == chat_id)
    if after is not None:
        query = query.where(Message.chat_seq < after if descending else Message.chat_seq > after)
    query = query.order_by(Message.chat_seq.desc() if descending else Message.chat_seq)
    if limit is not None:
        query = query.limit(limit + 1)
    messages = list(session.scalars(query))
    if limit is None or len(messages) <= limit:
        return messages, None
    messages = messages[:limit]
    return messages, encode_sequence(messages[-1].chat_seq)


def messages_between(chat_id: uuid.UUID, after: int, upto: int, *, session: Session) -> list[Message]:
    """The chat's messages whose places are in (after, upto], in order."""
    return list(
        session.scalars(
            sa.select(Message)
            .where(Message.chat_id == chat_id, Message.chat_seq > after, Message.chat_seq <= upto)
            .order_by(Message.chat_seq)
        )
    )


def history(
    chat_id: uuid.UUID, *, before_seq: int | None = None, until: datetime | None = None, session: Session
) -> list[Message]:
    """The turns a run sees of its chat: each user message before its own (by place, or by time for a run no
    message started), each followed by the reply its run left, if any and not a failure. A reply is shown after
    its question even when a later question was sent before it was written."""
    query = sa.select(Message).where(Message.chat_id == chat_id, Message.role == USER)
    if before_seq is not None:
        query = query.where(Message.chat_seq < before_seq)
    if until is not None:
        query = query.where(Message.created_at <= until)
    questions = list(session.scalars(query.order_by(Message.chat_seq)))
    run_ids = [message.run_id for message in questions if message.run_id is not None]
    replies = {}
    if run_ids:
        answers = sa.select(Message).where(Message.run_id.in_(run_ids), Message.role == ASSISTANT)
        replies = {reply.run_id: reply for reply in session.scalars(answers) if not reply.error}
    turns: list[Message] = []
    for question in questions:
        turns.append(question)
        if question.run_id in replies:
            turns.append(replies[question.run_id])
    return turns
