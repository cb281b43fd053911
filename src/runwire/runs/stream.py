"""A run's events as Server-Sent Events: replay from the log, then live ones as they are appended.

The generator holds no database session while it waits: it reads with a short session each time the
notifier wakes it (or, as a safety net, every few seconds), and closes once the run's last event is sent.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import sqlalchemy as sa
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from runwire.db import Database
from runwire.runs.models import RunEvent, WorkflowRun
from runwire.runs.notifier import RunNotifier
from runwire.runs.states import is_final

SAFETY_RECHECK_SECONDS = 5.0
PING_SECONDS = 15


def _events_after(database: Database, run_id: uuid.UUID, after: int) -> tuple[list[RunEvent], bool]:
    """The run's events after `after`, and whether these include its last one."""
    with database.reading() as session:
        status, last_seq = session.execute(
            sa.select(WorkflowRun.status, WorkflowRun.last_event_seq).where(WorkflowRun.id == run_id)
        ).one()
        events = list(
            session.scalars(
                sa.select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.seq > after).order_by(RunEvent.seq)
            )
        )
    delivered = events[-1].seq if events else after
    return events, is_final(status) and delivered >= last_seq


def sse_response(events: AsyncIterator[dict[str, Any]]) -> EventSourceResponse:
    """A stream's events as a response: a ping comment every PING_SECONDS, and neither caching nor proxy buffering."""
    return EventSourceResponse(
        events,
        ping=PING_SECONDS,
        ping_message_factory=lambda: ServerSentEvent(comment="ping"),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def sse_message(event: RunEvent) -> dict[str, Any]:
    return {"id": str(event.seq), "event": event.type, "data": orjson.dumps(event.data).decode()}


async def run_event_stream(
    database: Database, notifier: RunNotifier, run_id: uuid.UUID, after: int
) -> AsyncIterator[dict[str, Any]]:
    with notifier.subscribe(str(run_id)) as woken:
        while True:
            woken.clear()
            events, finished = await run_in_threadpool(_events_after, database, run_id, after)
            for event in events:
                yield sse_message(event)
                after = event.seq
            if finished:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=SAFETY_RECHECK_SECONDS)
