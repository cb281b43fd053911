"""Tools for Runwire's tests, loaded through the `runwire.tools` entry points."""

from pydantic import Field

from runwire.tools.base import Tool, ToolContext, ToolError, ToolInputs


class ShoutInputs(ToolInputs):
    text: str = Field(max_length=10_000, description="What to shout.")
    times: int = Field(default=1, ge=1, le=10, description="How many times.")


class ShoutTool(Tool[ShoutInputs]):
    id = "shout"
    name = "Shout"
    description = "Upper-cases a text; fails on a text that says 'whisper'."
    Inputs = ShoutInputs

    async def run(self, inputs: ShoutInputs, ctx: ToolContext) -> dict[str, object]:
        if "whisper" in inputs.text:
            raise ToolError("too_quiet", "A whisper cannot be shouted.")
        return {"text": " ".join([inputs.text.upper()] * inputs.times)}


class DelayAgain(ShoutTool):
    id = "delay"


NOT_A_TOOL = {"id": "dict"}
