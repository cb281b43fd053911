import hashlib
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Query, Request, Response
from pydantic import AwareDatetime
from sse_starlette import EventSourceResponse

from runwire.deps import (
    CurrentAuth,
    LastEventId,
    OwnedChat,
    OwnUserId,
    ReadQuota,
    SessionDep,
    StartWorkQuota,
    WriteQuota,
    chat_read_headers,
    checked_body,
    get_database,
)
from runwire.ids import parse_uuid
from runwire.openapi import also_answers
from runwire.pagination import LimitParam, decode_newest_first
from runwire.routing import api_router, conditional_json
from runwire.runs import decisions, idempotency, listing, service, stream
from runwire.runs.chat_list import ChatListReader, ListRequest, etag_matches
from runwire.runs.executor import Executor
from runwire.runs.models import WorkflowRun
from runwire.runs.schemas import DecisionCreate, Order, RunCreate, RunDetail, RunList, RunRead, RunRerun
from runwire.schemas import Envelope

router = api_router("/api/chats/{chatId}/workflow-runs", "workflow runs")
users_router = api_router("/api/users/{userId}/workflow-runs", "workflow runs")


def get_executor(request: Request) -> Executor:
    executor: Executor = request.app.state.executor
    return executor


def run_in_chat(chat: OwnedChat, workflowRunId: str, session: SessionDep) -> WorkflowRun:
    run_id = parse_uuid(workflowRunId, "workflowRunId")
    return service.get_run_in_chat(chat, run_id, session=session)


RunInChat = Annotated[WorkflowRun, Depends(run_in_chat)]


def json_response(payload: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status_code, media_type="application/json", headers=headers)


@router.get("", response_model=Envelope[RunList])
async def list_runs(
    request: Request,
    chatId: str,
    status: str | None = None,
    workflow_id: Annotated[str | None, Query(alias="workflowId")] = None,
    order: Order = "asc",
    limit: LimitParam | None = None,
    cursor: str | None = None,
) -> Response:
    """The seed endpoint, on its fast path (`chat_list`); without a query string, also on the fast lane (`main.py`)."""
    token, if_none_match = chat_read_headers(request)
    wanted = ListRequest(
        token=token,
        chat_id=chatId,
        status=status,
        workflow_id=workflow_id,
        descending=order == "desc",
        limit=limit,
        cursor=cursor,
        if_none_match=if_none_match,
    )
    reader: ChatListReader = request.app.state.chat_list
    return conditional_json(await reader.read(wanted))


def idempotency_key(
    auth: CurrentAuth, key: Annotated[str | None, Header(alias=idempotency.HEADER)] = None
) -> str | None:
    """After the session check and before the chat's: a malformed key is a 400, after 401 and ahead of 404."""
    return idempotency.parse_key(key)


@router.post(
    "",
    status_code=202,
    response_model=Envelope[RunRead],
    responses=also_answers(
        409, f"The chat is busy (ifBusy: reject), or the {idempotency.HEADER} was used for a different request."
    ),
)
def create_run(
    key: Annotated[str | None, Depends(idempotency_key)],
    _body: Annotated[None, checked_body(RunCreate)],
    chat: OwnedChat,
    data: RunCreate,
    auth: CurrentAuth,
    session: SessionDep,
    executor: Annotated[Executor, Depends(get_executor)],
    _quota: StartWorkQuota,
) -> Response:
    created = idempotency.create_run(
        chat, data, user_id=auth.user_id, key=key, enqueue=executor.enqueue, session=session
    )
    headers = {"Idempotent-Replayed": "true"} if created.replayed else None
    run = listing.get_run(created.run_id, detail=False, session=session)
    return json_response({"data": run}, status_code=202, headers=headers)


@router.get("/{workflowRunId}", response_model=Envelope[RunDetail])
async def get_run(request: Request, chatId: str, workflowRunId: str) -> Response:
    """On the chat reads' fast path (`chat_list`), like the list."""
    reader: ChatListReader = request.app.state.chat_list
    token, if_none_match = chat_read_headers(request)
    return conditional_json(await reader.read_run(token, chatId, workflowRunId, if_none_match))


