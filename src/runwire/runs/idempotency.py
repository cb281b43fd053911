"""Idempotency-Key on run creation: the same key and user within `TTL` answer with the run the first request made.

The key row is written in the transaction that creates its run, so a key always names a committed run. Two requests
with one key meet on the table's primary key: on SQLite the second transaction starts only after the first has
committed (writers take the lock with BEGIN IMMEDIATE) and finds the key; on PostgreSQL the second insert waits for
the first transaction and then fails, and the second request answers with the first one's run.
"""

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from runwire.chats.models import Chat
from runwire.db import utcnow
from runwire.errors import Conflict, Invalid
from runwire.runs import service
from runwire.runs.models import IdempotencyKey
from runwire.runs.schemas import RunCreate

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True)
class Created:
    run_id: uuid.UUID
    replayed: bool


def parse_key(value: str | None) -> str | None:
    """The header's key, or None without the header; 1 to 255 visible ASCII characters, else 400."""
    if value is None:
        return None
    if _KEY.fullmatch(value) is None:
        raise Invalid(
            f"{HEADER} must be 1 to 255 visible ASCII characters.",
            details=[(HEADER, "must be 1 to 255 visible ASCII characters (no spaces)")],
        )
    return value


def fingerprint(chat_id: uuid.UUID, data: RunCreate) -> str:
    """The request a key was first used for: the chat and the validated body, in canonical JSON."""
    # Without ifBusy when it is the default, so that a key used before ifBusy existed names the same request.
    exclude = {"if_busy"} if data.if_busy == "enqueue" else None
    body = orjson.dumps(data.model_dump(mode="json", by_alias=True, exclude=exclude), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(str(chat_id).encode() + b"\n" + body).hexdigest()


def _live_run_id(user_id: uuid.UUID, key: str, request: str, *, session: Session) -> uuid.UUID | None:
    """The run an unexpired use of the key made, or None; a use for another request is a 409."""
    row = session.execute(
        sa.select(IdempotencyKey.run_id, IdempotencyKey.fingerprint).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at > utcnow() - TTL,
        )
    ).one_or_none()
    if row is None:
        return None
    if row.fingerprint != request:
        raise Conflict(f"This {HEADER} was already used for a different request (another chat or body).")
    run_id: uuid.UUID = row.run_id
    return run_id


def create_run(
    chat: Chat,
    data: RunCreate,
    *,
    user_id: uuid.UUID,
    key: str | None,
    enqueue: service.Enqueue,
    session: Session,
) -> Created:
    """Create and queue a run, or, for a key already used by this request, answer with that request's run."""
    if key is None:
        return Created(service.create_run(chat, data, user_id=user_id, enqueue=enqueue, session=session).id, False)
    request = fingerprint(chat.id, data)
    run_id = _live_run_id(user_id, key, request, session=session)
    if run_id is not None:
        return Created(run_id, True)
    # Queued only once the key is ours: a run rolled back with a lost race must never reach the executor.
    queued: list[service.Enqueued] = []
    try:
        with session.begin_nested():
            now = utcnow()
            session.execute(
                sa.delete(IdempotencyKey).where(
                    IdempotencyKey.user_id == user_id,
                    IdempotencyKey.key == key,
                    IdempotencyKey.created_at <= now - TTL,
                )
            )
            run = service.create_run(chat, data, user_id=user_id, enqueue=queued.append, session=session)
            session.add(IdempotencyKey(user_id=user_id, key=key, run_id=run.id, fingerprint=request, created_at=now))
            session.flush()
    except IntegrityError:
        run_id = _live_run_id(user_id, key, request, session=session)
        if run_id is None:
            raise
        return Created(run_id, True)
    for item in queued:
        enqueue(item)
    return Created(run.id, False)
