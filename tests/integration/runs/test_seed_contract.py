"""GET /api/chats/:chatId/workflow-runs, field by field, with its additive parameters, ETag and SQL budget."""

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.helpers import create_workflow, new_chat, start_run, step, wait_for_first_step, wait_for_run

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RUN_FIELDS = {
    "id",
    "chatId",
    "workflowId",
    "status",
    "startedAt",
    "completedAt",
    "steps",
    "createdAt",
    "workflowVersion",
    "error",
    "rerunOf",
}
STEP_FIELDS = {"id", "status", "startedAt", "completedAt", "name", "toolId", "error", "reusedFrom", "waitingFor"}


def is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4 and value == str(uuid.UUID(value))


def run_chat(client: TestClient, count: int, workflow_id: str) -> tuple[str, list[str]]:
    chat = new_chat(client)
    ids = [start_run(client, chat["id"], workflow_id)["id"] for _ in range(count)]
    wait_for_run(client, chat["id"], ids[-1], timeout=60)
    return chat["id"], ids


def test_seed_shape_field_by_field(client: TestClient, user: dict[str, Any]) -> None:
    workflow = create_workflow(
        client,
        [
            step("first", "template", {"template": "a"}, name="First"),
            step("second", "delay", {"seconds": 0}, dependsOn=["first"]),
        ],
    )
    chat_id, (run_id,) = run_chat(client, 1, workflow["id"])
    response = client.get(f"/api/chats/{chat_id}/workflow-runs")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"data"} and set(body["data"]) == {"workflowRuns"}
    (run,) = body["data"]["workflowRuns"]
    assert set(run) == RUN_FIELDS
    assert run["id"] == run_id and is_uuid4(run["id"])
    assert run["chatId"] == chat_id and run["workflowId"] == workflow["id"]
    assert run["status"] == "completed" and run["error"] is None and run["workflowVersion"] == 1
    for field in ("startedAt", "completedAt", "createdAt"):
        assert TIMESTAMP.match(run[field]), run[field]
    assert run["createdAt"] <= run["startedAt"] <= run["completedAt"]
    assert [s["id"] for s in run["steps"]] == ["first", "second"]
    for item in run["steps"]:
        assert set(item) == STEP_FIELDS
        assert item["status"] == "completed" and item["error"] is None
        assert TIMESTAMP.match(item["startedAt"]) and TIMESTAMP.match(item["completedAt"])
        assert run["startedAt"] <= item["startedAt"] <= item["completedAt"] <= run["completedAt"]
    assert run["steps"][0]["name"] == "First" and run["steps"][0]["toolId"] == "template"
    assert run["steps"][1]["name"] is None


def test_pending_run_has_null_times(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "delay", {"seconds": 30})])
    first = start_run(client, chat["id"], workflow["id"])
    second = start_run(client, chat["id"], workflow["id"])
    wait_for_first_step(client, chat["id"], first["id"])
    runs = client.get(f"/api/chats/{chat['id']}/workflow-runs").json()["data"]["workflowRuns"]
    assert runs[0]["status"] == "running" and runs[0]["completedAt"] is None and runs[0]["startedAt"]
    assert runs[0]["steps"][0]["status"] == "running"
    assert runs[1]["id"] == second["id"]
    assert (runs[1]["status"], runs[1]["startedAt"], runs[1]["completedAt"]) == ("pending", None, None)
    assert runs[1]["steps"][0] | {"name": None} == {
        "id": "a",
        "status": "pending",
        "startedAt": None,
        "completedAt": None,
        "name": None,
        "toolId": "delay",
        "error": None,
        "reusedFrom": None,
        "waitingFor": None,
    }


def test_filters_order_pagination_and_etag(client: TestClient, user: dict[str, Any]) -> None:
    good = create_workflow(client, [step("a", "template", {"template": "ok"})], name="good")
    bad = create_workflow(client, [step("a", "json_extract", {"data": {}, "expression": "[[["})], name="bad")
    chat = new_chat(client)
    ids = [start_run(client, chat["id"], wf["id"])["id"] for wf in (good, bad, good, bad, good)]
    wait_for_run(client, chat["id"], ids[-1])
    path = f"/api/chats/{chat['id']}/workflow-runs"

    def listed(**params: Any) -> dict[str, Any]:
        response = client.get(path, params=params)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    assert [r["id"] for r in listed()["workflowRuns"]] == ids
    assert [r["id"] for r in listed(order="desc")["workflowRuns"]] == ids[::-1]
    assert [r["id"] for r in listed(status="failed")["workflowRuns"]] == [ids[1], ids[3]]
    assert [r["id"] for r in listed(status="failed,completed")["workflowRuns"]] == ids
    assert [r["id"] for r in listed(workflowId=good["id"])["workflowRuns"]] == [ids[0], ids[2], ids[4]]
    assert "nextCursor" not in listed()
    pages: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, "order": "desc"}
        if cursor:
            params["cursor"] = cursor
        page = listed(**params)
        pages += [r["id"] for r in page["workflowRuns"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == ids[::-1]
    for params in (
        {"status": "done"},
        {"order": "up"},
        {"limit": 0},
        {"limit": 101},
        {"cursor": "zz"},
        {"workflowId": "x"},
    ):
        response = client.get(path, params=params)
        assert response.status_code == 400, params
        assert response.json()["error"] == "Bad Request"

    first = client.get(path)
    etag = first.headers["etag"]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    start_run(client, chat["id"], good["id"])
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


@contextmanager
def count_statements(client: TestClient) -> Iterator[list[str]]:
    engine = client.app.state.database.engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.slow
def test_statements_per_list_request_do_not_grow_with_runs(client: TestClient, user: dict[str, Any]) -> None:
    workflow = create_workflow(
        client, [step("a", "delay", {"seconds": 0}), step("b", "delay", {"seconds": 0}, dependsOn=["a"])]
    )
    counts = {}
    for size in (1, 10, 100):
        chat_id, _ = run_chat(client, size, workflow["id"])
        with count_statements(client) as statements:
            response = client.get(f"/api/chats/{chat_id}/workflow-runs")
        assert len(response.json()["data"]["workflowRuns"]) == size
        counts[size] = len([s for s in statements if s.lstrip().upper().startswith("SELECT")])
    assert counts[1] == counts[10] == counts[100] <= 4, counts
