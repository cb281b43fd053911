from runwire.deps import CurrentAuth, ReadQuota
from runwire.errors import NotFound
from runwire.routing import api_router
from runwire.schemas import Envelope
from runwire.tools import registry
from runwire.tools.schemas import ToolList, ToolRead

router = api_router("/api/tools", "tools")


def _read(tool: registry.Tool) -> ToolRead:
    return ToolRead(id=tool.id, name=tool.name, description=tool.description, input_schema=registry.input_schema(tool))


@router.get("", response_model=Envelope[ToolList])
def list_tools(auth: CurrentAuth, _quota: ReadQuota) -> Envelope[ToolList]:
    return Envelope(data=ToolList(tools=[_read(tool) for tool in registry.all_tools()]))


@router.get("/{toolId}", response_model=Envelope[ToolRead])
def get_tool(toolId: str, auth: CurrentAuth, _quota: ReadQuota) -> Envelope[ToolRead]:
    tool = registry.get_tool(toolId)
    if tool is None:
        raise NotFound(f"No tool '{toolId}'.")
    return Envelope(data=_read(tool))
