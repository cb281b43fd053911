import asyncio

from pydantic import Field

from runwire.tools.base import Tool, ToolContext, ToolInputs

PROGRESS_INTERVAL_SECONDS = 1.0


class DelayInputs(ToolInputs):
    seconds: float = Field(ge=0, le=3600, description="How long to wait.")


class DelayTool(Tool[DelayInputs]):
    id = "delay"
    name = "Delay"
    description = "Waits for a number of seconds, reporting progress; cancelling the run stops it at once."
    Inputs = DelayInputs

    async def run(self, inputs: DelayInputs, ctx: ToolContext) -> dict[str, object]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while (remaining := started + inputs.seconds - loop.time()) > 0:
            await asyncio.sleep(min(PROGRESS_INTERVAL_SECONDS, remaining))
            slept = min(loop.time() - started, inputs.seconds)
            await ctx.report_progress(int(slept * 100 / inputs.seconds), f"slept {slept:.1f} of {inputs.seconds:g} s")
        return {"sleptSeconds": inputs.seconds}
