from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from runwire.schemas import ApiInput, ApiModel, ErrorInfo, Timestamp, UUIDStr

MAX_CONTENT_CHARS = 32000
Role = Literal["user", "assistant"]


class MessageCreate(ApiInput):
    content: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CONTENT_CHARS)]
    workflow_id: UUIDStr | None = None
    input: dict[str, Any] = Field(default_factory=dict)


class MessageRead(ApiModel):
    id: UUIDStr
    chat_id: UUIDStr
    role: Role
    content: str
    run_id: UUIDStr | None
    error: ErrorInfo | None
    created_at: Timestamp


class MessageList(ApiModel):
    messages: list[MessageRead]
    next_cursor: str | None = None
