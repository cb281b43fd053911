from typing import Annotated

from pydantic import StringConstraints

from runwire.schemas import ApiInput, ApiModel, Timestamp, UUIDStr

Title = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]


class ChatCreate(ApiInput):
    title: Title | None = None
    workflow_id: UUIDStr | None = None


class ChatUpdate(ApiInput):
    """Only the fields given change; `workflowId: null` clears the reply workflow."""

    title: Title | None = None
    workflow_id: UUIDStr | None = None


class ChatRead(ApiModel):
    id: UUIDStr
    user_id: UUIDStr
    title: str | None
    workflow_id: UUIDStr | None
    created_at: Timestamp
    updated_at: Timestamp


class ChatPage(ApiModel):
    chats: list[ChatRead]
    next_cursor: str | None
