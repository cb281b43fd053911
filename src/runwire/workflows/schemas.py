from typing import Annotated, Any

from pydantic import Field, StringConstraints

from runwire.schemas import ApiInput, ApiModel, Timestamp, UUIDStr

StepId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Description = Annotated[str, StringConstraints(max_length=1000)]
MAX_STEPS = 100
RunTimeout = Annotated[int, Field(ge=1, le=86400)]
Reply = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]


class StepDef(ApiInput):
    id: StepId
    name: Annotated[str, StringConstraints(max_length=255)] | None = None
    tool_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    inputs: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[StepId] = Field(default_factory=list)
    timeout_seconds: float | None = Field(default=None, gt=0, le=86400)
    retries: int | None = Field(default=None, ge=0, le=10)


class WorkflowCreate(ApiInput):
    user_id: UUIDStr | None = None
    name: Name
    description: Description | None = None
    steps: list[StepDef] = Field(default_factory=list)
    timeout_seconds: RunTimeout | None = None
    reply: Reply | None = None


class WorkflowUpdate(ApiInput):
    name: Name | None = None
    description: Description | None = None
    steps: list[StepDef] | None = None
    timeout_seconds: RunTimeout | None = None
    reply: Reply | None = None


class WorkflowRead(ApiModel):
    id: UUIDStr
    user_id: UUIDStr
    name: str
    description: str | None
    version: int
    steps: list[dict[str, Any]]
    timeout_seconds: int | None
    reply: str | None
    created_at: Timestamp
    updated_at: Timestamp


class WorkflowPage(ApiModel):
    workflows: list[WorkflowRead]
    next_cursor: str | None
