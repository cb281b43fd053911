from typing import Any

from runwire.schemas import ApiModel


class ToolRead(ApiModel):
    id: str
    name: str
    description: str
    input_schema: dict[str, Any]
    source: str
    available: bool
    # Why the tool is unavailable; left out while it is available.
    reason: str | None = None


class ToolList(ApiModel):
    tools: list[ToolRead]
