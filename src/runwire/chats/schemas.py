from typing import Annotated

from pydantic import StringConstraints

from runwire.schemas import ApiInput, ApiModel, Timestamp, UUIDStr


class ChatCreate(ApiInput):
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] | None = None


class ChatRead(ApiModel):
    id: UUIDStr
    user_id: UUIDStr
    title: str | None
    created_at: Timestamp
    updated_at: Timestamp


class ChatPage(ApiModel):
    chats: list[ChatRead]
    next_cursor: str | None
