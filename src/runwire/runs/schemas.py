from typing import Any, Literal

from pydantic import Field

from runwire.messages.schemas import MessageRead
from runwire.schemas import ApiInput, ApiModel, ErrorInfo, Timestamp, UUIDStr

IfBusy = Literal["enqueue", "reject", "interrupt"]


class RunCreate(ApiInput):
    workflow_id: UUIDStr
    input: dict[str, Any] = Field(default_factory=dict)
    # What a new run does while a run of the chat is pending or running: queue behind them, be refused (409), or
    # cancel them and run once they have stopped.
    if_busy: IfBusy = "enqueue"


class RunRerun(ApiInput):
    # Reuse the steps the source completed (their outputs, byte for byte) and run only the rest.
    from_failed: bool = False


class DecisionCreate(ApiInput):
    approved: bool
    comment: str | None = Field(default=None, max_length=2000)


class StepRead(ApiModel):
    id: str
    name: str | None
    tool_id: str
    status: str
    started_at: Timestamp | None
    completed_at: Timestamp | None
    error: ErrorInfo | None
    reused_from: UUIDStr | None
    # "decision" while an approval step waits for one.
    waiting_for: Literal["decision"] | None


class RunRead(ApiModel):
    id: UUIDStr
    chat_id: UUIDStr
    workflow_id: UUIDStr
    workflow_version: int
    status: str
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None
    error: ErrorInfo | None
    rerun_of: UUIDStr | None
    steps: list[StepRead]


class RunList(ApiModel):
    workflow_runs: list[RunRead]
    next_cursor: str | None = None


class StepDetail(StepRead):
    inputs: Any
    output: Any
    attempts: int
    logs: list[Any]


class RunDetail(RunRead):
    input: dict[str, Any]
    steps: list[StepDetail]  # type: ignore[assignment]


Order = Literal["asc", "desc"]


class MessagePosted(ApiModel):
    """A user message and the run it started (None when neither the message nor the chat names a workflow)."""

    message: MessageRead
    run: RunRead | None
