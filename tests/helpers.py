"""Helpers shared by the tests: the app driven over HTTP (accounts, chats, workflows, runs), `runwire` subprocesses
and their HTTP clients, and tools run as the executor runs them against a real HTTP server."""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from dbos import DBOS
from fastapi.testclient import TestClient

from runwire.config import Settings
from runwire.db import Base, Database
from runwire.templating.renderer import TemplateRenderer
from runwire.tools import registry
from runwire.tools.base import Tool, ToolContext, ToolError, ToolOffer
from tests.factories import TEST_DEFAULTS

PASSWORD = "correct horse battery"
ORIGIN = "http://localhost:3026"
FINAL = {"completed", "failed", "cancelled"}


def sign_up(client: TestClient, email: str = "ada@example.com", name: str = "Ada") -> dict[str, Any]:
    response = client.post("/api/auth/sign-up/email", json={"email": email, "password": PASSWORD, "name": name})
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()["data"]["user"]
    return user


def new_chat(client: TestClient, title: str = "A chat") -> dict[str, Any]:
    response = client.post("/api/chats", json={"title": title})
    assert response.status_code == 201, response.text
    chat: dict[str, Any] = response.json()["data"]
    return chat


def create_workflow(client: TestClient, steps: list[dict[str, Any]], name: str = "wf") -> dict[str, Any]:
    response = client.post("/api/workflows", json={"name": name, "steps": steps})
    assert response.status_code == 201, response.text
    workflow: dict[str, Any] = response.json()["data"]
    return workflow


def start_run(
    client: TestClient, chat_id: str, workflow_id: str, run_input: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"workflowId": workflow_id}
    if run_input is not None:
        body["input"] = run_input
    response = client.post(f"/api/chats/{chat_id}/workflow-runs", json=body)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()["data"]
    return run


def get_run(client: TestClient, chat_id: str, run_id: str) -> dict[str, Any]:
    response = client.get(f"/api/chats/{chat_id}/workflow-runs/{run_id}")
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()["data"]
    return run


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value {value!r}")
        time.sleep(interval)


