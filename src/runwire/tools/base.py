"""The Tool interface the run engine calls, and the error a tool raises to fail its step."""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ToolError(Exception):
    """A tool's failure, shown to the user in the step's error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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

    @abstractmethod
    async def run(self, inputs: BaseModel, ctx: ToolContext) -> dict[str, object]:
        """Do the work and return JSON-serialisable output; raise ToolError to fail the step.

        Cancellation arrives as asyncio.CancelledError, which a tool must let through at once.
        """
