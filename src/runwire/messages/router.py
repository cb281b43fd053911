from typing import Annotated

from fastapi import Request, Response
from sse_starlette import EventSourceResponse

from runwire.deps import (
    CurrentAuth,
    OwnedChat,
    ReadQuota,
    ResumeFrom,
    SessionDep,
    StartWorkQuota,
    chat_read_headers,
    checked_body,
    get_database,
)
from runwire.messages.schemas import MessageCreate, MessageList, MessageRead
from runwire.pagination import LimitParam
from runwire.routing import api_router, conditional_json
from runwire.runs import chat_stream, conversation, listing, stream
from runwire.runs.chat_list import ChatListReader, MessagePage
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
async def list_messages(
    request: Request,
    chatId: str,
    order: Order = "asc",
    limit: LimitParam | None = None,
    cursor: str | None = None,
) -> Response:
    """On the chat reads' fast path (`chat_list`), like the run list."""
    reader: ChatListReader = request.app.state.chat_list
    token, if_none_match = chat_read_headers(request)
    page = MessagePage(descending=order == "desc", limit=limit, cursor=cursor)
    return conditional_json(await reader.read_messages(token, chatId, page, if_none_match))


@router.get("/stream", response_class=EventSourceResponse)
def stream_chat(request: Request, after: ResumeFrom, chat: OwnedChat, _quota: ReadQuota) -> EventSourceResponse:
    return stream.sse_response(
        chat_stream.chat_event_stream(get_database(request), request.app.state.hub.notifier, chat.id, after)
    )
