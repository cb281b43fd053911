"""MCP servers' tools in workflows, against the tests' FastMCP server over stdio and streamable HTTP, on both
databases: listing, save-time checks, results, errors, timeouts and cancellation reaching the server, a server
crashing mid-call, a tool list that changes, a server that is down, and a model calling an MCP tool."""

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fake_model import FakeModel, Text, ToolCalls
from tests.helpers import (
    create_workflow,
    free_port,
    get_run,
    new_chat,
    read_stream,
    sign_up,
    start_run,
    step,
    wait_for,
    wait_for_run,
)
from tests.mcp_servers import HttpMcpServer, marker_says, stdio_server, write_config

pytestmark = pytest.mark.slow  # starts MCP server subprocesses

App = Callable[..., TestClient]


def mcp_app(app_factory: App, tmp_path: Path, servers: dict[str, dict[str, Any]], **settings: Any) -> TestClient:
    config = write_config(tmp_path / "tools.toml", servers)
    client = app_factory(tools_config=config, tools_startup_wait_seconds=15, **settings)
    sign_up(client)
    return client


def tools_by_id(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get("/api/tools")
    assert response.status_code == 200, response.text
    return {tool["id"]: tool for tool in response.json()["data"]["tools"]}


def run_steps(
    client: TestClient, steps: list[dict[str, Any]], run_input: dict[str, Any] | None = None
) -> dict[str, Any]:
    chat = new_chat(client)
    run = start_run(client, chat["id"], create_workflow(client, steps)["id"], run_input)
    return wait_for_run(client, chat["id"], run["id"])


@pytest.fixture
def starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file every start of the test server appends its process id to."""
    path = tmp_path / "starts"
    monkeypatch.setenv("MCP_TEST_STARTS", str(path))
    return path


def pids(starts: Path) -> list[str]:
    return starts.read_text().split() if starts.exists() else []


def test_stdio_tools_are_listed_checked_and_called(
    app_factory: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_SOURCE", "from-the-environment")
    client = mcp_app(app_factory, tmp_path, {"t": stdio_server(env={"MCP_TEST_SECRET": "${SECRET_SOURCE}"})})
    tools = tools_by_id(client)
    add = tools["t.add"]
    assert (add["source"], add["available"], add["name"]) == ("mcp:t", True, "add")
    assert add["description"] == "Adds two integers."
    assert set(add["inputSchema"]["properties"]) == {"a", "b"} and add["inputSchema"]["required"] == ["a", "b"]
    assert "reason" not in add
    assert client.get("/api/tools/t.add").json()["data"] == add
    assert client.get("/api/tools/t.nope").status_code == 404

    # Literal inputs are checked against the server's schema when the workflow is saved.
    refused = client.post(
        "/api/workflows",
        json={"name": "bad", "steps": [step("s", "t.add", {"a": "two"}), step("u", "t.nope", {})]},
    )
    assert refused.status_code == 400, refused.text
    details = {(d["field"], d["message"]) for d in refused.json()["details"]}
    assert ("steps[0].inputs.a", "'two' is not of type 'integer'") in details
    assert ("steps[0].inputs", "'b' is a required property") in details
    assert any(field == "steps[1].toolId" and "offers no tool 'nope'" in message for field, message in details)

    run = run_steps(
        client,
        [
            step("sum", "t.add", {"a": 2, "b": "{{ input.b }}"}),
            step("say", "t.echo", {"text": "sum {{ steps.sum.output.sum }}", "times": 2}, dependsOn=["sum"]),
            step("who", "t.whoami", {}),
        ],
        {"b": 3},
    )
    assert run["status"] == "completed", run
    outputs = {s["id"]: s["output"] for s in run["steps"]}
    assert outputs["sum"] == {"sum": 5}  # structuredContent
    assert outputs["say"] == {"text": "sum 5\nsum 5"}  # text content, joined
    assert outputs["who"]["secret"] == "from-the-environment"  # ${VAR} in the config
    assert outputs["who"]["runwire"] == []  # Runwire's own settings stay with Runwire

    failed = run_steps(client, [step("f", "t.fail", {"message": "boom"})])
    assert failed["status"] == "failed"
    assert failed["steps"][0]["error"]["code"] == "tool_error"
    assert "boom" in failed["steps"][0]["error"]["message"]

    invalid = run_steps(client, [step("s", "t.add", {"a": "{{ input.a }}", "b": 1})], {"a": "x"})
    assert invalid["steps"][0]["error"] == {
        "code": "invalid_inputs",
        "message": "inputs.a: 'x' is not of type 'integer'",
    }

    too_big = run_steps(client, [step("s", "t.big", {"size": 2_000_000})])
    assert too_big["steps"][0]["error"]["code"] == "output_too_large"


def test_a_servers_progress_is_the_steps_progress(app_factory: App, tmp_path: Path) -> None:
    client = mcp_app(app_factory, tmp_path, {"t": stdio_server()})
    run = run_steps(client, [step("c", "t.count", {"n": 4})])
    assert run["steps"][0]["output"] == {"counted": 4}
    progress = [e["data"] for e in read_stream(client, run["chatId"], run["id"]) if e["event"] == "step_progress"]
    # The notifications in the order they came: the first kept, a later one dropped when it came within the step's
    # progress interval of the one before (on a loaded machine two can arrive together), and the last maybe after
    # the step's end, and then not kept.
    assert progress[0] == {"stepId": "c", "progress": 25, "message": "counted 1 of 4"}, progress
    values = [p["progress"] for p in progress]
    assert values == sorted(set(values)) and set(values) <= {25, 50, 75, 100}, progress
    assert all(p["message"] == f"counted {p['progress'] // 25} of 4" for p in progress), progress


def test_timeouts_and_cancellation_reach_the_server(app_factory: App, tmp_path: Path) -> None:
    client = mcp_app(app_factory, tmp_path, {"t": stdio_server()})
    timed_out = tmp_path / "timed-out"
    run = run_steps(client, [step("s", "t.slow", {"seconds": 30, "marker": str(timed_out)}, timeoutSeconds=2)])
    assert run["steps"][0]["error"]["code"] == "timeout"
    marker_says(timed_out, "cancelled")

    cancelled = tmp_path / "cancelled"
    chat = new_chat(client)
    flow = create_workflow(client, [step("s", "t.slow", {"seconds": 30, "marker": str(cancelled)})])
    started = start_run(client, chat["id"], flow["id"])
    marker_says(cancelled, "started", timeout=30)  # the server runs the tool
    assert client.post(f"/api/chats/{chat['id']}/workflow-runs/{started['id']}/cancel").status_code == 202
    assert wait_for_run(client, chat["id"], started["id"])["status"] == "cancelled"
    marker_says(cancelled, "cancelled")


def test_a_server_that_crashes_mid_call_is_restarted(app_factory: App, tmp_path: Path, starts: Path) -> None:
    client = mcp_app(app_factory, tmp_path, {"t": stdio_server()})
    crashed = run_steps(client, [step("c", "t.crash", {})])
    error = crashed["steps"][0]["error"]
    assert error["code"] == "tool_unavailable" and "closed its connection during the call" in error["message"]
    # The next call finds the server started again.
    assert run_steps(client, [step("s", "t.add", {"a": 1, "b": 1})])["steps"][0]["output"] == {"sum": 2}
    assert len(pids(starts)) == 2

    # With retries, the step runs again once the server is back.
    again = run_steps(client, [step("c", "t.crash_once", {"marker": str(tmp_path / "once")}, retries=1)])
    assert again["status"] == "completed", again
    assert again["steps"][0]["output"] == {"survived": True}
    assert len(pids(starts)) == 3


def test_a_changed_tool_list_is_seen(app_factory: App, tmp_path: Path) -> None:
    # `python`, as a user writes it: the Python of Runwire's virtual environment comes first on the server's PATH.
    client = mcp_app(app_factory, tmp_path, {"t": stdio_server(command="python")})
    assert "t.fresh" not in tools_by_id(client)
    assert run_steps(client, [step("g", "t.grow", {"name": "fresh"})])["status"] == "completed"
    fresh = wait_for(lambda: tools_by_id(client).get("t.fresh"), timeout=5)
    assert (fresh["source"], fresh["available"], fresh["description"]) == ("mcp:t", True, "Answers fresh.")
    assert run_steps(client, [step("f", "t.fresh", {})])["steps"][0]["output"] == {"name": "fresh"}


def test_a_down_server_blocks_nothing(app_factory: App, tmp_path: Path) -> None:
    began = time.monotonic()
    down_url = f"http://127.0.0.1:{free_port()}/mcp"
    client = mcp_app(app_factory, tmp_path, {"down": {"url": down_url}, "t": stdio_server()})
    assert time.monotonic() - began < 10
    tools = tools_by_id(client)
    assert tools["t.add"]["available"] is True and tools["delay"]["available"] is True
    assert not [tool_id for tool_id in tools if tool_id.startswith("down.")]
    # A workflow may name the down server's tools (they are checked once it is up); their steps fail.
    run = run_steps(client, [step("d", "down.forecast", {"city": "Paris"})])
    assert run["status"] == "failed"
    error = run["steps"][0]["error"]
    assert error["code"] == "tool_unavailable" and "The MCP server 'down' is down" in error["message"], error
    assert run_steps(client, [step("s", "t.add", {"a": 1, "b": 2})])["status"] == "completed"


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpMcpServer]:
    with HttpMcpServer(tmp_path / "http-mcp.log") as server:
        yield server


def test_a_streamable_http_server(app_factory: App, tmp_path: Path, http_server: HttpMcpServer) -> None:
    client = mcp_app(app_factory, tmp_path, {"web": {"url": http_server.url, "headers": {"X-Test": "1"}}})
    assert tools_by_id(client)["web.add"]["source"] == "mcp:web"
    assert run_steps(client, [step("s", "web.add", {"a": 20, "b": 22})])["steps"][0]["output"] == {"sum": 42}
    marker = tmp_path / "http-cancelled"
    run = run_steps(client, [step("s", "web.slow", {"seconds": 30, "marker": str(marker)}, timeoutSeconds=2)])
    assert run["steps"][0]["error"]["code"] == "timeout"
    marker_says(marker, "cancelled")

    http_server.stop()
    failed = run_steps(client, [step("s", "web.add", {"a": 1, "b": 1})])
    assert failed["steps"][0]["error"]["code"] == "tool_unavailable"
    # Once the attempt to connect again (made at once) has failed too, the tools are unavailable.
    gone = wait_for(lambda: (tool := tools_by_id(client)["web.add"])["available"] is False and tool, timeout=5)
    assert gone["reason"].startswith("The MCP server 'web' is down: "), gone

    http_server.start()
    wait_for(lambda: tools_by_id(client)["web.add"]["available"], timeout=40)
    assert run_steps(client, [step("s", "web.add", {"a": 1, "b": 1})])["steps"][0]["output"] == {"sum": 2}


def test_a_model_calls_an_mcp_tool(app_factory: App, tmp_path: Path) -> None:
    model = FakeModel()
    try:
        client = mcp_app(
            app_factory, tmp_path, {"t": stdio_server()}, llm_base_url=model.base_url, llm_model="fake-model"
        )
        model.script(ToolCalls([("t_add", {"a": 4, "b": 5})]), Text(["nine"]))
        run = run_steps(client, [step("ask", "llm", {"prompt": "4+5?", "tools": ["t.add"]})])
        assert run["status"] == "completed", run
        output = run["steps"][0]["output"]
        assert output["text"] == "nine"
        assert output["toolCalls"] == [{"toolId": "t.add", "inputs": {"a": 4, "b": 5}, "output": {"sum": 9}}]
        offered = model.requests[0]["tools"][0]["function"]
        assert offered["name"] == "t_add" and set(offered["parameters"]["properties"]) == {"a", "b"}
        assert model.requests[1]["messages"][-1]["content"] == '{"sum": 9}'
    finally:
        model.close()


def test_get_run_detail_shows_mcp_inputs(app_factory: App, tmp_path: Path) -> None:
    client = mcp_app(app_factory, tmp_path, {"t": stdio_server()})
    run = run_steps(client, [step("s", "t.add", {"a": "{{ input.a }}", "b": 1})], {"a": 41})
    detail = get_run(client, run["chatId"], run["id"])
    assert detail["steps"][0]["inputs"] == {"a": 41, "b": 1}
    assert detail["steps"][0]["toolId"] == "t.add"
