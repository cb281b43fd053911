"""The chat's reads on their fast path: the run list (the seed endpoint), a run's detail and the chat's messages,
correct by construction.

1. One statement reads the session, the chat's owner and the chat's version (401, 404, 403 decided from it), on a
   connection held for it, on the event loop (`AccessReader`).
2. The ETag is the version and what the read asks for: a matching `If-None-Match` is a 304 with no further work.
3. Else the body cached at that version is served, or the body is read (on a thread), built and cached under a
   version read no later than its data (the run list reads its page and the version in one statement).
A body is never served for a version older than its data, and every request reads the version afresh, so every
process (each with its own cache) stays exact.
"""

import asyncio
import functools
import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
import psycopg
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from runwire.auth.service import hash_token
from runwire.chats import service as chats_service
from runwire.chats.service import ChatAccess
from runwire.db import Database, MillisecondClock
from runwire.driver import DriverStatement
from runwire.errors import Invalid, NotFound, Unauthorized
from runwire.ids import parse_uuid
from runwire.messages import service as messages_service
from runwire.messages.schemas import MessageList, MessageRead
from runwire.pagination import decode_sequence
from runwire.ratelimits import service as ratelimits_service
from runwire.ratelimits.service import Charge, Rules
from runwire.runs import listing
from runwire.runs.list_cache import ListCache
from runwire.runs.models import WorkflowRun


@dataclass(slots=True)  # not frozen: one is made per request, and a frozen one's fields are set the slow way
class ListRequest:
    token: str | None
    chat_id: str
    status: str | None
    workflow_id: str | None
    descending: bool
    limit: int | None
    cursor: str | None
    if_none_match: str | None


@dataclass(frozen=True)
class MessagePage:
    descending: bool
    limit: int | None
    cursor: str | None


class ListAnswer(NamedTuple):
    body: bytes | None  # None: not modified
    etag: str


class ChatRead(NamedTuple):
    """What one read of a chat asks for beyond the chat (`key`), and how to build its body once the caller may see
    the chat: the body, and the chat version its data was read at when known (else the version read first)."""

    key: str
    build: Callable[[], tuple[bytes, int | None]]


class AccessReader:
    """The statement every chat read begins with (`chats_service.ACCESS`), sent straight to the driver
    (`driver.DriverStatement`) on connections of its own, held from the first read until `close()`, in autocommit: no
    pool check-out, no BEGIN, no SQLAlchemy execution, and no thread: it runs on the event loop.

    On SQLite it is a point read of two rows by their indexes in a WAL database, which never waits for a writer and
    takes about 10 us there, less than handing it to a thread and back costs: one connection. On PostgreSQL it is a
    round trip to another process, awaited on asynchronous psycopg connections, up to `ASYNC_CONNECTIONS` of them at
    once: a single one would serve the reads one round trip after another."""

    ASYNC_CONNECTIONS = 4

    def __init__(self, database: Database) -> None:
        self.database = database
        self._dialect = database.engine.dialect
        self._statement = DriverStatement(chats_service.ACCESS, self._dialect)
        self._clock = MillisecondClock()
        self._connection: sa.Connection | None = None
        self._driver_connection: Any = None  # the driver's own connection under `_connection`
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(self.ASYNC_CONNECTIONS)

    async def read(self, token_hash: str, chat_id: uuid.UUID | None) -> ChatAccess | None:
        values = {"chat_key": chat_id, "token_hash": token_hash, "now": self._clock.now()}
        row = self._first(values) if self.database.dialect == "sqlite" else await self._first_async(values)
        return None if row is None else ChatAccess.from_row(row)

    def _first(self, values: Mapping[str, object]) -> Any:
        if self._connection is None:
            self._connection = self.database.connect_for_statements()
            self._driver_connection = self._connection.connection.driver_connection
        return self._statement.first(self._driver_connection, values)

    async def _first_async(self, values: Mapping[str, object]) -> Any:
        async with self._slots:
            connection = self._idle.pop() if self._idle else await self._connect()
            try:
                return await self._first_on(connection, values)
            except psycopg.OperationalError:
                if not connection.broken:
                    raise
            # The server closed the connection (a restart, say), and likely the others: once more, on a new one.
            stale, self._idle = self._idle, []
            for other in stale:
                await other.close()
            return await self._first_on(await self._connect(), values)

    async def _first_on(self, connection: psycopg.AsyncConnection[Any], values: Mapping[str, object]) -> Any:
        """The statement's row on `connection`, which goes back to the idle ones; a connection a read did not finish
        on (a cancelled request, say) is closed instead."""
        try:
            row = await self._statement.first_async(connection, values)
        except BaseException:
            await connection.close()
            raise
        self._idle.append(connection)
        return row

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        url = self.database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        for connection in self._idle:
            await connection.close()


