"""A cancel racing a run's completion ends in one consistent state, whichever wins."""

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import create_workflow, new_chat, read_stream, start_run, step, wait_for_run

# The cancel comes ever later after the start, from at once to seconds, until it has landed both before and after
# the run's end (and at least MIN_ATTEMPTS times): on a loaded machine a run takes longer to end.
MIN_ATTEMPTS, MAX_ATTEMPTS = 12, 24


def cancel_delay(attempt: int) -> float:
    return 0.0 if attempt == 0 else 0.01 * 1.4**attempt


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
    outcomes: set[str] = set()
    for attempt in range(MAX_ATTEMPTS):
        if attempt >= MIN_ATTEMPTS and len(outcomes) == 2:
            break
        run = start_run(client, chat["id"], workflow["id"])
        time.sleep(cancel_delay(attempt))
        cancel_status = client.post(f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/cancel").status_code
        ended = wait_for_run(client, chat["id"], run["id"])
        assert_consistent(ended, cancel_status, read_stream(client, chat["id"], run["id"]))
        outcomes.add(ended["status"])
    assert outcomes == {"completed", "cancelled"}, "the cancels should land both before and after the end"
