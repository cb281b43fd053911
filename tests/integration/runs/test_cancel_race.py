"""A cancel racing a run's completion ends in one consistent state, whichever wins."""

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import create_workflow, new_chat, read_stream, start_run, step, wait_for_run

ATTEMPTS = 12


def assert_consistent(run: dict[str, Any], cancel_status: int, events: list[dict[str, Any]]) -> None:
    final = [event for event in events if event["event"] in ("run_completed", "run_failed")]
    assert len(final) == 1 and final[0] is events[-1], events
    assert final[0]["data"]["status"] == run["status"]
    assert run["completedAt"] is not None
    if run["status"] == "completed":
        assert cancel_status == 409
        assert [s["status"] for s in run["steps"]] == ["completed", "completed"]
    else:
        assert (run["status"], cancel_status) == ("cancelled", 202)
        for s in run["steps"]:
            assert s["status"] in ("completed", "cancelled"), run
            assert s["completedAt"] is not None
            if s["startedAt"] is None:
                assert s["status"] == "cancelled"
    started = {event["data"]["stepId"] for event in events if event["event"] == "step_started"}
    assert started == {s["id"] for s in run["steps"] if s["startedAt"] is not None}


def test_cancel_racing_completion_leaves_one_consistent_state(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(
        client,
        [
            step("first", "template", {"template": "a"}),
            step("second", "template", {"template": "{{ steps.first.output }}b"}, dependsOn=["first"]),
        ],
    )
    outcomes = set()
    for attempt in range(ATTEMPTS):
        run = start_run(client, chat["id"], workflow["id"])
        time.sleep(0.025 * attempt)
        cancel_status = client.post(f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/cancel").status_code
        ended = wait_for_run(client, chat["id"], run["id"])
        assert_consistent(ended, cancel_status, read_stream(client, chat["id"], run["id"]))
        outcomes.add(ended["status"])
    assert outcomes == {"completed", "cancelled"}, "the cancels should land both before and after the end"