class ChatListReader:
    def __init__(self, database: Database, cache: ListCache, rules: Rules, slots: asyncio.Semaphore) -> None:
        """`slots` admits the reads that need a pooled connection and a thread (building a body, counting a read
        against its rate limit), as for every request's session (`deps.database_slot`)."""
        self.database = database
        self.cache = cache
        self.rules = rules
        self.slots = slots
        self.access = AccessReader(database)

    async def close(self) -> None:
        await self.access.close()

    async def read(self, request: ListRequest) -> ListAnswer:
        """The chat's run list."""

        def prepare(chat_id: uuid.UUID) -> ChatRead:
            run_filter = _run_filter(
                request.status, request.workflow_id, request.descending, request.limit, request.cursor
            )

            def build() -> tuple[bytes, int | None]:
                with self.database.statements() as connection:
                    page = listing.list_chat_runs(chat_id, run_filter, connection=connection)
                data: dict[str, object] = {"workflowRuns": page.runs}
                if run_filter.limit is not None:
                    data["nextCursor"] = page.next_cursor
                return orjson.dumps({"data": data}), page.version

            return ChatRead(run_filter.key, build)

        return await self.read_chat(request.token, request.chat_id, request.if_none_match, prepare)

    async def read_run(self, token: str | None, chat_text: str, run_text: str, if_none_match: str | None) -> ListAnswer:
        """A run's detail."""

        def prepare(chat_id: uuid.UUID) -> ChatRead:
            run_id = parse_uuid(run_text, "workflowRunId")

            def build() -> tuple[bytes, int | None]:
                with self.database.reading() as session:
                    if session.scalar(sa.select(WorkflowRun.chat_id).where(WorkflowRun.id == run_id)) != chat_id:
                        raise NotFound("Workflow run not found.")
                    run = listing.get_run(run_id, detail=True, session=session)
                return orjson.dumps({"data": run}), None

            return ChatRead(f"run:{run_id}", build)

        return await self.read_chat(token, chat_text, if_none_match, prepare)

    async def read_messages(
        self, token: str | None, chat_text: str, page: MessagePage, if_none_match: str | None
    ) -> ListAnswer:
        """The chat's messages."""

        def prepare(chat_id: uuid.UUID) -> ChatRead:
            after = decode_sequence(page.cursor) if page.cursor is not None else None

            def build() -> tuple[bytes, int | None]:
                with self.database.reading() as session:
                    messages, next_cursor = messages_service.list_messages(
                        chat_id, descending=page.descending, limit=page.limit, after=after, session=session
                    )
                    listed = MessageList(messages=[MessageRead.model_validate(message) for message in messages])
                if page.limit is not None:
                    listed.next_cursor = next_cursor
                return orjson.dumps({"data": listed.model_dump(mode="json", by_alias=True, exclude_unset=True)}), None

            return ChatRead(f"messages:{page.descending}:{page.limit}:{after}", build)

        return await self.read_chat(token, chat_text, if_none_match, prepare)

    async def read_chat(
        self, token: str | None, chat_text: str, if_none_match: str | None, prepare: Callable[[uuid.UUID], ChatRead]
    ) -> ListAnswer:
        """A read of the chat named `chat_text` by the session `token`, in the contract's order: 401, then 400 (the
        chat id, then whatever `prepare` parses), then 404 and 403; then 304, a cached body, or a new one."""
        if not token:
            raise Unauthorized("A valid session is required.")
        chat_id = _chat_id(chat_text)
        access = await self.access.read(hash_token(token), chat_id)
        if access is None:
            raise Unauthorized("A valid session is required.")
        if chat_id is None:
            chat_id = parse_uuid(chat_text, "chatId")
        wanted = prepare(chat_id)
        access.require_owned()
        if self.rules.reads.enabled:
            charge = Charge(self.rules.reads, str(access.user_id), time.time())
            async with self.slots:
                await run_in_threadpool(ratelimits_service.enforce, self.database, [charge])
        filter_key = f"{chat_id}|{wanted.key}"
        etag = _etag(access.version, filter_key)
        if etag_matches(if_none_match, etag):
            return ListAnswer(None, etag)
        cached = self.cache.get(chat_id, filter_key, access.version)
        if cached is not None:
            return ListAnswer(cached, etag)
        async with self.slots:
            body, read_at = await run_in_threadpool(wanted.build)
        version = access.version if read_at is None else read_at
        self.cache.put(chat_id, filter_key, version, body)
        return ListAnswer(body, _etag(version, filter_key))


# What the reads parse and derive from their requests, kept for the requests that repeat them (a chat's clients poll
# the same reads): pure functions of their arguments, each bounded; what fails to parse raises and is not kept.
_KEPT = 1024


@functools.lru_cache(maxsize=_KEPT)
def _run_filter(
    status: str | None, workflow_id: str | None, descending: bool, limit: int | None, cursor: str | None
) -> listing.RunFilter:
    return listing.RunFilter(
        statuses=listing.parse_statuses(status),
        workflow_id=parse_uuid(workflow_id, "workflowId") if workflow_id is not None else None,
        descending=descending,
        limit=limit,
        after=decode_sequence(cursor) if cursor is not None else None,
    )


@functools.lru_cache(maxsize=_KEPT)
def _chat_id(text: str) -> uuid.UUID | None:
    """The chat id `text` names; None when it is not a UUID (a 400 once the session is known to be good)."""
    try:
        return parse_uuid(text, "chatId")
    except Invalid:
        return None


@functools.lru_cache(maxsize=_KEPT)
def _filter_digest(filter_key: str) -> str:
    return hashlib.blake2b(filter_key.encode(), digest_size=6).hexdigest()


def _etag(version: int, filter_key: str) -> str:
    return f'"{version}-{_filter_digest(filter_key)}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    offered = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in offered or "*" in offered
