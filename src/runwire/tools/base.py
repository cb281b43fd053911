"""The Tool interface the run engine calls, and the error a tool raises to fail its step.

This module is Runwire's public API for tools: a plugin package (entry-point group `runwire.tools`) provides
subclasses of `Tool`, with their inputs as a `ToolInputs` model, and raises `ToolError` to fail a step. A tool is
generic over its inputs model, so that `run` receives the model it declared:

    class ShoutInputs(ToolInputs):
        text: str = Field(max_length=10_000, description="What to shout.")

    class ShoutTool(Tool[ShoutInputs]):
        id = "shout"
        name = "Shout"
        description = "Upper-cases a text."
        Inputs = ShoutInputs

        async def run(self, inputs: ShoutInputs, ctx: ToolContext) -> dict[str, object]:
            return {"text": inputs.text.upper()}

Everything else in `runwire.tools` is internal.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
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

    async def await_decision(self, prompt: str, timeout_seconds: float | None) -> dict[str, object]:
        """Wait, durably, for a person's decision on this step (only for a tool that `waits_for_decision`): the
        approval's output, or ToolError `rejected`, or ToolError `timeout` once `timeout_seconds` have passed since
        the step started."""


class ToolInputs(BaseModel):
    """Base of every tool's input model: camelCase names on the wire, unknown fields refused, and strict, so that no
    boolean or text passes for a number."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True, strict=True)


InputsT = TypeVar("InputsT", bound=BaseModel)

# A problem with a step's inputs: (field path such as `inputs.url` or `inputs.headers[0]`, message).
InputProblem = tuple[str, str]


class Tool(ABC, Generic[InputsT]):
    """A unit of work a workflow step runs (public API).

    Subclasses set `id` (`[A-Za-z0-9_-]{1,64}`; unique), `name`, `description` and `Inputs` (the `ToolInputs`
    model of its inputs, also its type parameter) and implement `run`. Its JSON Schema (`GET /api/tools`), the check of
    a workflow's literal inputs at save time and the parsing of a step's rendered inputs all come from `Inputs`; a
    tool whose inputs are described otherwise (an MCP server's tool, by a JSON Schema) overrides `input_schema`,
    `input_problems` and `parse_inputs`.
    """

    id: str
    name: str
    description: str
    Inputs: type[InputsT]
    # Input fields the engine must not pre-render because the tool renders them itself.
    raw_inputs: frozenset[str] = frozenset()
    # Where the tool comes from: `builtin`, `mcp:<server>` or `plugin:<distribution>` (set by Runwire).
    source: str = "builtin"
    # Whether a model may call it (a model calling a model is refused).
    offered_to_models: bool = True
    # Whether it waits for a person's decision (`ToolContext.await_decision`): its step then has no default timeout
    # and no retries, and the run waits for the decision durably.
    waits_for_decision: bool = False

    def unavailable_reason(self, settings: Settings) -> str | None:
        """Why this server cannot run the tool now (e.g. a service it needs is not configured), or None."""
        return None

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of the tool's inputs."""
        return self.Inputs.model_json_schema()

    def input_problems(self, inputs: dict[str, object], templated: Set[str]) -> list[InputProblem]:
        """Each way a workflow's literal inputs break the tool's inputs; the `templated` fields, known only when the
        step runs, are left out."""
        try:
            self.Inputs.model_validate(inputs)
        except ValidationError as error:
            return validation_problems(error, skip_fields=templated)
        return []

    def parse_inputs(self, rendered: dict[str, object]) -> InputsT:
        """The step's rendered inputs as the tool's inputs model; ToolError("invalid_inputs") when they do not fit."""
        try:
            return self.Inputs.model_validate(rendered)
        except ValidationError as error:
            problems = "; ".join(f"{path}: {message}" for path, message in validation_problems(error))
            raise ToolError("invalid_inputs", problems) from None

    @abstractmethod
    async def run(self, inputs: InputsT, ctx: ToolContext) -> dict[str, object]:
        """Do the work and return JSON-serialisable output; raise ToolError to fail the step.

        Cancellation arrives as asyncio.CancelledError, which a tool must let through at once.
        """


def input_path(location: Sequence[str | int]) -> str:
    """`inputs.a.b[0]` for a location in the inputs."""
    return "inputs" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)


def validation_problems(error: ValidationError, skip_fields: Set[str] = frozenset()) -> list[InputProblem]:
    """A model's validation error as input problems, leaving out those in the `skip_fields` top-level fields."""
    return [
        (input_path(detail["loc"]), detail["msg"])
        for detail in error.errors()
        if not (detail["loc"] and detail["loc"][0] in skip_fields)
    ]
