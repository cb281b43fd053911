"""Real `runwire serve` processes on free ports, and a real HTTP server that counts hits."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GENEROUS_RATE_LIMITS

RATE_LIMIT_ENV = {f"RUNWIRE_{name.upper()}": str(value) for name, value in GENEROUS_RATE_LIMITS.items()}


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
                [runwire, *self.arguments], stdout=log, stderr=log, env={**os.environ, **RATE_LIMIT_ENV, **self.env}
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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    instance = Server(tmp_path / "data", tmp_path / "server.log", {"RUNWIRE_TOOL_ALLOWED_HOSTS": "127.0.0.1"})
    yield instance
    instance.stop()


class HitCounter:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with counter.lock:
                    counter.hits[self.path] = counter.hits.get(self.path, 0) + 1
                body = json.dumps({"path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def hit_counter() -> Iterator[HitCounter]:
    counter = HitCounter()
    yield counter
    counter.httpd.shutdown()
