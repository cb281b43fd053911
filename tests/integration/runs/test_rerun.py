"""Re-run (`POST .../workflow-runs/:id/rerun`), on both backends: a new run of the source's workflow version with its
input and `rerunOf`; with fromFailed, the steps the source completed are reused (their outputs byte for byte, their
tools not called again: a counting HTTP server shows it) and only the rest run. 409 while the source has not ended,
and for fromFailed on a run that completed."""

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import (
    create_workflow,
    get_run,
    new_chat,
    read_stream,
    serving,
    sign_up,
    start_run,
    step,
    wait_for_first_step,
    wait_for_run,
)


def rerun(client: TestClient, chat_id: str, run_id: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"/api/chats/{chat_id}/workflow-runs/{run_id}/rerun", json=body)


def rerun_started(client: TestClient, chat_id: str, run_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = rerun(client, chat_id, run_id, body)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()["data"]
    return run


def listed_runs(client: TestClient, chat_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = client.get(f"/api/chats/{chat_id}/workflow-runs").json()["data"]["workflowRuns"]
    return runs


def test_rerun_of_a_completed_run_runs_it_again(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "template", {"template": "hello {{ input.name }}"})])
    source = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"], {"name": "Ada"})["id"])
    assert source["status"] == "completed" and source["rerunOf"] is None
    new = rerun_started(client, chat["id"], source["id"])
    assert new["id"] != source["id"] and new["rerunOf"] == source["id"] and new["status"] == "pending"
    assert (new["workflowId"], new["workflowVersion"]) == (workflow["id"], 1)
    assert [(s["id"], s["status"], s["reusedFrom"]) for s in new["steps"]] == [("a", "pending", None)]
    done = wait_for_run(client, chat["id"], new["id"])
    assert done["status"] == "completed" and done["input"] == {"name": "Ada"}
    assert done["steps"][0]["output"] == {"text": "hello Ada"} and done["steps"][0]["attempts"] == 1
    assert [(r["id"], r["rerunOf"]) for r in listed_runs(client, chat["id"])] == [
        (source["id"], None),
        (new["id"], source["id"]),
    ]
    # An empty body is a whole re-run too.
    assert client.post(f"/api/chats/{chat['id']}/workflow-runs/{source['id']}/rerun").status_code == 202


def test_rerun_is_pinned_to_the_source_version_after_an_edit_and_a_delete(
    client: TestClient, user: dict[str, Any]
) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "template", {"template": "v1"})])
    source = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    edited = client.patch(
        f"/api/workflows/{workflow['id']}", json={"steps": [step("b", "template", {"template": "v2"})]}
    )
    assert edited.status_code == 200 and edited.json()["data"]["version"] == 2
    after_edit = wait_for_run(client, chat["id"], rerun_started(client, chat["id"], source["id"])["id"])
    assert after_edit["workflowVersion"] == 1 and after_edit["status"] == "completed"
    assert [(s["id"], s["output"]) for s in after_edit["steps"]] == [("a", {"text": "v1"})]
    assert client.delete(f"/api/workflows/{workflow['id']}").status_code == 204
    after_delete = wait_for_run(client, chat["id"], rerun_started(client, chat["id"], source["id"])["id"])
    assert after_delete["workflowVersion"] == 1 and after_delete["status"] == "completed"
    assert [(s["id"], s["output"]) for s in after_delete["steps"]] == [("a", {"text": "v1"})]


