"""A chat's stream: every event of every run of the chat (its data with `runId` added) and each new message
(`message_created`), under the chat-wide sequence (`run_event.chat_seq`, `message.chat_seq`), as Server-Sent Events.

Without a Last-Event-ID it starts live, with one it replays what came after. Like a run's stream it holds no database
session while it waits: the notifier wakes it (the chat's key), or a periodic re-check does. Each read is bounded by
the chat's `last_event_seq` read first: every place up to it is committed, so no place is skipped even when the run
events and the messages are read by separate statements. It ends when the chat is deleted, else when the client goes.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from runwire.chats.models import Chat
from runwire.db import Database
from runwire.messages import service as messages_service
from runwire.messages.schemas import MessageRead
from runwire.runs.models import RunEvent
from runwire.runs.notifier import RunNotifier
from runwire.runs.signals import chat_key
from runwire.runs.stream import SAFETY_RECHECK_SECONDS

MESSAGE_CREATED = "message_created"


def _last_seq(database: Database, chat_id: uuid.UUID) -> int:
    with database.reading() as session:
        seq: int = session.execute(sa.select(Chat.last_event_seq).where(Chat.id == chat_id)).scalar_one()
        return seq


def _items_after(database: Database, chat_id: uuid.UUID, after: int) -> tuple[list[dict[str, Any]], bool]:
    """The chat's stream items after `after`, in order, and whether the chat is gone."""
    with database.reading() as session:
        row = session.execute(sa.select(Chat.last_event_seq, Chat.deleted_at).where(Chat.id == chat_id)).one_or_none()
        if row is None or row.deleted_at is not None:
            return [], True
        if row.last_event_seq <= after:
            return [], False
        events = session.scalars(
            sa.select(RunEvent)
            .where(RunEvent.chat_id == chat_id, RunEvent.chat_seq > after, RunEvent.chat_seq <= row.last_event_seq)
            .order_by(RunEvent.chat_seq)
        )
        items = [(event.chat_seq, event.type, {**event.data, "runId": str(event.run_id)}) for event in events]
        messages = messages_service.messages_between(chat_id, after, row.last_event_seq, session=session)
    items += [
        (
            message.chat_seq,
            MESSAGE_CREATED,
            {"message": MessageRead.model_validate(message).model_dump(mode="json", by_alias=True)},
        )
        for message in messages
    ]
    items.sort(key=lambda item: item[0])
    return [{"id": str(seq), "event": kind, "data": orjson.dumps(data).decode()} for seq, kind, data in items], False


async def chat_event_stream(
    database: Database, notifier: RunNotifier, chat_id: uuid.UUID, after: int | None
) -> AsyncIterator[dict[str, Any]]:
    with notifier.subscribe(chat_key(str(chat_id))) as woken:
        if after is None:
            after = await run_in_threadpool(_last_seq, database, chat_id)
        while True:
            woken.clear()
            items, gone = await run_in_threadpool(_items_after, database, chat_id, after)
            for item in items:
                yield item
                after = int(item["id"])
            if gone:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=SAFETY_RECHECK_SECONDS)
