"""Chats: creation, ownership, listing, deletion, and the lock that orders what happens in a chat."""

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.auth.models import AuthSession
from runwire.chats.models import Chat
from runwire.chats.schemas import ChatCreate, ChatUpdate
from runwire.db import utcnow
from runwire.errors import Forbidden, Invalid, NotFound
from runwire.ownership import lock_owned, require_owned
from runwire.pagination import decode_newest_first, encode_newest_first
from runwire.workflows import service as workflows_service


def _reply_workflow_id(workflow_id: uuid.UUID | None, *, user_id: uuid.UUID, session: Session) -> uuid.UUID | None:
    """A chat's reply workflow must be the user's own live workflow (404, 403)."""
    if workflow_id is None:
        return None
    return workflows_service.get_owned_workflow(workflow_id, user_id=user_id, session=session).id


def create_chat(data: ChatCreate, *, user_id: uuid.UUID, session: Session) -> Chat:
    workflow_id = _reply_workflow_id(data.workflow_id, user_id=user_id, session=session)
    now = utcnow()
    chat = Chat(user_id=user_id, title=data.title, workflow_id=workflow_id, created_at=now, updated_at=now)
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


class ChatAccess(NamedTuple):  # a tuple: one is made on every chat read
    """A session's user and, when the chat exists, whether the user owns it, whether it is deleted, and its version."""

    stored_user_id: str | uuid.UUID  # as the driver gives it: on SQLite its 32 stored hex digits
    found: bool
    owned: bool
    deleted: bool
    version: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "ChatAccess":
        """From a row of ACCESS as the driver gives it (both ids in the same stored form)."""
        user_id, owner_id, deleted_at, version = row
        return cls(user_id, owner_id is not None, owner_id == user_id, deleted_at is not None, version or 0)

    @property
    def user_id(self) -> uuid.UUID:
        stored = self.stored_user_id
        return stored if isinstance(stored, uuid.UUID) else uuid.UUID(stored)

    def require_owned(self) -> None:
        """404 for a missing or deleted chat, 403 for another user's, as `ownership.require_owned`."""
        if not self.found or self.deleted:
            raise NotFound("Chat not found.")
        if not self.owned:
            raise Forbidden("You cannot access another user's chat.")


# The session named by `token_hash` (if live at `now`) with the chat `chat_key` (if it exists), in one statement: what
# every chat read begins with (runs/chat_list.py).
ACCESS = (
    sa.select(AuthSession.user_id, Chat.user_id.label("owner_id"), Chat.deleted_at, Chat.last_event_seq)
    .select_from(AuthSession)
    .outerjoin(Chat, Chat.id == sa.bindparam("chat_key"))
    .where(
        AuthSession.token_hash == sa.bindparam("token_hash"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > sa.bindparam("now"),
    )
)


def lock_chat(chat: Chat, *, session: Session) -> Chat:
    """Lock the chat's row for this transaction (404 if it was deleted meanwhile): the writers of a chat's runs and
    its deletion take this lock first, so they never interleave."""
    return lock_owned(chat, noun="chat", session=session)


def bump_version(chat: Chat, *, session: Session) -> None:
    """Mark a change to the chat's runs that adds no event to its sequence (a new run): its version grows all the
    same, so that a list cached at the old version is never served again."""
    session.execute(sa.update(Chat).where(Chat.id == chat.id).values(last_event_seq=Chat.last_event_seq + 1))


def update_chat(chat: Chat, data: ChatUpdate, *, session: Session) -> Chat:
    if not data.model_fields_set:
        raise Invalid("Give at least one of title, workflowId.", details=[("body", "no field to change")])
    workflow_id = _reply_workflow_id(data.workflow_id, user_id=chat.user_id, session=session)
    lock_chat(chat, session=session)
    if "title" in data.model_fields_set:
        chat.title = data.title
    if "workflow_id" in data.model_fields_set:
        chat.workflow_id = workflow_id
    chat.updated_at = utcnow()
    session.flush()
    return chat


def delete_chat(chat: Chat, *, session: Session) -> None:
    lock_chat(chat, session=session)
    chat.deleted_at = chat.updated_at = utcnow()
