"""MCP servers and plugins in real `runwire` processes: a malformed RUNWIRE_TOOLS_CONFIG stops `serve` and `worker`
at start, `runwire tools list` and `runwire tools refresh`, and two workers on PostgreSQL each with its own sessions."""

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import Server, Worker, free_port, signed_in, wait_for, wait_for_status
from tests.mcp_servers import HttpMcpServer, marker_says, stdio_server, write_config
from tests.plugins import installed_test_plugins

pytestmark = pytest.mark.slow  # starts `runwire` and MCP server subprocesses

RUNWIRE = str(Path(sys.executable).parent / "runwire")


@pytest.fixture(scope="module", autouse=True)
def test_plugins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with installed_test_plugins(tmp_path_factory.mktemp("plugins")):
        yield


def runwire(*arguments: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNWIRE, *arguments], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )


def run_steps(client: httpx.Client, steps: list[dict[str, Any]]) -> dict[str, Any]:
    chat = client.post("/api/chats", json={"title": "mcp"}).json()["data"]
    workflow = client.post("/api/workflows", json={"name": "mcp", "steps": steps})
    assert workflow.status_code == 201, workflow.text
    created = client.post(f"/api/chats/{chat['id']}/workflow-runs", json={"workflowId": workflow.json()["data"]["id"]})
    assert created.status_code == 202, created.text
    path = f"/api/chats/{chat['id']}/workflow-runs/{created.json()['data']['id']}"
    return wait_for_status(client, path, {"completed", "failed", "cancelled"})


def tool_ids(client: httpx.Client) -> set[str]:
    return {tool["id"] for tool in client.get("/api/tools").json()["data"]["tools"]}


def test_a_malformed_config_stops_serve_and_worker_at_start(tmp_path: Path) -> None:
    config = tmp_path / "tools.toml"
    config.write_text('[mcp.weather]\ncommand = "python"\ntimeout = 3\n')
    env = {"RUNWIRE_TOOLS_CONFIG": str(config)}
    port = free_port()
    for arguments in (["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")], ["worker"]):
        began = time.monotonic()
        done = runwire(*arguments, env=env, timeout=30)
        assert done.returncode == 2, done.stderr
        assert f"RUNWIRE_TOOLS_CONFIG {config}: line 3: [mcp.weather]: unknown key 'timeout'" in done.stderr
        assert time.monotonic() - began < 15
    assert not (tmp_path / "data").exists()  # nothing was started


def test_tools_list_prints_every_tool_with_its_source_and_availability(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/mcp"
    config = write_config(tmp_path / "tools.toml", {"t": stdio_server(), "down": {"url": down}})
    done = runwire("tools", "list", "--data-dir", str(tmp_path), env={"RUNWIRE_TOOLS_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split(maxsplit=2)[1:] for line in done.stdout.splitlines() if line}
    assert rows["delay"] == ["builtin", "available"]
    assert rows["llm"][1].startswith("unavailable: No model is configured")
    assert rows["shout"] == ["plugin:runwire-test-plugins", "available"]
    assert rows["t.add"] == ["mcp:t", "available"]
    # Down, or (on a loaded machine, once its first attempt failed) starting again: either way with why it is down.
    assert rows["down.*"][0] == "mcp:down", rows
    assert re.match(r"unavailable \((down|starting)\): The MCP server 'down' is down: ", rows["down.*"][1]), rows
    assert "plugin 'not_a_tool' of runwire-test-plugins skipped: " in done.stdout


def test_tools_refresh_reaches_a_running_server(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tools.toml", {"t": stdio_server()})
    env = {"RUNWIRE_TOOLS_CONFIG": str(config)}
    server = Server(tmp_path / "data", tmp_path / "server.log", env)
    server.start()
    try:
        client = signed_in(server)
        assert "t.add" in tool_ids(client)
        # The server's tool list grows without a list-changed notification: Runwire does not know yet.
        assert run_steps(client, [{"id": "g", "toolId": "t.grow_quietly", "inputs": {"name": "late"}}])["status"] == (
            "completed"
        )
        assert "t.late" not in tool_ids(client)
        done = runwire("tools", "refresh", "--data-dir", str(server.data_dir), "--wait", "5", env=env)
        assert done.returncode == 0, done.stderr
        assert "asked the running Runwire processes" in done.stdout
        wait_for(lambda: "t.late" in tool_ids(client), timeout=10)
    finally:
        server.stop()


@pytest.fixture
def http_mcp(tmp_path: Path) -> Iterator[HttpMcpServer]:
    with HttpMcpServer(tmp_path / "http-mcp.log") as server:
        yield server


def test_two_workers_on_postgresql_each_keep_their_own_sessions(
    tmp_path: Path, postgres_url: str, http_mcp: HttpMcpServer
) -> None:
    starts = tmp_path / "starts"
    config = write_config(tmp_path / "tools.toml", {"t": stdio_server(), "web": {"url": http_mcp.url}})
    env = {
        "RUNWIRE_DATABASE_URL": postgres_url,
        "RUNWIRE_TOOLS_CONFIG": str(config),
        "MCP_TEST_STARTS": str(starts),
    }
    api = Server(tmp_path / "api", tmp_path / "api.log", env, "--no-executor")
    workers = [Worker(name, tmp_path / f"{name}.log", env) for name in ("w1", "w2")]
    try:
        api.start()
        for worker in workers:
            worker.start()
        client = signed_in(api)
        steps = [
            {"id": "who", "toolId": "t.whoami", "inputs": {}},
            {"id": "sum", "toolId": "web.add", "inputs": {"a": 1, "b": 2}},
            {
                "id": "loud",
                "toolId": "shout",
                "inputs": {"text": "pid {{ steps.who.output.pid }}"},
                "dependsOn": ["who"],
            },
        ]
        runs = [run_steps(client, steps) for _ in range(3)]
        assert all(run["status"] == "completed" for run in runs), runs
        # The API process and each worker started a stdio server of their own.
        assert len(set(starts.read_text().split())) == 3

        marker = tmp_path / "cancelled"
        chat = client.post("/api/chats", json={"title": "cancel"}).json()["data"]
        slow = [{"id": "s", "toolId": "t.slow", "inputs": {"seconds": 60, "marker": str(marker)}}]
        workflow = client.post("/api/workflows", json={"name": "slow", "steps": slow}).json()["data"]
        run = client.post(f"/api/chats/{chat['id']}/workflow-runs", json={"workflowId": workflow["id"]}).json()["data"]
        path = f"/api/chats/{chat['id']}/workflow-runs/{run['id']}"
        marker_says(marker, "started", timeout=30)  # the server runs the tool
        assert client.post(f"{path}/cancel").status_code == 202
        assert wait_for_status(client, path, {"cancelled"})["status"] == "cancelled"
        marker_says(marker, "cancelled")

        # A tool list changed behind every process's back shows everywhere after `runwire tools refresh` (NOTIFY).
        assert run_steps(client, [{"id": "g", "toolId": "web.grow_quietly", "inputs": {"name": "late"}}])["status"] == (
            "completed"
        )
        assert "web.late" not in tool_ids(client)
        done = runwire("tools", "refresh", "--data-dir", str(tmp_path / "elsewhere"), "--wait", "5", env=env)
        assert done.returncode == 0, done.stderr
        wait_for(lambda: "web.late" in tool_ids(client), timeout=10)
        assert run_steps(client, [{"id": "l", "toolId": "web.late", "inputs": {}}])["steps"][0]["output"] == {
            "name": "late"
        }
    finally:
        for process in (*workers, api):
            process.stop()
