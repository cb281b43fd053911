"""Runs executed for real by the DBOS executor against a real SQLite file."""

import itertools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import (
    create_workflow,
    get_run,
    new_chat,
    read_stream,
    sign_up,
    start_run,
    step,
    wait_for,
    wait_for_first_step,
    wait_for_run,
)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_two_step_run_renders_templates_with_types(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(
        client,
        [
            step("pick", "json_extract", {"data": "{{ input.items }}", "expression": "[?n > `1`].n"}),
            step("say", "template", {"template": "got {{ steps.pick.output.result | length }}"}, dependsOn=["pick"]),
        ],
    )
    run = start_run(client, chat["id"], workflow["id"], {"items": [{"n": 1}, {"n": 2}, {"n": 3}]})
    assert run["status"] == "pending" and run["startedAt"] is None and run["completedAt"] is None
    done = wait_for_run(client, chat["id"], run["id"])
    assert done["status"] == "completed", done
    pick, say = done["steps"]
    assert pick["inputs"]["data"] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert pick["output"] == {"result": [2, 3]}
    assert say["output"] == {"text": "got 2"}
    assert pick["attempts"] == 1 and done["input"] == {"items": [{"n": 1}, {"n": 2}, {"n": 3}]}
    assert ts(done["startedAt"]) <= ts(pick["startedAt"]) <= ts(pick["completedAt"]) <= ts(say["startedAt"])
    assert ts(say["completedAt"]) <= ts(done["completedAt"])


def test_diamond_middle_steps_overlap(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(
        client,
        [
            step("top", "delay", {"seconds": 0}),
            step("left", "delay", {"seconds": 0.6}, dependsOn=["top"]),
            step("right", "delay", {"seconds": 0.6}, dependsOn=["top"]),
            step("bottom", "delay", {"seconds": 0}, dependsOn=["left", "right"]),
        ],
    )
    done = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    assert done["status"] == "completed"
    steps = {s["id"]: s for s in done["steps"]}
    assert [s["id"] for s in done["steps"]] == ["top", "left", "right", "bottom"]
    left, right = steps["left"], steps["right"]
    assert ts(left["startedAt"]) < ts(right["completedAt"]) and ts(right["startedAt"]) < ts(left["completedAt"])
    assert ts(steps["bottom"]["startedAt"]) >= max(ts(left["completedAt"]), ts(right["completedAt"]))


def test_fail_fast_cancels_siblings_and_never_starts_the_rest(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(
        client,
        [
            step("slow", "delay", {"seconds": 30}),
            # The gate makes sure that "slow" is running when "bad" fails.
            step("gate", "delay", {"seconds": 0.3}),
            step("bad", "json_extract", {"data": {}, "expression": "[[["}, dependsOn=["gate"]),
            step("after", "delay", {"seconds": 0}, dependsOn=["bad"]),
        ],
    )
    started = time.monotonic()
    done = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    assert time.monotonic() - started < 10
    assert done["status"] == "failed"
    assert done["error"]["code"] == "step_failed" and "'bad'" in done["error"]["message"]
    steps = {s["id"]: s for s in done["steps"]}
    assert steps["bad"]["status"] == "failed" and steps["bad"]["error"]["code"] == "invalid_expression"
    assert steps["slow"]["status"] == "cancelled" and steps["slow"]["startedAt"] is not None
    assert steps["after"]["status"] == "cancelled" and steps["after"]["startedAt"] is None
    assert all(s["completedAt"] is not None for s in done["steps"] if s["id"] != "after")


def test_missing_template_value_fails_the_step(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "delay", {"seconds": "{{ input.nothing }}"})])
    done = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"], {})["id"])
    assert done["status"] == "failed"
    assert done["steps"][0]["error"]["code"] == "invalid_template"


def test_retries_then_failure_counts_attempts(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(
        client, [step("a", "http_request", {"method": "GET", "url": "http://10.0.0.1/"}, retries=2)]
    )
    done = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    assert done["status"] == "failed"
    assert done["steps"][0]["attempts"] == 3
    assert done["steps"][0]["error"]["code"] == "blocked_address"
    assert len([line for line in done["steps"][0]["logs"] if "retry" in line["message"]]) == 2


def test_step_timeout(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "delay", {"seconds": 30}, timeoutSeconds=0.3)])
    done = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    assert done["status"] == "failed"
    assert done["steps"][0]["error"]["code"] == "timeout"


