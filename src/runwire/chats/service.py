"""Chats: creation, ownership, listing, deletion, and the lock that orders what happens in a chat."""

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.chats.models import Chat
from runwire.chats.schemas import ChatCreate
from runwire.db import utcnow
from runwire.ownership import lock_owned, require_owned
from runwire.pagination import decode_newest_first, encode_newest_first


def create_chat(data: ChatCreate, *, user_id: uuid.UUID, session: Session) -> Chat:
    now = utcnow()
    chat = Chat(user_id=user_id, title=data.title, created_at=now, updated_at=now)
    session.add(chat)
    session.flush()
    return chat


def get_owned_chat(chat_id: uuid.UUID, *, user_id: uuid.UUID, session: Session) -> Chat:
    return require_owned(session.get(Chat, chat_id), user_id=user_id, noun="chat")


def list_chats(
    user_id: uuid.UUID, *, limit: int, cursor: str | None, session: Session
) -> tuple[list[Chat], str | None]:
    """The user's live chats, newest first, one keyset page at a time."""
    query = sa.select(Chat).where(Chat.user_id == user_id, Chat.deleted_at.is_(None))
    if cursor is not None:
        created_at, chat_id = decode_newest_first(cursor)
        query = query.where(sa.tuple_(Chat.created_at, Chat.id) < sa.tuple_(created_at, chat_id))
    chats = list(session.scalars(query.order_by(Chat.created_at.desc(), Chat.id.desc()).limit(limit + 1)))
    if len(chats) <= limit:
        return chats, None
    chats = chats[:limit]
    return chats, encode_newest_first(chats[-1].created_at, chats[-1].id)


def lock_chat(chat: Chat, *, session: Session) -> Chat:
    """Lock the chat's row for this transaction (404 if it was deleted meanwhile): the writers of a chat's runs and
    its deletion take this lock first, so they never interleave."""
    return lock_owned(chat, noun="chat", session=session)


def delete_chat(chat: Chat, *, session: Session) -> None:
    lock_chat(chat, session=session)
    chat.deleted_at = chat.updated_at = utcnow()