def wait_for_run(
    client: TestClient, chat_id: str, run_id: str, statuses: set[str] = FINAL, timeout: float = 20.0
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        run = get_run(client, chat_id, run_id)
        return run if run["status"] in statuses else None

    try:
        result: dict[str, Any] = wait_for(check, timeout)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{run_state(client, chat_id, run_id)}") from None
    return result


def run_state(client: TestClient, chat_id: str, run_id: str) -> str:
    """The run as listed, its durable workflow as this process's DBOS records it, and the chat's other runs (which
    may hold its queue): what a test that waited for the run in vain shows."""
    others = [
        f"{run['id']} {run['status']}, durable workflow {durable_state(run['id'])}"
        for run in client.get(f"/api/chats/{chat_id}/workflow-runs").json()["data"]["workflowRuns"]
        if run["id"] != run_id
    ]
    return (
        f"run: {get_run(client, chat_id, run_id)}\ndurable workflow: {durable_state(run_id)}\n"
        f"the chat's other runs: {others}"
    )


def durable_state(run_id: str) -> str:
    workflow = DBOS.get_workflow_status(run_id)
    if workflow is None:
        return "none"
    return f"{workflow.status} on {workflow.queue_name} by {workflow.executor_id}, updated at {workflow.updated_at}"


def sse_events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """A Server-Sent Events response's events, from its lines: `{"id": int, "event": str, "data": parsed JSON}`."""
    current: dict[str, Any] = {}
    for line in lines:
        if line.startswith("id: "):
            current["id"] = int(line[4:])
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif not line and current:
            yield current
            current = {}


def read_stream(
    client: TestClient, chat_id: str, run_id: str, last_event_id: str | None = None
) -> list[dict[str, Any]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    with client.stream("GET", f"/api/chats/{chat_id}/workflow-runs/{run_id}/stream", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache" and response.headers["x-accel-buffering"] == "no"
        return list(sse_events(response.iter_lines()))


def step(step_id: str, tool_id: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "toolId": tool_id, "inputs": inputs, **extra}


def wait_for_first_step(client: TestClient, chat_id: str, run_id: str, status: str = "running") -> dict[str, Any]:
    """Wait until the run's first step has the status (a run is running a moment before its first step is)."""
    result: dict[str, Any] = wait_for(
        lambda: (run := get_run(client, chat_id, run_id))["steps"][0]["status"] == status and run
    )
    return result


# What the attack cases assert: the refusal's status and shape, and stored data left as it was

# Counters that refused requests are meant to move; everything else must stay as it was.
UNCOUNTED_TABLES = frozenset({"rate_limit_counter"})

Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(client: TestClient) -> Snapshot:
    """Every row of every Runwire table, in a stable order."""
    database: Database = client.app.state.database  # type: ignore[attr-defined]
    tables: Snapshot = {}
    with database.reading() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in UNCOUNTED_TABLES:
                continue
            rows = session.execute(sa.select(table)).all()
            tables[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return tables


def assert_refused(response: Any, status: int, error: str, field: str | None = None) -> dict[str, Any]:
    """The response is `status` in the contract's error shape, naming `field` in its details when given."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert isinstance(body["message"], str) and body["message"], body
    assert set(body) <= {"error", "message", "details"}, body
    if field is not None:
        assert field in [detail["field"] for detail in body.get("details", [])], body
    return body


class StoredData:
    """`mark()` before an attack, `assert_unchanged()` after it: every stored row must be as it was."""

    def __init__(self, client: TestClient) -> None:
        self._client = client
        self._before: Snapshot | None = None

    def mark(self) -> None:
        self._before = snapshot(self._client)

    def assert_unchanged(self) -> None:
        assert self._before is not None, "mark() first"
        assert snapshot(self._client) == self._before


# `runwire` subprocesses, and a real HTTP server that counts hits

TEST_ENV = {f"RUNWIRE_{name.upper()}": str(value) for name, value in TEST_DEFAULTS.items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A `runwire` subprocess with its output in `log_path`."""

    def __init__(self, arguments: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.arguments = arguments
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        runwire = str(Path(sys.executable).parent / "runwire")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [runwire, *self.arguments], stdout=log, stderr=log, env={**os.environ, **TEST_ENV, **self.env}
            )

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log_path.read_text()
            if ready():
                return
            time.sleep(0.1)
        raise AssertionError(f"{what} did not happen within {timeout:g} s:\n" + self.log_path.read_text())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def recover(executor_id: str, env: dict[str, str]) -> "subprocess.CompletedProcess[str]":
    """`runwire recover --executor <executor_id>`, run to its end."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "runwire"), "recover", "--executor", executor_id],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


class Server(Process):
    """`runwire serve` on a free port; extra arguments such as `--no-executor` follow."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str], *extra: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        super().__init__(["serve", "--port", str(self.port), "--data-dir", str(data_dir), *extra], log_path, env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/liveness", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def start(self) -> None:
        self.launch()
        self.wait_until(self._answers, "runwire serve answering")


class Worker(Process):
    """`runwire worker` with its RUNWIRE_EXECUTOR_ID."""

    def __init__(self, executor_id: str, log_path: Path, env: dict[str, str]) -> None:
        self.executor_id = executor_id
        super().__init__(["worker"], log_path, {**env, "RUNWIRE_EXECUTOR_ID": executor_id})

    def start(self) -> None:
        started = self.log_path.read_text().count('"worker started"') if self.log_path.exists() else 0
        self.launch()
        self.wait_until(
            lambda: self.log_path.read_text().count('"worker started"') > started, f"worker {self.executor_id} start"
        )


class HitCounter:
    """A real HTTP server that counts the GETs of each path, answering `{"path", "call"}` (the call's number on its
    path, from 1); the first call of a path that `fails_first` picks answers 500."""

    def __init__(self, fails_first: Callable[[str], bool] = lambda path: False) -> None:
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with counter.lock:
                    call = counter.hits[self.path] = counter.hits.get(self.path, 0) + 1
                body = json.dumps({"path": self.path, "call": call}).encode()
                self.send_response(500 if call == 1 and fails_first(self.path) else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


# uvicorn closes a connection idle for 5 s; a request sent on it just then is lost in transit. Tests that wait
# between requests use a fresh connection for each.
NO_KEEPALIVE = httpx.Limits(max_keepalive_connections=0)
# How many requests the concurrency tests send at once.
WRITERS = 24


def signed_in(server: Server) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=10, limits=NO_KEEPALIVE)
    response = client.post(
        "/api/auth/sign-up/email", json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}
    )
    assert response.status_code == 201, response.text
    return client


@contextlib.asynccontextmanager
async def signed_in_async(base_url: str, connections: int = WRITERS) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        response = await client.post(
            "/api/auth/sign-up/email", json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}
        )
        assert response.status_code == 201, response.text
        yield client


def wait_for_status(client: httpx.Client, path: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, Any] = client.get(path).json()["data"]
        if run["status"] in statuses:
            return run
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {statuses}")


# Tools run as the executor runs them, against a real HTTP server on 127.0.0.1

HTML_PAGE = b"""<!doctype html><html><head><title> Test &amp; page </title>
<style>body { color: red }</style><script>var hidden = "script text";</script></head>
<body><h1>Heading</h1><p>First   paragraph with <b>bold</b> words.</p><noscript>no script</noscript>
<ul><li>one</li><li>two</li></ul></body></html>"""
BIG_BODY_BYTES = 2 * 1024 * 1024


def tool(tool_id: str) -> Tool[Any]:
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
    """A tool's context outside any run: it records what the tool reports, logs and streams."""

    template_context: Mapping[str, object] = field(default_factory=dict)
    allowed_hosts: frozenset[str] = frozenset()
    max_response_bytes: int = 1024 * 1024
    run_id: str = "run-1"
    step_id: str = "step-1"
    progress: list[tuple[int, str]] = field(default_factory=list)
    renderer: TemplateRenderer | None = None
    settings: Settings = field(default_factory=Settings)
    logs: list[str] = field(default_factory=list)
    streamed: list[str] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)

    async def report_progress(self, progress: int, message: str) -> None:
        self.progress.append((progress, message))

    async def render_text(self, template: str) -> str:
        assert self.renderer is not None, "this context renders no templates"
        return await self.renderer.render_text(template, dict(self.template_context))

    async def log(self, message: str) -> None:
        self.logs.append(message)

    async def stream_output(self, text: str) -> None:
        self.streamed.append(text)

    async def chat_history(self) -> list[dict[str, str]]:
        return list(self.history)

    def offer_tools(self, tool_ids: Sequence[str]) -> list[ToolOffer]:
        return registry.offers(tool_ids)

    async def call_tool(self, tool_id: str, inputs: dict[str, Any]) -> dict[str, object]:
        raise ToolError("tool_error", "No tool calls another outside a run.")

    async def await_decision(self, prompt: str, timeout_seconds: float | None) -> dict[str, object]:
        raise ToolError("tool_error", "No decision comes outside a run.")


class ToolServerHandler(BaseHTTPRequestHandler):
    """The routes the tool tests fetch; `hits` counts the answers of /count."""

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
def serving(handler: type[BaseHTTPRequestHandler] = ToolServerHandler) -> Iterator[str]:
    """A test server (answering with `handler`) on a port of its own, while the block runs: its base URL,
    http://127.0.0.1:<port>."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
