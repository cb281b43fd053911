from pydantic import BaseModel, Field

from runwire.runs.templating import TemplateError, render_text
from runwire.tools.base import Tool, ToolContext, ToolError, ToolInputs


class TemplateInputs(ToolInputs):
    template: str = Field(description="Jinja2 text; it can use `input` and `steps.<id>.output`.")


class TemplateTool(Tool):
    id = "template"
    name = "Template"
    description = "Renders a Jinja2 template with the run's input and the outputs of upstream steps."
    Inputs = TemplateInputs
    # Rendered here, so that the whole template always becomes text (a lone {{ x }} is not typed).
    raw_inputs = frozenset({"template"})

    async def run(self, inputs: BaseModel, ctx: ToolContext) -> dict[str, object]:
        assert isinstance(inputs, TemplateInputs)
        try:
            return {"text": render_text(inputs.template, ctx.template_context)}
        except TemplateError as error:
            raise ToolError("invalid_template", error.message) from None
