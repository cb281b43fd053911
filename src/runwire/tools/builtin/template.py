from pydantic import Field

from runwire.templating.sandbox import TemplateError
from runwire.tools.base import Tool, ToolContext, ToolError, ToolInputs


class TemplateInputs(ToolInputs):
    template: str = Field(description="Jinja2 text; it can use `input` and `steps.<id>.output`.")


class TemplateTool(Tool[TemplateInputs]):
    id = "template"
    name = "Template"
    description = "Renders a Jinja2 template with the run's input and the outputs of upstream steps."
    Inputs = TemplateInputs
    # Rendered here, so that the whole template always becomes text (a lone {{ x }} is not typed).
    raw_inputs = frozenset({"template"})

    async def run(self, inputs: TemplateInputs, ctx: ToolContext) -> dict[str, object]:
        try:
            return {"text": await ctx.render_text(inputs.template)}
        except TemplateError as error:
            raise ToolError(error.code, error.message) from None
