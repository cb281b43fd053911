"""The Tool interface the run engine calls, and the error a tool raises to fail its step."""

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from runwire.config import Settings


class ToolError(Exception):
    """A tool's failure, shown to the user in the step's error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ToolOffer:
    """A tool as a model is offered it: a function name the model APIs accept (`[A-Za-z0-9_-]{1,64}`), the tool
    it stands for, what it does and the JSON Schema of its inputs."""

    name: str
    tool_id: str
    description: str
    input_schema: dict[str, Any]


class ToolContext(Protocol):
    """What a running tool may know about its step; the engine provides it."""

    # Read-only properties so that frozen dataclasses and plain objects both satisfy the protocol.
    @property
    def run_id(self) -> str: ...

    @property
    def step_id(self) -> str: ...

    @property
    def template_context(self) -> Mapping[str, object]:
        """{"input": ..., "steps": {<upstream step id>: {"output": ...}}}"""

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Lower-case allow-list entries, `host` (every port) or `host:port` (that port only), that the network guard
        lets through even when they are private."""

    @property
    def max_response_bytes(self) -> int: ...

    async def report_progress(self, progress: int, message: str) -> None: ...

    async def render_text(self, template: str) -> str:
        """The template rendered as text over `template_context`, in a worker process bounded in time, memory and
        output; a template that fails or breaks a bound raises `templating.sandbox.TemplateError`, whose `code` is
        `invalid_template` or `template_limit`."""

    @property
    def settings(self) -> Settings:
        """The server's settings (a tool that needs a service, such as a model endpoint, finds it here)."""

    async def log(self, message: str) -> None:
        """Add a line to the step's logs."""

    async def stream_output(self, text: str) -> None:
        """Publish a chunk of the step's output as it is produced (coalesced into `step_output_delta` events)."""

    async def chat_history(self) -> list[dict[str, str]]:
        """The run's chat before the message that started the run, oldest first: `{role, content}` turns."""

    def offer_tools(self, tool_ids: Sequence[str]) -> list[ToolOffer]:
        """The tools a model may call, as offers; ToolError("invalid_inputs") for an id no model may call."""

    async def call_tool(self, tool_id: str, inputs: dict[str, Any]) -> dict[str, object]:
        """Run a tool as a step would (its input checks, network guard, output limits and a timeout) within this
        step, cancelled with it; a failure is a ToolError."""


class ToolInputs(BaseModel):
    """Base of every tool's input model: camelCase names on the wire, unknown fields refused, and strict, so that no
    boolean or text passes for a number."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True, strict=True)


class Tool(ABC):
    id: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str]
    Inputs: ClassVar[type[BaseModel]]
    # Input fields the engine must not pre-render because the tool renders them itself.
    raw_inputs: ClassVar[frozenset[str]] = frozenset()
    # Where the tool comes from: `builtin`, `mcp:<server>` or `plugin:<distribution>`.
    source: ClassVar[str] = "builtin"
    # Whether a model may call it (a model calling a model is refused).
    offered_to_models: ClassVar[bool] = True

    def unavailable_reason(self, settings: Settings) -> str | None:
        """Why this server cannot run the tool (e.g. a service it needs is not configured), or None."""
        return None

    @abstractmethod
    async def run(self, inputs: BaseModel, ctx: ToolContext) -> dict[str, object]:
        """Do the work and return JSON-serialisable output; raise ToolError to fail the step.

        Cancellation arrives as asyncio.CancelledError, which a tool must let through at once.
        """
