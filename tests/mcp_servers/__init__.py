"""The tests' MCP server (`server.py`, FastMCP) over stdio and streamable HTTP, and RUNWIRE_TOOLS_CONFIG files."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import free_port, wait_for

SERVER_SCRIPT = Path(__file__).with_name("server.py")


def toml_value(value: Any) -> str:
    """A TOML value for strings, lists of strings and tables of strings (TOML basic strings escape as JSON's do)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(each) for each in value) + "]"
    return json.dumps(value)


def write_config(path: Path, servers: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, table in servers.items():
        lines.append(f"[mcp.{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def marker_says(marker: Path, word: str, timeout: float = 10) -> None:
    """Wait until the test server's `slow` tool has written `word` to its marker file."""
    wait_for(lambda: marker.exists() and marker.read_text() == word, timeout=timeout)


def stdio_server(**extra: Any) -> dict[str, Any]:
    """The config table of the test server over stdio."""
    return {"command": sys.executable, "args": [str(SERVER_SCRIPT)]} | extra


class HttpMcpServer:
    """The test server over streamable HTTP on 127.0.0.1, in a subprocess; `stop` and `start` again on its port."""

    def __init__(self, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self, timeout: float = 15.0) -> None:
        with self.log_path.open("ab") as log:
            command = [sys.executable, str(SERVER_SCRIPT), "--http", str(self.port)]
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the MCP server did not listen within {timeout:g} s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> "HttpMcpServer":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
