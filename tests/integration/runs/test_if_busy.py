"""`ifBusy` on run creation: `enqueue` queues behind the chat's active runs, `reject` refuses with 409 and creates
nothing, `interrupt` cancels the active and queued runs and runs once they have stopped, in the chat's order."""

from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import (
    StoredData,
    assert_refused,
    create_workflow,
    get_run,
    new_chat,
    start_run,
    step,
    wait_for_first_step,
    wait_for_run,
)


def runs_path(chat: dict[str, Any]) -> str:
    return f"/api/chats/{chat['id']}/workflow-runs"


def start(client: TestClient, chat: dict[str, Any], workflow: dict[str, Any], if_busy: str) -> Any:
    return client.post(runs_path(chat), json={"workflowId": workflow["id"], "ifBusy": if_busy})


def test_reject_refuses_while_the_chat_is_busy_and_starts_when_it_is_idle(
    client: TestClient, user: dict[str, Any]
) -> None:
    chat = new_chat(client)
    slow = create_workflow(client, [step("wait", "delay", {"seconds": 30})])
    quick = create_workflow(client, [step("say", "template", {"template": "hi"})])
    running = start_run(client, chat["id"], slow["id"])
    wait_for_first_step(client, chat["id"], running["id"])
    stored = StoredData(client)
    stored.mark()
    refused = assert_refused(start(client, chat, quick, "reject"), 409, "Conflict")
    assert "busy" in refused["message"]
    stored.assert_unchanged()
    assert client.post(f"{runs_path(chat)}/{running['id']}/cancel").status_code == 202
    wait_for_run(client, chat["id"], running["id"])
    created = start(client, chat, quick, "reject")
    assert created.status_code == 202, created.text
    assert wait_for_run(client, chat["id"], created.json()["data"]["id"])["status"] == "completed"


def test_interrupt_cancels_the_active_and_queued_runs_then_runs(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    slow = create_workflow(client, [step("wait", "delay", {"seconds": 30})])
    quick = create_workflow(client, [step("say", "template", {"template": "hi"})])
    running = start_run(client, chat["id"], slow["id"])
    wait_for_first_step(client, chat["id"], running["id"])
    queued = start_run(client, chat["id"], slow["id"])
    created = start(client, chat, quick, "interrupt")
    assert created.status_code == 202, created.text
    new = wait_for_run(client, chat["id"], created.json()["data"]["id"])
    assert new["status"] == "completed"
    stopped = [get_run(client, chat["id"], run["id"]) for run in (running, queued)]
    assert [run["status"] for run in stopped] == ["cancelled", "cancelled"]
    assert stopped[1]["startedAt"] is None  # the queued run never ran
    # The new run started only once the interrupted one had stopped.
    assert new["startedAt"] >= stopped[0]["completedAt"]


def test_enqueue_is_the_default_and_queues_behind(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("wait", "delay", {"seconds": 0.2})])
    first = start_run(client, chat["id"], workflow["id"])
    second = start(client, chat, workflow, "enqueue").json()["data"]
    ended = [wait_for_run(client, chat["id"], run["id"]) for run in (first, second)]
    assert [run["status"] for run in ended] == ["completed", "completed"]
    assert ended[1]["startedAt"] >= ended[0]["completedAt"]


def test_an_unknown_if_busy_is_refused(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("say", "template", {"template": "hi"})])
    assert_refused(start(client, chat, workflow, "later"), 400, "Bad Request", "ifBusy")
