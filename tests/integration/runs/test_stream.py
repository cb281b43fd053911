"""The live run stream: exact event sequences, replay, resume, concurrent subscribers, agreement with the list."""

import json
import threading
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import new_chat
from tests.helpers import (
    create_workflow,
    get_run,
    sse_events,
    start_run,
    step,
    wait_for,
    wait_for_first_step,
    wait_for_run,
)


def read_stream(
    client: TestClient, chat_id: str, run_id: str, last_event_id: str | None = None
) -> list[dict[str, Any]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    with client.stream("GET", f"/api/chats/{chat_id}/workflow-runs/{run_id}/stream", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache" and response.headers["x-accel-buffering"] == "no"
        return list(sse_events(response.iter_lines()))


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["event"], e["data"].get("stepId")) for e in events if e["event"] != "step_progress"]


def test_completed_run_sequence_and_replay(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(
        client, [step("a", "delay", {"seconds": 1.2}), step("b", "template", {"template": "hi"}, dependsOn=["a"])]
    )
    run = start_run(client, chat["id"], workflow["id"])
    live = read_stream(client, chat["id"], run["id"])
    assert kinds(live) == [
        ("run_started", None),
        ("step_started", "a"),
        ("step_completed", "a"),
        ("step_started", "b"),
        ("step_completed", "b"),
        ("run_completed", None),
    ]
    assert [e["id"] for e in live] == list(range(1, len(live) + 1))
    assert live[0]["data"] == {"runId": run["id"], "workflowId": workflow["id"]}
    assert live[-1]["data"] == {"runId": run["id"], "status": "completed"}
    progress = [e["data"] for e in live if e["event"] == "step_progress"]
    assert progress and all(0 <= p["progress"] <= 100 and p["stepId"] == "a" for p in progress)
    assert [e for e in live if e["event"] == "step_completed"][1]["data"]["result"] == {"text": "hi"}
    assert read_stream(client, chat["id"], run["id"]) == live
    middle = live[2]["id"]
    assert read_stream(client, chat["id"], run["id"], str(middle)) == live[middle:]


def test_failed_and_cancelled_sequences(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    failing = create_workflow(client, [step("bad", "json_extract", {"data": {}, "expression": "[[["})])
    failed = start_run(client, chat["id"], failing["id"])
    events = read_stream(client, chat["id"], failed["id"])
    assert kinds(events) == [
        ("run_started", None),
        ("step_started", "bad"),
        ("step_failed", "bad"),
        ("run_failed", None),
    ]
    assert events[2]["data"]["error"]["code"] == "invalid_expression"
    assert events[3]["data"]["error"]["code"] == "step_failed"

    slow = create_workflow(client, [step("wait", "delay", {"seconds": 30})])
    run = start_run(client, chat["id"], slow["id"])
    wait_for_first_step(client, chat["id"], run["id"])
    client.post(f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/cancel")
    events = read_stream(client, chat["id"], run["id"])
    assert kinds(events) == [("run_started", None), ("step_started", "wait"), ("run_completed", None)]
    assert events[-1]["data"]["status"] == "cancelled"


def test_subscribers_before_start_get_identical_sequences(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    blocker = create_workflow(client, [step("wait", "delay", {"seconds": 0.5})])
    workflow = create_workflow(client, [step("a", "template", {"template": "x"})])
    start_run(client, chat["id"], blocker["id"])
    run = start_run(client, chat["id"], workflow["id"])
    results: list[list[dict[str, Any]]] = [[], []]

    def subscribe(index: int) -> None:
        results[index] = read_stream(client, chat["id"], run["id"])

    threads = [threading.Thread(target=subscribe, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results[0] == results[1]
    assert results[0][0]["event"] == "run_started" and results[0][-1]["event"] == "run_completed"


def test_stream_agrees_with_the_list_and_releases_its_listener(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "delay", {"seconds": 30})])
    run = start_run(client, chat["id"], workflow["id"])
    wait_for_first_step(client, chat["id"], run["id"])
    notifier = client.app.state.hub.notifier  # type: ignore[attr-defined]
    before = notifier.subscriber_count()
    path = f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/stream"
    with client.stream("GET", path) as response:
        lines = response.iter_lines()
        assert next(lines) == "id: 1"
        wait_for(lambda: notifier.subscriber_count() == before + 1)
        listed = get_run(client, chat["id"], run["id"])
        assert listed["status"] == "running" and listed["steps"][0]["status"] == "running"
    client.post(f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/cancel")
    wait_for(lambda: notifier.subscriber_count() == before, timeout=10)


def test_stream_errors_are_json(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    base = f"/api/chats/{chat['id']}/workflow-runs"
    assert client.get(f"{base}/not-a-uuid/stream").status_code == 400
    missing = client.get(f"{base}/00000000-0000-4000-8000-000000000000/stream")
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"
    workflow = create_workflow(client, [step("a", "template", {"template": "x"})])
    run = start_run(client, chat["id"], workflow["id"])
    wait_for_run(client, chat["id"], run["id"])
    bad = client.get(f"{base}/{run['id']}/stream", headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 400
    client.cookies.clear()
    assert client.get(f"{base}/{run['id']}/stream").status_code == 401


def test_list_reflects_every_event_when_it_arrives(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(
        client, [step("a", "delay", {"seconds": 0.3}), step("b", "template", {"template": "x"}, dependsOn=["a"])]
    )
    run = start_run(client, chat["id"], workflow["id"])
    path = f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/stream"
    seen = 0
    with client.stream("GET", path) as response:
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            listed = client.get(f"/api/chats/{chat['id']}/workflow-runs").json()["data"]["workflowRuns"][0]
            steps = {s["id"]: s for s in listed["steps"]}
            if "stepId" in event and "result" in event:
                assert steps[event["stepId"]]["status"] == "completed"
            elif "stepId" in event and "toolId" in event:
                assert steps[event["stepId"]]["startedAt"] is not None
            elif "workflowId" in event:
                assert listed["status"] != "pending" and listed["startedAt"] is not None
            elif "status" in event:
                assert listed["status"] == event["status"] and listed["completedAt"] is not None
            seen += 1
    assert seen >= 6
