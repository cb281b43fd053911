"""Request dependencies: the session, the caller, and the resources the caller owns.

The 401 → 400 → 404 → 403 → 429 precedence lives here and nowhere else.
"""

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser

from runwire.auth import service as auth_service
from runwire.auth.passwords import Passwords
from runwire.auth.schemas import Authenticated
from runwire.chats import service as chats_service
from runwire.chats.models import Chat
from runwire.config import Settings
from runwire.db import Database
from runwire.errors import Invalid, Unauthorized
from runwire.ids import parse_uuid
from runwire.ratelimits import addresses
from runwire.ratelimits import service as ratelimits_service
from runwire.ratelimits.service import Charge, Rule, Rules
from runwire.routing import parse_json_body
from runwire.workflows import service as workflows_service
from runwire.workflows.models import Workflow

SESSION_COOKIE = "runwire_session"
_SESSION_COOKIE_BYTES = SESSION_COOKIE.encode()
PUBLIC_PATHS = frozenset({"/api/liveness", "/api/readiness", "/api/auth/sign-up/email", "/api/auth/sign-in/email"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


def get_rules(request: Request) -> Rules:
    rules: Rules = request.app.state.rate_limits
    return rules


def client_address(request: Request) -> str:
    peer = request.client.host if request.client else None
    forwarded_for = request.headers.getlist("x-forwarded-for")
    return addresses.client_address(peer, forwarded_for, get_settings(request).trusted_proxies)


async def database_slot(request: Request) -> AsyncIterator[None]:
    """Admit a bounded number of requests to the database at once.

    FastAPI runs each sync dependency and the route in separate threadpool calls, and a request holds its
    connection (and, on SQLite, the write lock) between them. Admitting fewer requests than there are threads
    and pooled connections means a request that holds them always finds a thread to finish on.
    """
    slots: asyncio.Semaphore = request.app.state.database_slots
    async with slots:
        yield


def db_session(request: Request, _slot: Annotated[None, Depends(database_slot, scope="function")]) -> Iterator[Session]:
    """Reads get a plain session; writes get a transaction that commits before the response is sent."""
    database = get_database(request)
    if request.method in READ_METHODS:
        with database.reading() as session:
            yield session
    else:
        with database.writing() as session:
            yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
PasswordsDep = Annotated[Passwords, Depends(get_passwords)]
SessionDep = Annotated[Session, Depends(db_session, scope="function")]


def chat_read_headers(request: Request) -> tuple[str | None, str | None]:
    """What a chat read on the fast path takes from its headers, in one pass over them: the session token (as
    `request.cookies` has it: from every Cookie header, the last one naming it winning) and the If-None-Match."""
    token = if_none_match = None
    for name, value in request.scope["headers"]:
        if name == b"cookie":
            if _SESSION_COOKIE_BYTES in value:
                token = cookie_parser(value.decode("latin-1")).get(SESSION_COOKIE, token)
        elif name == b"if-none-match" and if_none_match is None:
            if_none_match = value.decode("latin-1")
    return token, if_none_match


def current_auth(request: Request, session: SessionDep) -> Authenticated:
    token = request.cookies.get(SESSION_COOKIE)
    auth = auth_service.authenticate(token, session=session) if token else None
    if auth is None:
        raise Unauthorized("A valid session is required.")
    return auth


CurrentAuth = Annotated[Authenticated, Depends(current_auth)]


async def request_is_authorised(request: Request) -> bool:
    """Whether a request may be told about its own mistakes (a 400) rather than get a 401."""
    route = request.scope.get("route")
    if route is None or getattr(route, "path", None) in PUBLIC_PATHS:
        return True
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return False

    def lookup() -> bool:
        with get_database(request).reading() as session:
            return auth_service.authenticate(token, session=session) is not None

    return await run_in_threadpool(lookup)


def _body_error(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in exc.errors()])


def checked_body(model: Any) -> Any:
    """A dependency that validates the JSON body against `model` (a model, or a type such as `Model | None`)
    where it is declared: before the ownership and quota dependencies that follow it, so that a malformed body is
    a 400 ahead of a 404, 403 or 429."""
    adapter: TypeAdapter[Any] = TypeAdapter(model)

    async def check(request: Request, _auth: CurrentAuth) -> None:
        try:
            adapter.validate_json(await request.body() or b"null")
        except ValidationError as exc:
            raise _body_error(exc) from exc

    return Depends(check)


BodyT = TypeVar("BodyT")


@dataclass(frozen=True)
class Attempt(Generic[BodyT]):
    """A sign-in or sign-up body, and what it was charged under the rate limits."""

    data: BodyT
    charges: list[Charge]


Charges = Callable[[Rules, str, BodyT | None, float], list[Charge]]


def counted_body(model: type[BodyT], charges: Charges[BodyT]) -> Any:
    """A dependency for sign-in and sign-up, which check their limits before anything else: it counts the
    request under `charges` (given the rules, the client address and the body when it is valid), answers 429 over
    a limit whatever the body, then validates the body. The route declares no body of its own, so that FastAPI
    does not refuse a malformed one before this runs."""
    adapter = TypeAdapter(model)

    async def count_then_validate(request: Request) -> Attempt[BodyT]:
        invalid: RequestValidationError | None = None
        try:
            data: BodyT | None = adapter.validate_python(parse_json_body(await request.body() or b"null"))
        except ValidationError as exc:
            data, invalid = None, _body_error(exc)
        except RequestValidationError as exc:
            data, invalid = None, exc
        charged = charges(get_rules(request), client_address(request), data, time.time())
        await run_in_threadpool(ratelimits_service.enforce, get_database(request), charged)
        if invalid is not None:
            raise invalid
        assert data is not None
        return Attempt(data, charged)

    return Depends(count_then_validate)


_EVENT_ID = re.compile(r"[0-9]{1,15}")


def resume_from(auth: CurrentAuth, value: Annotated[str | None, Header(alias="Last-Event-ID")] = None) -> int | None:
    """The event a stream resumes after, None without the header: an id this server sent, 1 to 15 ASCII digits,
    else 400. Declared ahead of the resource's dependencies, so that it comes after 401 and before 404."""
    if value is None:
        return None
    if _EVENT_ID.fullmatch(value) is None:
        raise Invalid(
            "Last-Event-ID must be an event id from this stream.", details=[("Last-Event-ID", "is not an event id")]
        )
    return int(value)


def last_event_id(after: Annotated[int | None, Depends(resume_from)]) -> int:
    """As `resume_from`, with 0 (replay everything) without the header."""
    return after or 0


LastEventId = Annotated[int, Depends(last_event_id)]
# A stream that starts live without the header.
ResumeFrom = Annotated[int | None, Depends(resume_from)]


def owned_chat(chatId: str, auth: CurrentAuth, session: SessionDep) -> Chat:
    chat_id = parse_uuid(chatId, "chatId")
    return chats_service.get_owned_chat(chat_id, user_id=auth.user_id, session=session)


OwnedChat = Annotated[Chat, Depends(owned_chat)]


def own_user_id(userId: str, auth: CurrentAuth, session: SessionDep) -> uuid.UUID:
    user_id = parse_uuid(userId, "userId")
    auth_service.require_self(user_id, auth, session=session)
    return user_id


OwnUserId = Annotated[uuid.UUID, Depends(own_user_id)]


def owned_workflow(workflowId: str, auth: CurrentAuth, session: SessionDep) -> Workflow:
    workflow_id = parse_uuid(workflowId, "workflowId")
    return workflows_service.get_owned_workflow(workflow_id, user_id=auth.user_id, session=session)


OwnedWorkflow = Annotated[Workflow, Depends(owned_workflow)]


QuotaRule = Literal["start_work", "writes", "reads"]


class Quota:
    """A signed-in user's rate limit on a route, declared after the route's other dependencies so that 401, 400,
    404 and 403 come first. Over the limit: 429, before the route does any work."""

    def __init__(self, rule: QuotaRule) -> None:
        self.rule = rule

    async def __call__(self, request: Request, auth: CurrentAuth, session: SessionDep) -> None:
        rule: Rule = getattr(get_rules(request), self.rule)
        if not rule.enabled:
            return

        def count() -> None:
            # The checks so far only read. Ending their transaction lets the hit be counted in one of its own,
            # kept even when this request is refused or fails: on SQLite this request holds the one write lock
            # until it commits, and on PostgreSQL a counter row locked for a whole request would queue the user's
            # other requests behind it. The route's work goes on in a new transaction.
            session.commit()
            ratelimits_service.enforce(get_database(request), [Charge(rule, str(auth.user_id), time.time())])

        await run_in_threadpool(count)


StartWorkQuota = Annotated[None, Depends(Quota("start_work"))]
WriteQuota = Annotated[None, Depends(Quota("writes"))]
ReadQuota = Annotated[None, Depends(Quota("reads"))]