def test_cancel_running_run_stops_promptly(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(
        client, [step("wait", "delay", {"seconds": 30}), step("next", "delay", {"seconds": 0}, dependsOn=["wait"])]
    )
    run = start_run(client, chat["id"], workflow["id"])
    wait_for_first_step(client, chat["id"], run["id"])
    began = time.monotonic()
    cancelled = client.post(f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/cancel")
    assert cancelled.status_code == 202
    assert cancelled.json()["data"]["status"] == "cancelled"
    done = get_run(client, chat["id"], run["id"])
    assert [s["status"] for s in done["steps"]] == ["cancelled", "cancelled"]
    assert done["steps"][1]["startedAt"] is None
    app: Any = client.app
    wait_for(lambda: app.state.executor is not None and not _tasks_running(client, run["id"]), timeout=1.0)
    assert time.monotonic() - began < 1.0
    again = client.post(f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"] == "Conflict"


def _tasks_running(client: TestClient, run_id: str) -> bool:
    return run_id in client.app.state.hub.running_tasks._tasks  # type: ignore[attr-defined]


def test_cancel_pending_run_and_fifo_within_a_chat(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    slow = create_workflow(client, [step("a", "delay", {"seconds": 0.4})])
    runs = [start_run(client, chat["id"], slow["id"]) for _ in range(4)]
    assert client.post(f"/api/chats/{chat['id']}/workflow-runs/{runs[2]['id']}/cancel").status_code == 202
    for run in runs:
        wait_for_run(client, chat["id"], run["id"])
    listed = client.get(f"/api/chats/{chat['id']}/workflow-runs").json()["data"]["workflowRuns"]
    assert [r["id"] for r in listed] == [r["id"] for r in runs]
    assert [r["status"] for r in listed] == ["completed", "completed", "cancelled", "completed"]
    assert listed[2]["startedAt"] is None and listed[2]["steps"][0]["status"] == "cancelled"
    executed = [r for r in listed if r["status"] == "completed"]
    for earlier, later in itertools.pairwise(executed):
        assert ts(earlier["completedAt"]) <= ts(later["startedAt"])


def test_chats_run_in_parallel(client: TestClient, user: dict[str, Any]) -> None:
    workflow = create_workflow(client, [step("a", "delay", {"seconds": 0.8})])
    chats = [new_chat(client) for _ in range(3)]
    runs = [(chat["id"], start_run(client, chat["id"], workflow["id"])["id"]) for chat in chats]
    done = [wait_for_run(client, chat_id, run_id) for chat_id, run_id in runs]
    starts = [ts(r["startedAt"]) for r in done]
    ends = [ts(r["completedAt"]) for r in done]
    assert max(starts) < min(ends)


def test_deleting_a_chat_cancels_its_runs(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "delay", {"seconds": 30})])
    run = start_run(client, chat["id"], workflow["id"])
    wait_for_run(client, chat["id"], run["id"], {"running"})
    assert client.delete(f"/api/chats/{chat['id']}").status_code == 204
    assert client.get(f"/api/chats/{chat['id']}/workflow-runs/{run['id']}").status_code == 404
    from sqlalchemy import text

    database = client.app.state.database  # type: ignore[attr-defined]
    with database.reading() as session:
        status = session.execute(text("SELECT status FROM workflow_run")).scalar_one()
    assert status == "cancelled"


def test_run_pinned_to_its_version_and_deleted_workflow_still_lists(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "template", {"template": "v1"})])
    first = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    client.patch(f"/api/workflows/{workflow['id']}", json={"steps": [step("b", "template", {"template": "v2"})]})
    second = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    assert (first["workflowVersion"], first["steps"][0]["output"]) == (1, {"text": "v1"})
    assert (second["workflowVersion"], second["steps"][0]["output"]) == (2, {"text": "v2"})
    assert client.delete(f"/api/workflows/{workflow['id']}").status_code == 204
    listed = client.get(f"/api/chats/{chat['id']}/workflow-runs").json()["data"]["workflowRuns"]
    assert [r["id"] for r in listed] == [first["id"], second["id"]]
    refused = client.post(f"/api/chats/{chat['id']}/workflow-runs", json={"workflowId": workflow["id"]})
    assert refused.status_code == 404


def test_run_detail_errors(client: TestClient) -> None:
    sign_up(client)
    chat = new_chat(client)
    base = f"/api/chats/{chat['id']}/workflow-runs"
    assert client.get(f"{base}/not-a-uuid").status_code == 400
    assert client.get(f"{base}/00000000-0000-4000-8000-000000000000").status_code == 404
    assert client.post(base, json={"workflowId": "nope"}).status_code == 400
    assert client.post(base, json={"workflowId": "00000000-0000-4000-8000-000000000000"}).status_code == 404


def test_a_queued_run_wakes_the_executor_without_waiting_for_its_poll(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(queue_poll_seconds=60)
    sign_up(client)
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "delay", {"seconds": 0})])
    for _ in range(2):  # the second run waits for the first to end: its chat's next run wakes the queue too
        run = start_run(client, chat["id"], workflow["id"])
    assert wait_for_run(client, chat["id"], run["id"], timeout=20)["status"] == "completed"


def test_a_step_launched_alone_hands_its_successors_start_to_its_completion(
    client: TestClient, user: dict[str, Any]
) -> None:
    """A completing step begins the steps that come next in its own transaction: each starts at the millisecond
    its predecessor completed, after its completion in the run's log, with one attempt; a fan-out begins together."""
    chat = new_chat(client)
    workflow = create_workflow(
        client,
        [
            step("a", "delay", {"seconds": 0}),
            step("b", "delay", {"seconds": "{{ steps.a.output.sleptSeconds }}"}, dependsOn=["a"]),
            step("c", "delay", {"seconds": 0}, dependsOn=["b"]),
            step("d", "delay", {"seconds": 0}, dependsOn=["b"]),
        ],
    )
    run = start_run(client, chat["id"], workflow["id"])
    done = wait_for_run(client, chat["id"], run["id"])
    assert done["status"] == "completed", done
    a, b, c, d = done["steps"]
    assert b["inputs"] == {"seconds": a["output"]["sleptSeconds"]} == {"seconds": 0}
    assert [s["attempts"] for s in done["steps"]] == [1, 1, 1, 1]
    assert b["startedAt"] == a["completedAt"] and c["startedAt"] == d["startedAt"] == b["completedAt"]
    events = [(event["event"], event["data"].get("stepId")) for event in read_stream(client, chat["id"], run["id"])]
    assert events[:7] + events[9:] == [
        ("run_started", None),
        ("step_started", "a"),
        ("step_completed", "a"),
        ("step_started", "b"),
        ("step_completed", "b"),
        ("step_started", "c"),
        ("step_started", "d"),
        ("run_completed", None),
    ]
    assert sorted(events[7:9]) == [("step_completed", "c"), ("step_completed", "d")]
