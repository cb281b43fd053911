"""Approval steps (the `approval` tool and `POST .../steps/:stepId/decision`), on both backends: a waiting step shows
`waitingFor: "decision"` and its run's log a `step_waiting` event; approval completes it with `{approved, comment,
decidedAt}` and the run goes on; rejection fails it with `rejected`; a wait past its timeout fails with `timeout`;
cancelling the run ends the wait at once; a decision on a step that is not waiting is a 409 that changes nothing."""

from typing import Any

from dbos import DBOS
from fastapi.testclient import TestClient

from runwire.runs import decisions
from tests.helpers import (
    assert_refused,
    create_workflow,
    get_run,
    new_chat,
    read_stream,
    snapshot,
    start_run,
    step,
    wait_for,
    wait_for_run,
)

SHIP = step("ship", "approval", {"prompt": "Ship {{ input.what }}?"})
AFTER = step("after", "template", {"template": "{{ steps.ship.output.comment }}!"}, dependsOn=["ship"])


def decide(client: TestClient, chat_id: str, run_id: str, step_id: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/chats/{chat_id}/workflow-runs/{run_id}/steps/{step_id}/decision", json=body)


def waiting_run(client: TestClient, steps: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """A chat and a run of `steps` whose first step waits for a decision."""
    chat = new_chat(client)
    workflow = create_workflow(client, steps)
    run = start_run(client, chat["id"], workflow["id"], {"what": "v2"})
    waiting: dict[str, Any] = wait_for(
        lambda: (found := get_run(client, chat["id"], run["id"]))["steps"][0]["waitingFor"] == "decision" and found
    )
    return chat["id"], waiting


def assert_not_waiting(response: Any, status: str) -> None:
    body = assert_refused(response, 409, "Conflict")
    assert body["message"] == f"The step is not waiting for a decision (it is {status}).", body


def waiter_status(run_id: str, step_id: str) -> str | None:
    status = DBOS.get_workflow_status(decisions.waiter_id(run_id, step_id))
    return None if status is None else str(status.status)


def test_approval_completes_the_step_and_the_run_goes_on(client: TestClient, user: dict[str, Any]) -> None:
    chat_id, run = waiting_run(client, [SHIP, AFTER])
    ship = run["steps"][0]
    assert (run["status"], ship["status"], ship["inputs"]) == ("running", "running", {"prompt": "Ship v2?"})
    assert run["steps"][1]["status"] == "pending" and run["steps"][1]["waitingFor"] is None
    listed = client.get(f"/api/chats/{chat_id}/workflow-runs").json()["data"]["workflowRuns"][0]
    assert listed["steps"][0]["waitingFor"] == "decision"

    response = decide(client, chat_id, run["id"], "ship", {"approved": True, "comment": "go"})
    assert response.status_code == 200, response.text
    decided = response.json()["data"]
    assert "input" not in decided  # the list form
    assert decided["steps"][0]["status"] == "completed" and decided["steps"][0]["waitingFor"] is None

    done = wait_for_run(client, chat_id, run["id"])
    assert done["status"] == "completed"
    output = done["steps"][0]["output"]
    assert output == {"approved": True, "comment": "go", "decidedAt": output["decidedAt"]}
    assert output["decidedAt"].endswith("Z") and output["decidedAt"] <= done["steps"][0]["completedAt"]
    assert done["steps"][1]["output"] == {"text": "go!"}
    events = read_stream(client, chat_id, run["id"])
    assert [(e["event"], e["data"].get("stepId")) for e in events] == [
        ("run_started", None),
        ("step_started", "ship"),
        ("step_waiting", "ship"),
        ("step_completed", "ship"),
        ("step_started", "after"),
        ("step_completed", "after"),
        ("run_completed", None),
    ]
    assert events[2]["data"] == {"stepId": "ship", "prompt": "Ship v2?"}
    assert events[3]["data"]["result"] == output
    wait_for(lambda: waiter_status(run["id"], "ship") == "SUCCESS")

    again = decide(client, chat_id, run["id"], "ship", {"approved": False})
    assert_not_waiting(again, "completed")


def test_rejection_fails_the_step_and_the_run(client: TestClient, user: dict[str, Any]) -> None:
    chat_id, run = waiting_run(client, [SHIP, AFTER])
    response = decide(client, chat_id, run["id"], "ship", {"approved": False, "comment": "not today"})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "failed"
    done = wait_for_run(client, chat_id, run["id"])
    rejected = {"code": "rejected", "message": "The step was rejected: not today"}
    assert done["steps"][0]["error"] == rejected and done["steps"][0]["status"] == "failed"
    assert done["steps"][1]["status"] == "cancelled" and done["steps"][1]["startedAt"] is None
    assert done["status"] == "failed" and done["error"]["code"] == "step_failed"
    wait_for(lambda: waiter_status(run["id"], "ship") == "SUCCESS")


def test_a_wait_past_its_timeout_fails_the_step(client: TestClient, user: dict[str, Any]) -> None:
    chat_id, run = waiting_run(client, [step("ship", "approval", {"prompt": "Quick?", "timeoutSeconds": 0.5})])
    done = wait_for_run(client, chat_id, run["id"])
    assert done["steps"][0]["error"] == {"code": "timeout", "message": "No decision came within 0.5 seconds."}
    assert done["status"] == "failed"
    assert_not_waiting(decide(client, chat_id, run["id"], "ship", {"approved": True}), "failed")
    # The step closed its waiter: nothing is left waiting.
    wait_for(lambda: waiter_status(run["id"], "ship") == "SUCCESS")


def test_cancel_ends_the_wait_at_once(client: TestClient, user: dict[str, Any]) -> None:
    chat_id, run = waiting_run(client, [SHIP, AFTER])
    cancelled = client.post(f"/api/chats/{chat_id}/workflow-runs/{run['id']}/cancel")
    assert cancelled.status_code == 202
    done = wait_for_run(client, chat_id, run["id"])
    assert done["status"] == "cancelled"
    assert [(s["status"], s["waitingFor"]) for s in done["steps"]] == [("cancelled", None), ("cancelled", None)]
    assert_not_waiting(decide(client, chat_id, run["id"], "ship", {"approved": True}), "cancelled")
    wait_for(lambda: waiter_status(run["id"], "ship") == "SUCCESS")


def test_decisions_that_cannot_apply_are_refused_and_change_nothing(client: TestClient, user: dict[str, Any]) -> None:
    delay = step("wait", "delay", {"seconds": 30})
    chat_id, run = waiting_run(client, [SHIP, delay, step("later", "approval", {"prompt": "p"}, dependsOn=["ship"])])
    path = f"/api/chats/{chat_id}/workflow-runs/{run['id']}"
    wait_for(lambda: get_run(client, chat_id, run["id"])["steps"][1]["status"] == "running")
    other_chat = new_chat(client, "other")
    before = snapshot(client)
    assert_not_waiting(decide(client, chat_id, run["id"], "wait", {"approved": True}), "running")
    assert_not_waiting(decide(client, chat_id, run["id"], "later", {"approved": True}), "pending")
    missing = assert_refused(decide(client, chat_id, run["id"], "nope", {"approved": True}), 404, "Not Found")
    assert missing["message"] == "Step not found."
    for body, field in (({}, "approved"), ({"approved": "yes"}, "approved"), ({"approved": True, "extra": 1}, "extra")):
        assert_refused(decide(client, chat_id, run["id"], "ship", body), 400, "Bad Request", field)
    wrong_chat = decide(client, other_chat["id"], run["id"], "ship", {"approved": True})
    assert assert_refused(wrong_chat, 404, "Not Found")["message"] == "Workflow run not found."
    assert snapshot(client) == before
    assert client.post(f"{path}/cancel").status_code == 202