def test_rerun_is_refused_while_the_source_has_not_ended(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "delay", {"seconds": 30})])
    source = start_run(client, chat["id"], workflow["id"])
    for body in (None, {"fromFailed": True}, {"fromFailed": False}):
        refused = rerun(client, chat["id"], source["id"], body)
        assert refused.status_code == 409 and refused.json()["error"] == "Conflict", refused.text
    wait_for_first_step(client, chat["id"], source["id"])
    assert rerun(client, chat["id"], source["id"]).status_code == 409
    assert [r["id"] for r in listed_runs(client, chat["id"])] == [source["id"]]
    assert client.post(f"/api/chats/{chat['id']}/workflow-runs/{source['id']}/cancel").status_code == 202
    cancelled = wait_for_run(client, chat["id"], source["id"])
    assert cancelled["status"] == "cancelled"
    # A cancelled run re-runs from its failed step: nothing had completed, so everything runs again.
    new = rerun_started(client, chat["id"], source["id"], {"fromFailed": True})
    assert new["rerunOf"] == source["id"] and [s["reusedFrom"] for s in new["steps"]] == [None]
    assert client.post(f"/api/chats/{chat['id']}/workflow-runs/{new['id']}/cancel").status_code == 202


def test_from_failed_is_refused_for_a_completed_run(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "template", {"template": "x"})])
    source = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    refused = rerun(client, chat["id"], source["id"], {"fromFailed": True})
    assert refused.status_code == 409 and "failed or cancelled" in refused.json()["message"]
    assert [r["id"] for r in listed_runs(client, chat["id"])] == [source["id"]]


def test_from_failed_reuses_steps_of_a_run_that_failed_at_its_first_step(
    client: TestClient, user: dict[str, Any]
) -> None:
    chat = new_chat(client)
    workflow = create_workflow(
        client,
        [
            step("ok", "template", {"template": "fine"}),
            step("bad", "json_extract", {"data": {}, "expression": "[[["}, dependsOn=["ok"]),
        ],
    )
    source = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    assert [s["status"] for s in source["steps"]] == ["completed", "failed"]
    new = rerun_started(client, chat["id"], source["id"], {"fromFailed": True})
    assert [(s["id"], s["status"], s["reusedFrom"]) for s in new["steps"]] == [
        ("ok", "completed", source["id"]),
        ("bad", "pending", None),
    ]
    done = wait_for_run(client, chat["id"], new["id"])
    assert done["status"] == "failed" and done["steps"][1]["error"]["code"] == "invalid_expression"
    assert done["steps"][0]["output"] == source["steps"][0]["output"] and done["steps"][0]["attempts"] == 0


def test_rerun_errors_come_in_the_contracts_order(client: TestClient, user: dict[str, Any]) -> None:
    chat, other_chat = new_chat(client), new_chat(client, "other")
    workflow = create_workflow(client, [step("a", "template", {"template": "x"})])
    source = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    assert rerun(client, chat["id"], "not-a-uuid").status_code == 400
    assert rerun(client, chat["id"], source["id"], {"fromFailed": "yes"}).status_code == 400
    assert rerun(client, chat["id"], source["id"], {"from": True}).status_code == 400
    assert rerun(client, str(uuid.uuid4()), source["id"], {"fromFailed": "yes"}).status_code == 400
    assert rerun(client, chat["id"], str(uuid.uuid4())).status_code == 404
    assert rerun(client, other_chat["id"], source["id"]).status_code == 404
    assert rerun(client, str(uuid.uuid4()), source["id"]).status_code == 404
    other = TestClient(client.app, raise_server_exceptions=False)
    other.portal = client.portal
    sign_up(other, "bob@example.com", "Bob")
    assert rerun(other, chat["id"], source["id"]).status_code == 403
    assert rerun(other, chat["id"], str(uuid.uuid4())).status_code == 403
    other.cookies.clear()
    assert rerun(other, chat["id"], "not-a-uuid", {"fromFailed": "yes"}).status_code == 401
    assert [r["id"] for r in listed_runs(client, chat["id"])] == [source["id"]]


