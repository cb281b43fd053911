"""`RUNWIRE_TOOLS_CONFIG`: the TOML file naming the MCP servers a Runwire process connects to.

    [mcp.weather]                      # stdio: Runwire starts the command
    command = "python"
    args = ["-m", "weather_server"]
    env = { WEATHER_KEY = "${WEATHER_KEY}" }
    cwd = "/srv/weather"               # optional

    [mcp.search]                       # streamable HTTP
    url = "http://127.0.0.1:8700/mcp"
    headers = { Authorization = "Bearer ${SEARCH_TOKEN}" }

Every string may name environment variables as `${NAME}` (so that secrets stay out of the file); `$${` is a literal
`${`. Anything wrong (TOML syntax, an unknown key, a missing variable) is a `ToolsConfigError` naming the file and the
line, so that a process refuses to start rather than half-starting.
"""

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_VARIABLE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column \d+|end of document)\)$")
STDIO_KEYS = frozenset({"command", "args", "env", "cwd"})
HTTP_KEYS = frozenset({"url", "headers"})


class ToolsConfigError(Exception):
    def __init__(self, path: Path, line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        where = f"{path}: line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class StdioServer:
    name: str
    command: str
    args: tuple[str, ...] = field(default=(), repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    # What the command runs with: this process's environment without Runwire's own settings (they hold its
    # secrets), and `env`.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def transport(self) -> str:
        return "stdio"


@dataclass(frozen=True)
class HttpServer:
    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def transport(self) -> str:
        return "streamable HTTP"


ServerConfig = StdioServer | HttpServer


@dataclass(frozen=True)
class ToolsConfig:
    path: Path | None = None
    servers: tuple[ServerConfig, ...] = ()


def load(path: Path | None, environ: Mapping[str, str], scripts: Path | None = None) -> ToolsConfig:
    """The servers of the file at `path` (none without a file), with `${NAME}` taken from `environ`. A stdio
    server's command runs with `scripts` (default: the bin directory of the virtual environment running Runwire, if
    it runs in one) first on its PATH, so that `python` is the Python that has Runwire and the `mcp` SDK."""
    if path is None:
        return ToolsConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ToolsConfigError(path, None, f"cannot be read ({type(error).__name__}: {error})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _TOML_POSITION.search(message)
        line = None if position is None else int(position.group(1) or max(len(text.splitlines()), 1))
        raise ToolsConfigError(path, line, f"not valid TOML: {_TOML_POSITION.sub('', message)}") from None
    if scripts is None and sys.prefix != sys.base_prefix:
        scripts = Path(sys.executable).parent
    return _Parser(path, text, environ, scripts).config(document)


class _Parser:
    def __init__(self, path: Path, text: str, environ: Mapping[str, str], scripts: Path | None) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.environ = environ
        self.inherited = {key: value for key, value in environ.items() if not key.startswith("RUNWIRE_")}
        if scripts is not None:
            search = [str(scripts), *environ.get("PATH", os.defpath).split(os.pathsep)]
            self.inherited["PATH"] = os.pathsep.join(dict.fromkeys(search))

    def error(self, line: int | None, message: str) -> ToolsConfigError:
        return ToolsConfigError(self.path, line, message)

    def config(self, document: dict[str, Any]) -> ToolsConfig:
        for key in document:
            if key != "mcp":
                raise self.error(self._line_of(rf"\[\s*{re.escape(key)}\b|^\s*{re.escape(key)}\s*="), _unknown(key))
        servers = document.get("mcp", {})
        if not isinstance(servers, dict):
            raise self.error(self._line_of(r"^\s*mcp\s*="), "`mcp` must be a table of servers ([mcp.<name>])")
        return ToolsConfig(self.path, tuple(self.server(name, table) for name, table in servers.items()))

    def server(self, name: str, table: object) -> ServerConfig:
        line = self._table_line(name)
        if not SERVER_NAME.match(name):
            raise self.error(line, f"server name '{name}' must be 1 to 32 letters, digits, '_' or '-'")
        if not isinstance(table, dict):
            raise self.error(line, f"[mcp.{name}] must be a table")
        for key in table:
            if key not in STDIO_KEYS | HTTP_KEYS:
                known = ", ".join(sorted(STDIO_KEYS | HTTP_KEYS))
                raise self.error(self._key_line(name, key), f"[mcp.{name}]: unknown key '{key}' (known: {known})")
        if ("command" in table) == ("url" in table):
            raise self.error(line, f"[mcp.{name}] needs either `command` (stdio) or `url` (streamable HTTP)")
        transport_keys = STDIO_KEYS if "command" in table else HTTP_KEYS
        for key in table.keys() - transport_keys:
            message = f"[mcp.{name}]: `{key}` does not go with `{'command' if 'command' in table else 'url'}`"
            raise self.error(self._key_line(name, key), message)
        if "url" in table:
            url = self.text(name, "url", table["url"])
            if not re.match(r"^https?://[^\s/]+", url):
                raise self.error(self._key_line(name, "url"), f"[mcp.{name}]: `url` must be an http:// or https:// URL")
            return HttpServer(name, url, self.strings(name, "headers", table.get("headers", {})))
        command = self.text(name, "command", table["command"])
        if not command:
            raise self.error(self._key_line(name, "command"), f"[mcp.{name}]: `command` is empty")
        args = table.get("args", [])
        if not isinstance(args, list):
            raise self.error(self._key_line(name, "args"), f"[mcp.{name}]: `args` must be a list of strings")
        cwd = table.get("cwd")
        env = self.strings(name, "env", table.get("env", {}))
        return StdioServer(
            name,
            command,
            tuple(self.text(name, "args", arg) for arg in args),
            env,
            None if cwd is None else self.text(name, "cwd", cwd),
            {**self.inherited, **env},
        )

    def strings(self, server: str, key: str, value: object) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.error(self._key_line(server, key), f"[mcp.{server}]: `{key}` must be a table of strings")
        return {str(name): self.text(server, key, each) for name, each in value.items()}

    def text(self, server: str, key: str, value: object) -> str:
        """A string value with its `${NAME}`s replaced."""
        if not isinstance(value, str):
            raise self.error(self._key_line(server, key), f"[mcp.{server}]: `{key}` must hold strings")

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name = match.group(1)
            if not _VARIABLE_NAME.match(name):
                raise self.error(self._key_line(server, key), f"[mcp.{server}]: `{key}`: '${{{name}}}' is not a name")
            if name not in self.environ:
                message = f"[mcp.{server}]: `{key}` uses ${{{name}}}, which is not set in the environment"
                raise self.error(self._key_line(server, key), message)
            return self.environ[name]

        return _VARIABLE.sub(substitute, value)

    # Where things are: tomllib gives no positions, so the lines are found in the text.

    def _line_of(self, pattern: str, start: int = 0, stop: int | None = None) -> int | None:
        compiled = re.compile(pattern)
        for number in range(start, len(self.lines) if stop is None else stop):
            if compiled.search(self.lines[number]):
                return number + 1
        return None

    def _table_line(self, name: str) -> int | None:
        quoted = rf"(?:{re.escape(name)}|\"{re.escape(name)}\"|'{re.escape(name)}')"
        return self._line_of(rf"^\s*\[\s*mcp\s*\.\s*{quoted}\s*[\].]") or self._line_of(re.escape(name))

    def _key_line(self, server: str, key: str) -> int | None:
        header = self._table_line(server)
        if header is None:
            return None
        following = self._line_of(r"^\s*\[", start=header)
        quoted = rf"(?:{re.escape(key)}|\"{re.escape(key)}\")"
        return self._line_of(rf"^\s*{quoted}\s*=", start=header, stop=following and following - 1) or header


def _unknown(key: str) -> str:
    return f"unknown section '{key}' (the file holds [mcp.<name>] tables)"
