from typing import Annotated

from fastapi import Response

from runwire.chats import service
from runwire.chats.schemas import ChatCreate, ChatPage, ChatRead, ChatUpdate
from runwire.deps import CurrentAuth, OwnedChat, OwnUserId, ReadQuota, SessionDep, WriteQuota, checked_body
from runwire.openapi import also_answers
from runwire.pagination import LimitParam
from runwire.routing import api_router
from runwire.runs import service as runs_service
from runwire.schemas import Envelope

router = api_router("/api", "chats")


@router.post(
    "/chats",
    status_code=201,
    response_model=Envelope[ChatRead],
    responses=also_answers(404, "The reply workflow named does not exist or was deleted."),
)
def create_chat(
    auth: CurrentAuth,
    _body: Annotated[None, checked_body(ChatCreate | None)],
    session: SessionDep,
    _quota: WriteQuota,
    data: ChatCreate | None = None,
) -> Envelope[ChatRead]:
    chat = service.create_chat(data or ChatCreate(), user_id=auth.user_id, session=session)
    return Envelope(data=ChatRead.model_validate(chat))


@router.get("/chats/{chatId}", response_model=Envelope[ChatRead])
def get_chat(chat: OwnedChat, _quota: ReadQuota) -> Envelope[ChatRead]:
    return Envelope(data=ChatRead.model_validate(chat))


@router.patch("/chats/{chatId}", response_model=Envelope[ChatRead])
def update_chat(
    _body: Annotated[None, checked_body(ChatUpdate)],
    chat: OwnedChat,
    data: ChatUpdate,
    session: SessionDep,
    _quota: WriteQuota,
) -> Envelope[ChatRead]:
    return Envelope(data=ChatRead.model_validate(service.update_chat(chat, data, session=session)))


@router.delete("/chats/{chatId}", status_code=204)
def delete_chat(chat: OwnedChat, session: SessionDep, _quota: WriteQuota) -> Response:
    runs_service.cancel_active_runs(chat, session=session)
    service.delete_chat(chat, session=session)
    return Response(status_code=204)


@router.get("/users/{userId}/chats", response_model=Envelope[ChatPage])
def list_chats(
    user_id: OwnUserId, session: SessionDep, _quota: ReadQuota, limit: LimitParam = 50, cursor: str | None = None
) -> Envelope[ChatPage]:
    chats, next_cursor = service.list_chats(user_id, limit=limit, cursor=cursor, session=session)
    return Envelope(data=ChatPage(chats=[ChatRead.model_validate(c) for c in chats], next_cursor=next_cursor))
