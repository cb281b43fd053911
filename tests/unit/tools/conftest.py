"""A real HTTP server on 127.0.0.1 and a recording ToolContext for the tool tests."""

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from runwire.templating.renderer import TemplateRenderer
from runwire.tools import registry
from runwire.tools.base import Tool, ToolContext, ToolError

HTML_PAGE = b"""<!doctype html><html><head><title> Test &amp; page </title>
<style>body { color: red }</style><script>var hidden = "script text";</script></head>
<body><h1>Heading</h1><p>First   paragraph with <b>bold</b> words.</p><noscript>no script</noscript>
<ul><li>one</li><li>two</li></ul></body></html>"""
BIG_BODY_BYTES = 2 * 1024 * 1024


def tool(tool_id: str) -> Tool:
    found = registry.get_tool(tool_id)
    assert found is not None
    return found


def run_tool(tool_id: str, inputs: dict[str, object], ctx: ToolContext) -> dict[str, object]:
    """Run a tool the way the engine does: inputs parsed by the registry, then `run`."""
    return asyncio.run(tool(tool_id).run(registry.parse_inputs(tool(tool_id), inputs), ctx))


def tool_error(tool_id: str, inputs: dict[str, object], ctx: ToolContext) -> ToolError:
    with pytest.raises(ToolError) as raised:
        run_tool(tool_id, inputs, ctx)
    return raised.value


@dataclass
class RecordingContext:
    template_context: Mapping[str, object] = field(default_factory=dict)
    allowed_hosts: frozenset[str] = frozenset()
    max_response_bytes: int = 1024 * 1024
    run_id: str = "run-1"
    step_id: str = "step-1"
    progress: list[tuple[int, str]] = field(default_factory=list)
    renderer: TemplateRenderer | None = None

    async def report_progress(self, progress: int, message: str) -> None:
        self.progress.append((progress, message))

    async def render_text(self, template: str) -> str:
        assert self.renderer is not None, "this context renders no templates"
        return await self.renderer.render_text(template, dict(self.template_context))


class _Handler(BaseHTTPRequestHandler):
    hits = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> None:
        url = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        if url.path == "/json":
            self._send(200, b'{"hello": "world", "n": [1, 2]}', "application/json")
        elif url.path == "/html":
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
        elif url.path == "/text":
            self._send(200, "plain text \u00e9".encode("latin-1"), "text/plain; charset=latin-1")
        elif url.path == "/png":
            self._send(200, b"\x89PNG\r\n", "image/png")
        elif url.path == "/error":
            self._send(500, b"boom", "text/plain")
        elif url.path == "/slow":
            time.sleep(float(query.get("seconds", "3")))
            self._send(200, b"late", "text/plain")
        elif url.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()  # no Content-Length: the client must stop reading by itself
            for _ in range(BIG_BODY_BYTES // 65536):
                self.wfile.write(b"x" * 65536)
        elif url.path == "/redirect":
            self._send(int(query.get("status", "302")), b"", "text/plain", Location=query["to"])
        elif url.path == "/chain":
            hops = int(query["hops"])
            if hops:
                self._send(302, b"", "text/plain", Location=f"/chain?hops={hops - 1}")
            else:
                self._send(200, b"end of chain", "text/plain")
        elif url.path == "/count":
            type(self).hits += 1
            self._send(200, str(self.hits).encode(), "text/plain")
        elif url.path == "/echo":
            length = int(self.headers.get("Content-Length", "0"))
            echo = {
                "method": self.command,
                "host": self.headers["Host"],
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "body": self.rfile.read(length).decode(),
            }
            self._send(200, json.dumps(echo).encode(), "application/json")
        else:
            self._send(404, b"not found", "text/plain")

    def _answer(self) -> None:
        # The timeout and size-cap tests hang up in the middle of an answer, on purpose.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._route()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer


@contextlib.contextmanager
def serving() -> Iterator[str]:
    """A test server on a port of its own, while the block runs: its base URL, http://127.0.0.1:<port>."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """The base URL, http://127.0.0.1:<port>."""
    with serving() as url:
        yield url


@pytest.fixture
def hits() -> Callable[[], int]:
    """How many requests /count has answered so far."""
    return lambda: _Handler.hits


@pytest.fixture
def progress() -> list[tuple[int, str]]:
    """What the context made by `make_ctx` was told through report_progress."""
    return []


@pytest.fixture
def make_ctx(progress: list[tuple[int, str]], template_renderer: TemplateRenderer) -> Callable[..., ToolContext]:
    """A context with the given fields; 127.0.0.1 is allowed unless `allowed_hosts` says otherwise."""

    def make(**fields: Any) -> ToolContext:
        allowed = frozenset({"127.0.0.1"})
        return replace(RecordingContext(allowed_hosts=allowed, progress=progress, renderer=template_renderer), **fields)

    return make


@pytest.fixture
def ctx(make_ctx: Callable[..., ToolContext]) -> ToolContext:
    return make_ctx()