@router.post(
    "/{workflowRunId}/cancel",
    status_code=202,
    response_model=Envelope[RunRead],
    responses=also_answers(409, "The run has already ended."),
)
def cancel_run(run: RunInChat, session: SessionDep, _quota: WriteQuota) -> Response:
    service.cancel_run(run, session=session)
    session.flush()
    return json_response({"data": listing.get_run(run.id, detail=False, session=session)}, status_code=202)


@router.post(
    "/{workflowRunId}/rerun",
    status_code=202,
    response_model=Envelope[RunRead],
    responses=also_answers(
        409, "The run has not ended, or fromFailed was asked of a run that neither failed nor was cancelled."
    ),
)
def rerun_run(
    _body: Annotated[None, checked_body(RunRerun | None)],
    run: RunInChat,
    auth: CurrentAuth,
    session: SessionDep,
    executor: Annotated[Executor, Depends(get_executor)],
    _quota: StartWorkQuota,
    data: RunRerun | None = None,
) -> Response:
    """A new run of the run's workflow version with its input; with fromFailed, the steps it completed reused."""
    from_failed = data is not None and data.from_failed
    rerun = service.rerun(run, from_failed=from_failed, user_id=auth.user_id, enqueue=executor.enqueue, session=session)
    return json_response({"data": listing.get_run(rerun.id, detail=False, session=session)}, status_code=202)


@router.post(
    "/{workflowRunId}/steps/{stepId}/decision",
    response_model=Envelope[RunRead],
    responses=also_answers(409, "The step is not waiting for a decision (it has not started waiting, or has ended)."),
)
def decide_step(
    _body: Annotated[None, checked_body(DecisionCreate)],
    run: RunInChat,
    stepId: str,
    data: DecisionCreate,
    session: SessionDep,
    executor: Annotated[Executor, Depends(get_executor)],
    _quota: WriteQuota,
) -> Response:
    """Approve or reject an approval step that waits for a decision; exactly one decision is ever taken."""
    decisions.decide(run.id, stepId, data, send=executor.send_to_waiter, session=session)
    session.flush()
    return json_response({"data": listing.get_run(run.id, detail=False, session=session)})


@router.get("/{workflowRunId}/stream", response_class=EventSourceResponse)
def stream_run(request: Request, after: LastEventId, run: RunInChat, _quota: ReadQuota) -> EventSourceResponse:
    return stream.sse_response(
        stream.run_event_stream(get_database(request), request.app.state.hub.notifier, run.id, after)
    )


@users_router.get("", response_model=Envelope[RunList])
def list_user_runs(
    request: Request,
    user_id: OwnUserId,
    session: SessionDep,
    _quota: ReadQuota,
    status: str | None = None,
    workflow_id: Annotated[str | None, Query(alias="workflowId")] = None,
    chat_id: Annotated[str | None, Query(alias="chatId")] = None,
    created_after: Annotated[AwareDatetime | None, Query(alias="createdAfter")] = None,
    created_before: Annotated[AwareDatetime | None, Query(alias="createdBefore")] = None,
    order: Order = "desc",
    limit: LimitParam = 50,
    cursor: str | None = None,
) -> Response:
    """The user's runs across their chats, newest first, with an ETag (`tagged_json`)."""
    run_filter = listing.UserRunFilter(
        statuses=listing.parse_statuses(status),
        workflow_id=parse_uuid(workflow_id, "workflowId") if workflow_id is not None else None,
        chat_id=parse_uuid(chat_id, "chatId") if chat_id is not None else None,
        created_after=created_after,
        created_before=created_before,
        descending=order == "desc",
        limit=limit,
        after=decode_newest_first(cursor) if cursor is not None else None,
    )
    runs, next_cursor = listing.list_user_runs(user_id, run_filter, session=session)
    body = orjson.dumps({"data": {"workflowRuns": runs, "nextCursor": next_cursor}})
    return tagged_json(body, request.headers.get("if-none-match"))


def tagged_json(body: bytes, if_none_match: str | None) -> Response:
    """The body with an ETag that is a digest of its bytes, or 304 when the client's copy has that tag: a 304 is only
    ever served for the very list the client holds, whatever changed in between."""
    etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
