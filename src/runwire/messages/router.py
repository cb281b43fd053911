from typing import Annotated

from fastapi import Request
from sse_starlette import EventSourceResponse

from runwire.deps import (
    CurrentAuth,
    OwnedChat,
    ReadQuota,
    ResumeFrom,
    SessionDep,
    StartWorkQuota,
    checked_body,
    get_database,
)
from runwire.messages import service
from runwire.messages.schemas import MessageCreate, MessageList, MessageRead
from runwire.pagination import LimitParam
from runwire.routing import api_router
from runwire.runs import chat_stream, conversation, listing, stream
from runwire.runs.executor import Executor
from runwire.runs.schemas import MessagePosted, Order, RunRead
from runwire.schemas import Envelope

router = api_router("/api/chats/{chatId}", "messages")


@router.post("/messages", status_code=201, response_model=Envelope[MessagePosted])
def post_message(
    _body: Annotated[None, checked_body(MessageCreate)],
    chat: OwnedChat,
    data: MessageCreate,
    auth: CurrentAuth,
    session: SessionDep,
    request: Request,
    _quota: StartWorkQuota,
) -> Envelope[MessagePosted]:
    executor: Executor = request.app.state.executor
    message, run = conversation.post_message(
        chat, data, user_id=auth.user_id, enqueue=executor.enqueue, session=session
    )
    run_read = RunRead.model_validate(listing.get_run(run.id, detail=False, session=session)) if run else None
    return Envelope(data=MessagePosted(message=MessageRead.model_validate(message), run=run_read))


@router.get("/messages", response_model=Envelope[MessageList], response_model_exclude_unset=True)
def list_messages(
    chat: OwnedChat,
    session: SessionDep,
    _quota: ReadQuota,
    order: Order = "asc",
    limit: LimitParam | None = None,
    cursor: str | None = None,
) -> Envelope[MessageList]:
    messages, next_cursor = service.list_messages(
        chat.id, descending=order == "desc", limit=limit, cursor=cursor, session=session
    )
    page = MessageList(messages=[MessageRead.model_validate(message) for message in messages])
    if limit is not None:
        page.next_cursor = next_cursor
    return Envelope(data=page)


@router.get("/stream", response_class=EventSourceResponse)
def stream_chat(request: Request, after: ResumeFrom, chat: OwnedChat, _quota: ReadQuota) -> EventSourceResponse:
    return stream.sse_response(
        chat_stream.chat_event_stream(get_database(request), request.app.state.hub.notifier, chat.id, after)
    )
