"""Tools from Python packages: each entry point of the group `runwire.tools` names a `Tool` subclass (or instance).

A plugin that cannot be imported, is not a tool, or whose id is taken or malformed is reported (`failures`, logged at
start and printed by `runwire tools list`) and skipped; it never stops a process.
"""

import logging
import re
from collections.abc import Set
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel

from runwire.tools.base import Tool

log = logging.getLogger("runwire.plugins")

ENTRY_POINT_GROUP = "runwire.tools"
# No dot: ids with one are MCP servers' (`server.tool`).
TOOL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class PluginError(Exception):
    pass


@dataclass(frozen=True)
class PluginFailure:
    entry_point: str
    distribution: str
    message: str

    def __str__(self) -> str:
        return f"plugin '{self.entry_point}' of {self.distribution} skipped: {self.message}"


@dataclass
class Plugins:
    """The plugins' tools, as a tool source for the registry."""

    tools: list[Tool[Any]] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)

    def listed(self) -> list[Tool[Any]]:
        return list(self.tools)

    def find(self, tool_id: str) -> Tool[Any] | None:
        return next((tool for tool in self.tools if tool.id == tool_id), None)

    def log_failures(self) -> None:
        for failure in self.failures:
            log.warning(str(failure))


def load(reserved: Set[str]) -> Plugins:
    """Every installed plugin's tool, in a stable order; `reserved` ids (the built-in tools') are refused."""
    plugins = Plugins()
    taken = set(reserved)
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (_distribution(e), e.name))
    for entry in found:
        distribution = _distribution(entry)
        try:
            tool = _tool(entry)
            if tool.id in taken:
                raise PluginError(f"the tool id '{tool.id}' is taken")
        except PluginError as error:
            plugins.failures.append(PluginFailure(entry.name, distribution, str(error)))
            continue
        tool.source = f"plugin:{distribution}"
        taken.add(tool.id)
        plugins.tools.append(tool)
    return plugins


def _distribution(entry: EntryPoint) -> str:
    return entry.dist.name if entry.dist is not None else "an unknown distribution"


def _tool(entry: EntryPoint) -> Tool[Any]:
    try:
        loaded = entry.load()
    except Exception as error:
        raise PluginError(f"'{entry.value}' cannot be imported ({type(error).__name__}: {error})") from None
    try:
        tool = loaded() if isinstance(loaded, type) and issubclass(loaded, Tool) else loaded
    except Exception as error:
        raise PluginError(f"'{entry.value}' cannot be made ({type(error).__name__}: {error})") from None
    if not isinstance(tool, Tool):
        raise PluginError(f"'{entry.value}' is not a runwire.tools.base.Tool")
    tool_id = getattr(tool, "id", None)
    if not isinstance(tool_id, str) or not TOOL_ID.match(tool_id):
        raise PluginError(f"its id {tool_id!r} is not 1 to 64 letters, digits, '_' or '-'")
    for attribute in ("name", "description"):
        if not isinstance(getattr(tool, attribute, None), str):
            raise PluginError(f"its `{attribute}` is not text")
    inputs = getattr(tool, "Inputs", None)
    if not (isinstance(inputs, type) and issubclass(inputs, BaseModel)):
        raise PluginError("its `Inputs` is not a pydantic model (runwire.tools.base.ToolInputs)")
    try:
        schema = tool.input_schema()
    except Exception as error:
        raise PluginError(f"its input schema cannot be made ({type(error).__name__}: {error})") from None
    if schema.get("type") != "object":
        raise PluginError("its inputs are not an object")
    return tool
