"""The seed endpoint's fast path: `GET /api/chats/:chatId/workflow-runs` in one thread hop and at most two
statements, correct by construction.

1. One statement reads the session, the chat's owner and the chat's version (401, 404, 403 decided from it).
2. The ETag is the version and the filter: a matching `If-None-Match` is a 304 with no further work.
3. Else the body cached at that version is served, or one statement reads the page, its steps and the version
   together, and the body is built and cached under the version it was read at.
A body is never served for a version it was not built at, and every request reads the version afresh, so every
process (each with its own cache) stays exact.
"""

import hashlib
import time
import uuid
from dataclasses import dataclass

import orjson

from runwire.auth.service import hash_token
from runwire.chats import service as chats_service
from runwire.db import Database, utcnow
from runwire.errors import Invalid, Unauthorized
from runwire.ids import parse_uuid
from runwire.pagination import decode_sequence
from runwire.ratelimits import service as ratelimits_service
from runwire.ratelimits.service import Charge, Rules
from runwire.runs import listing
from runwire.runs.list_cache import ListCache
from runwire.runs.states import Status


@dataclass(frozen=True)
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
class ListAnswer:
    body: bytes | None  # None: not modified
    etag: str


class ChatListReader:
    def __init__(self, database: Database, cache: ListCache, rules: Rules) -> None:
        self.database = database
        self.cache = cache
        self.rules = rules

    def read(self, request: ListRequest) -> ListAnswer:
        if not request.token:
            raise Unauthorized("A valid session is required.")
        with self.database.statements() as connection:
            try:
                chat_id: uuid.UUID | None = parse_uuid(request.chat_id, "chatId")
            except Invalid:
                chat_id = None
            access = chats_service.read_access(hash_token(request.token), chat_id, now=utcnow(), connection=connection)
            if access is None:
                raise Unauthorized("A valid session is required.")
            chat_id = parse_uuid(request.chat_id, "chatId")
            run_filter = _run_filter(request)
            access.require_owned()
            if self.rules.reads.enabled:
                ratelimits_service.enforce(self.database, [Charge(self.rules.reads, str(access.user_id), time.time())])
            filter_key = f"{chat_id}|{run_filter.key}"
            etag = _etag(access.version, filter_key)
            if _etag_matches(request.if_none_match, etag):
                return ListAnswer(None, etag)
            body = self.cache.get(chat_id, filter_key, access.version)
            if body is None:
                page = listing.list_chat_runs(chat_id, run_filter, connection=connection)
                data: dict[str, object] = {"workflowRuns": page.runs}
                if run_filter.limit is not None:
                    data["nextCursor"] = page.next_cursor
                body = orjson.dumps({"data": data})
                self.cache.put(chat_id, filter_key, page.version, body)
                etag = _etag(page.version, filter_key)
            return ListAnswer(body, etag)


def _run_filter(request: ListRequest) -> listing.RunFilter:
    return listing.RunFilter(
        statuses=_statuses(request.status),
        workflow_id=parse_uuid(request.workflow_id, "workflowId") if request.workflow_id is not None else None,
        descending=request.descending,
        limit=request.limit,
        after=decode_sequence(request.cursor) if request.cursor is not None else None,
    )


def _statuses(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    wanted = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(wanted - set(Status))
    if unknown or not wanted:
        allowed = ", ".join(Status)
        details = [("status", f"unknown: {', '.join(unknown)}")]
        raise Invalid(f"status takes a comma list of: {allowed}.", details=details)
    return wanted


def _etag(version: int, filter_key: str) -> str:
    digest = hashlib.blake2b(filter_key.encode(), digest_size=6).hexdigest()
    return f'"{version}-{digest}"'


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    offered = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in offered or "*" in offered
