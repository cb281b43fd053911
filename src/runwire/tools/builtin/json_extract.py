from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import Field

from runwire.tools.base import Tool, ToolContext, ToolError, ToolInputs


class JsonExtractInputs(ToolInputs):
    data: Any = Field(description="Any JSON value.")
    expression: str = Field(description="A JMESPath expression, e.g. `items[?price > `10`].name`.")


class JsonExtractTool(Tool[JsonExtractInputs]):
    id = "json_extract"
    name = "JSON extract"
    description = "Picks and reshapes parts of a JSON value with a JMESPath expression."
    Inputs = JsonExtractInputs

    async def run(self, inputs: JsonExtractInputs, ctx: ToolContext) -> dict[str, object]:
        try:
            return {"result": jmespath.compile(inputs.expression).search(inputs.data)}
        except JMESPathError as error:
            raise ToolError("invalid_expression", f"invalid JMESPath expression: {error}") from None
