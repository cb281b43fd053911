"""`GET /api/users/:userId/workflow-runs`: a user's runs across their chats, newest first, filtered by status,
workflow, chat and creation time, paged by cursor; another user's id is 403 (an unknown one 404), and a deleted
chat's runs are gone. The list has an ETag: a matching If-None-Match is a 304 while none of the listed runs and
steps changed, and never once one has."""

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
    wait_for,
    wait_for_first_step,
    wait_for_run,
)
from tests.list_exactness import QUIET_STEPS, database_user_list


def user_runs(client: TestClient, user_id: str, etag: str | None = None, **params: Any) -> Any:
    headers = {"If-None-Match": etag} if etag is not None else None
    return client.get(f"/api/users/{user_id}/workflow-runs", params=params, headers=headers)


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


def test_the_list_is_304_until_a_listed_run_or_step_changes(client: TestClient, user: dict[str, Any]) -> None:
    first_chat, second_chat = new_chat(client, "first"), new_chat(client, "second")
    slow = create_workflow(client, [step("wait", "delay", {"seconds": 30})], name="slow")
    # Step "one" lasts long enough to be seen running before "two" starts, the run running all along.
    two_steps = create_workflow(
        client,
        [step("one", "delay", {"seconds": 3}), step("two", "delay", {"seconds": 30}, dependsOn=["one"])],
        name="two steps",
    )

    def tag_of(answer: Any) -> str:
        assert answer.status_code == 200, answer.text
        return str(answer.headers["ETag"])

    def unchanged(etag: str, **params: Any) -> None:
        again = user_runs(client, user["id"], etag, **params)
        assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag)

    def changed_since(etag: str) -> None:
        assert tag_of(user_runs(client, user["id"], etag)) != etag

    empty = tag_of(user_runs(client, user["id"]))
    unchanged(empty)
    first = start_run(client, first_chat["id"], slow["id"])
    changed_since(empty)
    wait_for_first_step(client, first_chat["id"], first["id"])
    running = tag_of(user_runs(client, user["id"]))
    unchanged(running)
    failed_only = tag_of(user_runs(client, user["id"], status="failed"))
    assert failed_only != running  # another list, another tag
    unchanged(failed_only, status="failed")

    second = start_run(client, second_chat["id"], two_steps["id"])  # in another chat
    changed_since(running)

    def second_listed_with(statuses: list[str]) -> Any:
        answer = user_runs(client, user["id"])
        listed = answer.json()["data"]["workflowRuns"][0]
        return answer if listed["id"] == second["id"] and [s["status"] for s in listed["steps"]] == statuses else None

    step_one_running = tag_of(wait_for(lambda: second_listed_with(["running", "pending"])))
    # Only the steps move: the run is running before and after.
    wait_for(lambda: second_listed_with(["completed", "running"]))
    changed_since(step_one_running)

    before_cancel = tag_of(user_runs(client, user["id"]))
    assert client.post(f"/api/chats/{first_chat['id']}/workflow-runs/{first['id']}/cancel").status_code == 202
    wait_for_run(client, first_chat["id"], first["id"])
    changed_since(before_cancel)
    unchanged(failed_only, status="failed")  # nothing failed meanwhile
    assert client.post(f"/api/chats/{second_chat['id']}/workflow-runs/{second['id']}/cancel").status_code == 202
    wait_for_run(client, second_chat["id"], second["id"])

    before_delete = tag_of(user_runs(client, user["id"]))
    assert client.delete(f"/api/chats/{second_chat['id']}").status_code == 204
    changed_since(before_delete)
    assert [run["id"] for run in user_runs(client, user["id"]).json()["data"]["workflowRuns"]] == [first["id"]]


def test_a_304_is_only_ever_served_for_the_list_the_database_holds(client: TestClient, user: dict[str, Any]) -> None:
    engine = client.app.state.database.engine  # type: ignore[attr-defined]
    chat = new_chat(client)
    workflow = create_workflow(client, QUIET_STEPS)
    answer = user_runs(client, user["id"])
    held: tuple[Any, str] = (answer.json(), answer.headers["ETag"])
    verdicts: list[int] = []

    def revalidate(attempts: int = 50) -> None:
        """A GET with the held tag, bracketed by two reads of the database: once they agree (the run did not move
        during the GET), a 304 must be for the list held, and a 200 must serve the list stored, a new one."""
        nonlocal held
        held_body, held_tag = held
        for _ in range(attempts):
            stored = database_user_list(engine, user["id"])
            answer = user_runs(client, user["id"], held_tag)
            if database_user_list(engine, user["id"]) != stored:
                continue
            if answer.status_code == 304:
                assert held_body == stored
            else:
                assert answer.status_code == 200 and answer.json() == stored != held_body
                assert answer.headers["ETag"] != held_tag
                held = (stored, answer.headers["ETag"])
            verdicts.append(answer.status_code)
            return
        raise AssertionError(f"the run moved during each of {attempts} reads")

    run = start_run(client, chat["id"], workflow["id"])
    events = 0
    with client.stream("GET", f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/stream") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                events += 1
                revalidate()
                revalidate()
    revalidate()
    assert held[0]["data"]["workflowRuns"][0]["status"] == "completed"
    assert events >= 8  # run_started, 3 x (step_started, step_completed), run_completed
    assert verdicts[0] == 200 and verdicts[-1] == 304 and len(verdicts) == 2 * events + 1, verdicts
