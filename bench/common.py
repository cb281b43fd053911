"""What the benchmarks share: a real `runwire serve` subprocess, an API client, and a Server-Sent Events reader."""

import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

STARTUP_SECONDS = 30.0
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STOP_SECONDS = 15.0
# How much of a server's log a failed benchmark prints.
LOG_TAIL_CHARS = 20_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's soft open-file limit towards `wanted` (children inherit it); return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_timestamp(value: str) -> float:
    """An API timestamp (`2024-02-04T12:00:00.000Z`) as epoch seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@contextlib.contextmanager
def postgres_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database's URL, dropped afterwards; None when no PostgreSQL answers."""
    name = f"runwire_bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        yield None
        return
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# A benchmark is one user starting runs and writing as fast as the server takes them: per-user limits would
# measure the limiter.
UNLIMITED_USER_ENV = {"RUNWIRE_RATE_LIMIT_STARTS_PER_MINUTE": "0", "RUNWIRE_RATE_LIMIT_WRITES_PER_MINUTE": "0"}


class Server:
    """`runwire serve` from this venv on a free 127.0.0.1 port, with its output in `log_path`."""

    def __init__(
        self, data_dir: Path, log_path: Path, env: dict[str, str] | None = None, cpus: set[int] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = env or {}
        self.cpus = cpus  # the CPUs the process may run on (all when None)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the server is not started")
        return self.process.pid

    def command(self) -> list[str]:
        runwire = str(Path(sys.executable).parent / "runwire")
        return [runwire, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]

    def start(self) -> None:
        command = self.command()
        if self.cpus is not None:
            command = ["taskset", "--cpu-list", ",".join(map(str, sorted(self.cpus))), *command]
        # Inherited RUNWIRE_* settings (a PostgreSQL URL, say) would change what is measured: only ours apply.
        env = {key: value for key, value in os.environ.items() if not key.startswith("RUNWIRE_")}
        env |= UNLIMITED_USER_ENV | self.env
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"runwire serve exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.url}/api/liveness", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"runwire serve did not come up within {STARTUP_SECONDS:g} s:\n{self.log_text()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def rss_kb(self) -> int:
        """The server's resident set size (VmRSS) in KB, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        """Stop the server; when the block failed, print the end of its log first (it goes with its directory)."""
        if error_type is not None:
            print(f"--- the end of {self.log_path} ---\n{self.log_text()[-LOG_TAIL_CHARS:]}", file=sys.stderr)
        self.stop()


@dataclass(frozen=True)
class SseEvent:
    id: str
    type: str
    data: Any
    arrived: float  # time.time() at the client when the event's closing blank line was read


class Api:
    """The public API as one signed-up user; every request goes to 127.0.0.1."""

    def __init__(self, base_url: str, max_connections: int) -> None:
        # No keep-alive: uvicorn closes idle connections after 5 s, and a request sent on one just as it closes
        # fails with "Server disconnected without sending a response".
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=0)
        self.client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(30.0))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _call(self, method: str, path: str, expected: int, body: dict[str, Any] | None = None) -> Any:
        response = await self.client.request(method, path, json=body)
        if response.status_code != expected:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()["data"]

    async def sign_up(self) -> None:
        email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
        body = {"email": email, "password": "bench password 123", "name": "Bench"}
        await self._call("POST", "/api/auth/sign-up/email", 201, body)
        if "runwire_session" not in self.client.cookies:
            raise RuntimeError("sign-up set no runwire_session cookie")

    async def create_chat(self, title: str) -> str:
        chat: dict[str, Any] = await self._call("POST", "/api/chats", 201, {"title": title})
        return str(chat["id"])

    async def create_chats(self, count: int, title: str) -> list[str]:
        return list(await asyncio.gather(*(self.create_chat(f"{title} {i}") for i in range(count))))

    async def create_workflow(self, name: str, steps: list[dict[str, Any]]) -> str:
        workflow: dict[str, Any] = await self._call("POST", "/api/workflows", 201, {"name": name, "steps": steps})
        return str(workflow["id"])

    async def start_run(self, chat_id: str, workflow_id: str) -> str:
        run: dict[str, Any] = await self._call(
            "POST", f"/api/chats/{chat_id}/workflow-runs", 202, {"workflowId": workflow_id}
        )
        return str(run["id"])

    @property
    def session_cookie(self) -> str:
        """`runwire_session=<token>`, for a load generator that sends the request as this user."""
        return f"runwire_session={self.client.cookies['runwire_session']}"

    async def list_runs(self, chat_id: str) -> list[dict[str, Any]]:
        data: dict[str, Any] = await self._call("GET", f"/api/chats/{chat_id}/workflow-runs", 200)
        runs: list[dict[str, Any]] = data["workflowRuns"]
        return runs

    async def get_run(self, chat_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = await self._call("GET", f"/api/chats/{chat_id}/workflow-runs/{run_id}", 200)
        return run

    async def cancel_run(self, chat_id: str, run_id: str) -> None:
        await self._call("POST", f"/api/chats/{chat_id}/workflow-runs/{run_id}/cancel", 202)

    async def stream(self, chat_id: str, run_id: str, read_timeout: float) -> AsyncIterator[SseEvent]:
        """The run's events as they arrive; ends when the server closes the stream."""
        async for event in self.events(f"/api/chats/{chat_id}/workflow-runs/{run_id}/stream", read_timeout):
            yield event

    async def events(self, path: str, read_timeout: float) -> AsyncIterator[SseEvent]:
        """A Server-Sent Events stream's events as they arrive; ends when the server closes the stream."""
        timeout = httpx.Timeout(30.0, read=read_timeout)
        headers = {"Accept": "text/event-stream"}
        async with contextlib.AsyncExitStack() as stack:
            response = await stack.enter_async_context(
                self.client.stream("GET", path, headers=headers, timeout=timeout)
            )
            if response.status_code != 200:
                await response.aread()
                raise RuntimeError(f"stream {path}: {response.status_code} {response.text[:500]}")
            fields: dict[str, str] = {}
            async for line in response.aiter_lines():
                if line:
                    if not line.startswith(":"):  # ":" starts a comment (the server's pings)
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                    continue
                arrived = time.time()
                if "event" in fields:
                    yield SseEvent(
                        fields.get("id", ""), fields["event"], json.loads(fields.get("data") or "null"), arrived
                    )
                fields = {}


class HangingHttpServer:
    """A 127.0.0.1 TCP server that accepts HTTP requests and never answers: an `http_request` step on it stays
    running without emitting events, so a stream on its run is truly idle (the `delay` tool reports progress
    every second)."""

    def __init__(self) -> None:
        self.accepted = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the hanging server is not started")
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hang"

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        try:
            await reader.read()  # until the client goes away, or close() closes the connection
        finally:
            self._writers.discard(writer)
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for _ in range(100):  # let the handlers see their connections close and end
            if not self._writers:
                break
            await asyncio.sleep(0.01)
