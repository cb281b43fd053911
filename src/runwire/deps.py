"""Request dependencies: the session, the caller, and the resources the caller owns.

The 401 → 400 → 404 → 403 precedence lives here and nowhere else.
"""

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from runwire.auth import service as auth_service
from runwire.auth.schemas import Authenticated
from runwire.chats import service as chats_service
from runwire.chats.models import Chat
from runwire.config import Settings
from runwire.db import Database
from runwire.errors import Invalid, Unauthorized
from runwire.ids import parse_uuid
from runwire.workflows import service as workflows_service
from runwire.workflows.models import Workflow

SESSION_COOKIE = "runwire_session"
PUBLIC_PATHS = frozenset({"/api/liveness", "/api/auth/sign-up/email", "/api/auth/sign-in/email"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


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
SessionDep = Annotated[Session, Depends(db_session, scope="function")]


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


def checked_body(model: type[BaseModel]) -> Any:
    """A dependency that validates the JSON body against `model` where it is declared: before the ownership
    dependencies that follow it, so that a malformed body is a 400 ahead of a 404 or 403."""

    async def check(request: Request, _auth: CurrentAuth) -> None:
        try:
            model.model_validate_json(await request.body() or b"null")
        except ValidationError as exc:
            raise RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]) from exc

    return Depends(check)


_EVENT_ID = re.compile(r"[0-9]{1,15}")


def last_event_id(auth: CurrentAuth, value: Annotated[str | None, Header(alias="Last-Event-ID")] = None) -> int:
    """The event a stream resumes after (0 without the header): an id this server sent, 1 to 15 ASCII digits, else
    400. Declared ahead of the resource's dependencies, so that it comes after 401 and before 404."""
    if value is None:
        return 0
    if _EVENT_ID.fullmatch(value) is None:
        raise Invalid(
            "Last-Event-ID must be an event id from this stream.", details=[("Last-Event-ID", "is not an event id")]
        )
    return int(value)


LastEventId = Annotated[int, Depends(last_event_id)]


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
