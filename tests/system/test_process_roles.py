"""Process roles on one PostgreSQL database: an API-only `runwire serve --no-executor`, `runwire worker`s, and
`runwire recover` handing a dead worker's runs to a live one."""

import select
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import HitCounter, Server, Worker, recover, signed_in, wait_for_status

pytestmark = pytest.mark.slow  # starts `runwire` subprocesses


class HoldingServer:
    """Answers nothing: holds each request's connection and records when the client hangs up."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.hung_up = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.arrived.set()
                readable, _, _ = select.select([self.connection], [], [], 60)
                if readable and not self.connection.recv(1):
                    server.hung_up.set()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hold"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def holding_server() -> Iterator[HoldingServer]:
    server = HoldingServer()
    yield server
    server.httpd.shutdown()


def executed_by(postgres_url: str, run_id: str) -> str:
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute(
            "SELECT executor_id FROM dbos.workflow_status WHERE workflow_uuid = %s", (run_id,)
        ).fetchone()
    assert row is not None, f"no durable workflow for run {run_id}"
    return str(row[0])


def start_run(client: httpx.Client, steps: list[dict[str, Any]]) -> tuple[str, str]:
    chat = client.post("/api/chats", json={"title": "roles"}).json()["data"]
    workflow = client.post("/api/workflows", json={"name": "roles", "steps": steps}).json()["data"]
    created = client.post(f"/api/chats/{chat['id']}/workflow-runs", json={"workflowId": workflow["id"]})
    assert created.status_code == 202, created.text
    return chat["id"], created.json()["data"]["id"]


def test_an_api_only_process_queues_runs_that_a_worker_executes_and_streams_them_live(
    api_only: Server, workers: dict[str, Worker], postgres_url: str
) -> None:
    api_only.start()
    workers["w1"].start()
    client = signed_in(api_only)
    steps = [
        {"id": "wait", "toolId": "delay", "inputs": {"seconds": 0.5}},
        {"id": "greet", "toolId": "template", "dependsOn": ["wait"], "inputs": {"template": "done"}},
    ]
    chat_id, run_id = start_run(client, steps)

    with client.stream("GET", f"/api/chats/{chat_id}/workflow-runs/{run_id}/stream", timeout=30) as stream:
        types = [line.removeprefix("event: ") for line in stream.iter_lines() if line.startswith("event: ")]

    assert types[0] == "run_started" and types[-1] == "run_completed"
    assert types.count("step_completed") == 2
    run = client.get(f"/api/chats/{chat_id}/workflow-runs/{run_id}").json()["data"]
    assert run["status"] == "completed"
    assert executed_by(postgres_url, run_id) == "w1"
    assert '"worker started"' not in api_only.log_path.read_text()


def test_a_cancel_received_by_the_api_process_stops_the_tool_call_in_the_worker(
    api_only: Server, workers: dict[str, Worker], holding_server: HoldingServer
) -> None:
    api_only.start()
    workers["w1"].start()
    client = signed_in(api_only)
    steps = [{"id": "hold", "toolId": "http_request", "inputs": {"method": "GET", "url": holding_server.url}}]
    chat_id, run_id = start_run(client, steps)
    assert holding_server.arrived.wait(30), "the worker never called the tool"

    cancelled = client.post(f"/api/chats/{chat_id}/workflow-runs/{run_id}/cancel")

    assert cancelled.status_code == 202, cancelled.text
    assert holding_server.hung_up.wait(10), "the worker's tool call went on after the cancel"
    run = client.get(f"/api/chats/{chat_id}/workflow-runs/{run_id}").json()["data"]
    assert run["status"] == "cancelled"
    assert [step["status"] for step in run["steps"]] == ["cancelled"]


def test_recover_hands_a_dead_workers_runs_to_a_live_worker(
    api_only: Server, workers: dict[str, Worker], hit_counter: HitCounter, cluster_env: dict[str, str]
) -> None:
    api_only.start()
    workers["w1"].start()
    client = signed_in(api_only)
    steps = [
        {"id": "fetch", "toolId": "http_request", "inputs": {"method": "GET", "url": f"{hit_counter.url}/fetch"}},
        {"id": "wait", "toolId": "delay", "dependsOn": ["fetch"], "inputs": {"seconds": 2}},
    ]
    chat_id, run_id = start_run(client, steps)
    run_path = f"/api/chats/{chat_id}/workflow-runs/{run_id}"
    workers["w1"].wait_until(
        lambda: client.get(run_path).json()["data"]["steps"][1]["status"] == "running", "the delay step starting"
    )
    workers["w1"].kill()
    workers["w2"].start()
    time.sleep(3)  # long enough for w2 to have finished the run, had it been handed over
    assert client.get(run_path).json()["data"]["status"] == "running"

    recovered = recover("w1", cluster_env)

    assert recovered.returncode == 0, recovered.stderr
    assert run_id in recovered.stdout.split()
    run = wait_for_status(client, run_path, {"completed", "failed", "cancelled"})
    assert run["status"] == "completed"
    assert hit_counter.hits["/fetch"] == 1
    assert run["steps"][0]["completedAt"] <= run["steps"][1]["startedAt"]
