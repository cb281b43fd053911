"""`GET /api/users/:userId/workflow-runs`: a user's runs across their chats, newest first, filtered by status,
workflow, chat and creation time, paged by cursor; another user's id is 403 (an unknown one 404), and a deleted
chat's runs are gone."""

import time
import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import (
    assert_refused,
    create_workflow,
    new_chat,
    sign_up,
    start_run,
    step,
    wait_for_run,
)


def user_runs(client: TestClient, user_id: str, **params: Any) -> Any:
    return client.get(f"/api/users/{user_id}/workflow-runs", params=params)


def make_runs(client: TestClient) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Four ended runs: three completed in two chats (two workflows), then one failed; oldest first."""
    say = create_workflow(client, [step("say", "template", {"template": "hi"})], name="say")
    fail = create_workflow(client, [step("get", "json_extract", {"data": {}, "expression": "a["})], name="fail")
    first, second = new_chat(client, "first"), new_chat(client, "second")
    runs = []
    for chat, workflow in ((first, say), (second, say), (first, say), (second, fail)):
        runs.append(wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"]))
        time.sleep(0.005)  # distinct creation times
    return runs, first, fail


def test_a_users_runs_across_chats_newest_first_with_filters(client: TestClient, user: dict[str, Any]) -> None:
    runs, first_chat, fail = make_runs(client)
    ids = [run["id"] for run in runs]
    answer = user_runs(client, user["id"])
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert [run["id"] for run in data["workflowRuns"]] == ids[::-1]
    assert data["nextCursor"] is None
    assert (
        data["workflowRuns"][0]
        == client.get(f"/api/chats/{runs[3]['chatId']}/workflow-runs").json()["data"]["workflowRuns"][-1]
    )
    assert [run["id"] for run in user_runs(client, user["id"], order="asc").json()["data"]["workflowRuns"]] == ids

    def listed(**params: Any) -> list[str]:
        return [run["id"] for run in user_runs(client, user["id"], **params).json()["data"]["workflowRuns"]]

    assert listed(status="failed") == [ids[3]]
    assert listed(status="completed,cancelled") == [ids[2], ids[1], ids[0]]
    assert listed(workflowId=fail["id"]) == [ids[3]]
    assert listed(chatId=first_chat["id"]) == [ids[2], ids[0]]
    assert listed(createdAfter=runs[1]["createdAt"]) == [ids[3], ids[2]]
    assert listed(createdBefore=runs[1]["createdAt"]) == [ids[0]]


def test_pages_follow_the_cursor(client: TestClient, user: dict[str, Any]) -> None:
    runs, _, _ = make_runs(client)
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        data = user_runs(client, user["id"], **params).json()["data"]
        seen += [run["id"] for run in data["workflowRuns"]]
        cursor = data["nextCursor"]
        if cursor is None:
            break
    assert seen == [run["id"] for run in runs][::-1]


def test_refusals_and_deleted_chats(client: TestClient, user: dict[str, Any]) -> None:
    runs, first_chat, _ = make_runs(client)
    assert client.delete(f"/api/chats/{first_chat['id']}").status_code == 204
    left = user_runs(client, user["id"]).json()["data"]["workflowRuns"]
    assert [run["id"] for run in left] == [runs[3]["id"], runs[1]["id"]]
    assert_refused(user_runs(client, user["id"], status="done"), 400, "Bad Request", "status")
    assert_refused(user_runs(client, user["id"], createdAfter="2026-01-01T00:00:00"), 400, "Bad Request")
    assert_refused(user_runs(client, user["id"], cursor="nope"), 400, "Bad Request", "cursor")
    assert_refused(user_runs(client, user["id"], chatId="nope"), 400, "Bad Request", "chatId")
    assert_refused(user_runs(client, "nope"), 400, "Bad Request", "userId")
    assert_refused(user_runs(client, str(uuid.uuid4())), 404, "Not Found")
    other = TestClient(client.app, raise_server_exceptions=False)
    other.portal = client.portal
    sign_up(other, "bob@example.com", "Bob")
    assert_refused(user_runs(other, user["id"]), 403, "Forbidden")
    other.cookies.clear()
    assert_refused(user_runs(other, user["id"]), 401, "Unauthorized")