class CountingHandler(BaseHTTPRequestHandler):
    """Counts the calls of each path. The first call of /slow (whatever its query) answers after 3 s, so that a step
    with a 1 s timeout fails; every other call answers at once."""

    hits: dict[str, int] = {}
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.lock:
            count = self.hits[self.path] = self.hits.get(self.path, 0) + 1
            slow_calls = sum(n for path, n in self.hits.items() if path.startswith("/slow"))
        if self.path.startswith("/slow") and slow_calls == 1:
            time.sleep(3)
        body = json.dumps({"path": self.path, "call": count, "at": time.time()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def counting_server() -> Iterator[str]:
    """The counting server's address, host:port."""
    CountingHandler.hits = {}
    with serving(CountingHandler) as url:
        yield url.removeprefix("http://")


def test_from_failed_reuses_completed_steps_byte_for_byte_without_calling_their_tools(
    app_factory: Callable[..., TestClient], counting_server: str
) -> None:
    client = app_factory(tool_allowed_hosts=[counting_server])
    sign_up(client)
    chat = new_chat(client)
    base = f"http://{counting_server}"
    workflow = create_workflow(
        client,
        [
            step("first", "http_request", {"method": "GET", "url": f"{base}/first"}),
            step("second", "http_request", {"method": "GET", "url": f"{base}/second"}, dependsOn=["first"]),
            step(
                "slow",
                "http_request",
                {"method": "GET", "url": f"{base}/slow?after={{{{ steps.second.output.body.call }}}}"},
                dependsOn=["second"],
                timeoutSeconds=1,
            ),
        ],
    )
    source = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"], {"k": [1, "x"]})["id"])
    assert source["status"] == "failed", source
    assert [s["status"] for s in source["steps"]] == ["completed", "completed", "failed"]
    assert CountingHandler.hits == {"/first": 1, "/second": 1, "/slow?after=1": 1}

    new = rerun_started(client, chat["id"], source["id"], {"fromFailed": True})
    assert new["rerunOf"] == source["id"]
    assert [(s["status"], s["reusedFrom"]) for s in new["steps"]] == [
        ("completed", source["id"]),
        ("completed", source["id"]),
        ("pending", None),
    ]
    done = wait_for_run(client, chat["id"], new["id"])
    assert done["status"] == "completed", done
    assert done["input"] == source["input"] == {"k": [1, "x"]}
    # The reused steps' tools were not called again; the failed step's was, its template reading a reused output.
    assert CountingHandler.hits == {"/first": 1, "/second": 1, "/slow?after=1": 2}
    for reused, original in zip(done["steps"][:2], source["steps"][:2], strict=True):
        assert json.dumps(reused["output"]) == json.dumps(original["output"])
        assert json.dumps(reused["inputs"]) == json.dumps(original["inputs"])
        assert reused["reusedFrom"] == source["id"] and reused["attempts"] == 0 and reused["logs"] == []
        assert reused["startedAt"] == reused["completedAt"] == new["steps"][0]["completedAt"]
    assert done["steps"][2]["output"]["body"]["call"] == 2

    # The stream tells of the reused steps right after the run started, then of what ran.
    events = [e for e in read_stream(client, chat["id"], new["id"]) if e["event"] != "step_progress"]
    assert [(e["event"], e["data"].get("stepId")) for e in events] == [
        ("run_started", None),
        ("step_completed", "first"),
        ("step_completed", "second"),
        ("step_started", "slow"),
        ("step_completed", "slow"),
        ("run_completed", None),
    ]
    assert events[1]["data"]["result"] == source["steps"][0]["output"]

    # A re-run of the re-run (which completed) from its failed step is refused; a whole one calls every tool.
    assert rerun(client, chat["id"], new["id"], {"fromFailed": True}).status_code == 409
    again = wait_for_run(client, chat["id"], rerun_started(client, chat["id"], new["id"])["id"])
    assert again["status"] == "completed" and again["rerunOf"] == new["id"]
    assert CountingHandler.hits == {"/first": 2, "/second": 2, "/slow?after=1": 2, "/slow?after=2": 1}
    assert get_run(client, chat["id"], source["id"])["status"] == "failed"
