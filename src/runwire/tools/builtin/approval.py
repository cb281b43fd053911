from pydantic import Field

from runwire.tools.base import Tool, ToolContext, ToolInputs

MAX_WAIT_SECONDS = 30 * 24 * 3600


class ApprovalInputs(ToolInputs):
    prompt: str = Field(min_length=1, max_length=10_000, description="What the person is asked to approve.")
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=MAX_WAIT_SECONDS, description="How long to wait for a decision (no limit if absent)."
    )


class ApprovalTool(Tool[ApprovalInputs]):
    id = "approval"
    name = "Approval"
    description = (
        "Waits for a person's decision, posted to the step's decision endpoint: approved, the step completes with "
        "{approved, comment, decidedAt}; rejected, it fails. The wait survives any restart."
    )
    Inputs = ApprovalInputs
    offered_to_models = False
    waits_for_decision = True

    async def run(self, inputs: ApprovalInputs, ctx: ToolContext) -> dict[str, object]:
        return await ctx.await_decision(inputs.prompt, inputs.timeout_seconds)
