from typing import Any

from runwire.schemas import ApiModel


class ToolRead(ApiModel):
    id: str
    name: str
    description: str
    input_schema: dict[str, Any]


class ToolList(ApiModel):
    tools: list[ToolRead]
