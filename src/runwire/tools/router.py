from runwire.config import Settings
from runwire.deps import CurrentAuth, ReadQuota, SettingsDep
from runwire.errors import NotFound
from runwire.routing import api_router
from runwire.schemas import Envelope
from runwire.tools import registry
from runwire.tools.schemas import ToolList, ToolRead

router = api_router("/api/tools", "tools")


def _read(tool: registry.AnyTool, settings: Settings) -> ToolRead:
    reason = tool.unavailable_reason(settings)
    return ToolRead(
        id=tool.id,
        name=tool.name,
        description=tool.description,
        input_schema=registry.input_schema(tool),
        source=tool.source,
        available=reason is None,
        reason=reason,
    )


@router.get("", response_model=Envelope[ToolList], response_model_exclude_none=True)
def list_tools(auth: CurrentAuth, settings: SettingsDep, _quota: ReadQuota) -> Envelope[ToolList]:
    return Envelope(data=ToolList(tools=[_read(tool, settings) for tool in registry.all_tools()]))


@router.get("/{toolId}", response_model=Envelope[ToolRead], response_model_exclude_none=True)
def get_tool(toolId: str, auth: CurrentAuth, settings: SettingsDep, _quota: ReadQuota) -> Envelope[ToolRead]:
    tool = registry.listed_tool(toolId)
    if tool is None:
        raise NotFound(f"No tool '{toolId}'.")
    return Envelope(data=_read(tool, settings))
