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
from starlette.types import Message, Receive, Scope, Send

from runwire import metrics
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


class CountedEventSourceResponse(EventSourceResponse):
    """Counted in the open streams metric while it is open; ended cleanly when the server stops it (sse-starlette
    leaves it unterminated), so that a client sees the end of the stream and reconnects with its Last-Event-ID."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = {"started": False, "ended": False}

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["ended"] = True
            await send(message)

        with metrics.OPEN_STREAMS.track_inprogress():
            await super().__call__(scope, receive, tracked)
        if state["started"] and not state["ended"]:
            with contextlib.suppress(Exception):  # the client may be gone already
                await send({"type": "http.response.body", "body": b"", "more_body": False})


def sse_response(events: AsyncIterator[dict[str, Any]]) -> EventSourceResponse:
    """A stream's events as a response: a ping comment every PING_SECONDS, and neither caching nor proxy buffering.
    On SIGTERM, sse-starlette ends it (see serving.py): the client reconnects elsewhere with its Last-Event-ID."""
    return CountedEventSourceResponse(
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
