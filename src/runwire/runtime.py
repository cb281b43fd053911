"""What every Runwire process runs besides HTTP: the database at its newest schema, the process's signal hub and
cross-process signal listener (PostgreSQL), the executor of the process's role, and the tools from outside: its
plugins and its own sessions with the MCP servers of RUNWIRE_TOOLS_CONFIG."""

import logging
import time

from runwire import migrate
from runwire.config import Settings, process_environment
from runwire.db import Database
from runwire.runs.executor import Executor, InProcessExecutor, QueueClient
from runwire.runs.signals import HUB_KEY, SignalHub, listener_for
from runwire.tools import plugins, registry
from runwire.tools.mcp import config as tools_config
from runwire.tools.mcp.manager import McpServers

log = logging.getLogger("runwire.runtime")

# `runwire tools refresh` touches this file in the data directory; the process's MCP servers list their tools again.
REFRESH_STAMP = "tools-refresh"


def tool_sources(settings: Settings) -> tuple[plugins.Plugins, McpServers]:
    """The process's plugins and MCP servers, not started; a malformed RUNWIRE_TOOLS_CONFIG raises ToolsConfigError
    before anything else happens."""
    config = tools_config.load(settings.tools_config, process_environment())
    found = plugins.load(reserved={tool.id for tool in registry.builtin_tools()})
    return found, McpServers(config, refresh_stamp=settings.data_dir / REFRESH_STAMP)


class Runtime:
    def __init__(self, settings: Settings, *, execute: bool) -> None:
        self.settings = settings
        self.plugins, self.mcp = tool_sources(settings)
        self.hub = SignalHub()
        self.database = Database(
            settings.resolved_database_url, settings.database_pool_size, session_info={HUB_KEY: self.hub}
        )
        self.executor: Executor = (
            InProcessExecutor(settings, self.database, self.hub) if execute else QueueClient(settings)
        )
        self._listener = listener_for(settings.resolved_database_url, self.hub)

    def start(self) -> None:
        # MCP servers start connecting first, in the background, while the rest starts.
        started = time.monotonic()
        self.plugins.log_failures()
        registry.install(self.plugins)
        self.mcp.start()
        registry.install(self.mcp)
        self.hub.refresh_tools = self.mcp.refresh
        try:
            migrate.upgrade(self.database.engine)
            if self._listener is not None:
                self._listener.start()
            self.executor.start()
        except BaseException:
            self._stop_tools()
            raise
        self.mcp.wait_started(self.settings.tools_startup_wait_seconds - (time.monotonic() - started))

    def begin_drain(self) -> None:
        """Take no new run (see `drain.py`)."""
        self.executor.begin_drain()

    def stop(self, drain_deadline: float | None = None) -> None:
        """Stop; with a `drain_deadline` (on `time.monotonic()`'s clock), first let running steps finish until then."""
        if drain_deadline is not None:
            self.executor.drain(drain_deadline)
        self.executor.stop()
        if self._listener is not None:
            self._listener.stop()
        self.database.dispose()
        self._stop_tools()

    def _stop_tools(self) -> None:
        registry.uninstall(self.mcp)
        registry.uninstall(self.plugins)
        self.mcp.stop()
