"""A run's detail and a chat's messages answer with an ETag like the run list: a matching If-None-Match is a 304
while nothing in the chat changed, and never once something has; the contract's error order holds on this path."""

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
    wait_for_first_step,
    wait_for_run,
)


def revalidated(client: TestClient, path: str, etag: str) -> Any:
    return client.get(path, headers={"If-None-Match": etag})


def test_a_run_detail_is_304_until_the_run_moves(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("wait", "delay", {"seconds": 30})])
    run = start_run(client, chat["id"], workflow["id"])
    wait_for_first_step(client, chat["id"], run["id"])
    path = f"/api/chats/{chat['id']}/workflow-runs/{run['id']}"
    first = client.get(path)
    assert first.status_code == 200 and first.json()["data"]["steps"][0]["status"] == "running"
    not_modified = revalidated(client, path, first.headers["ETag"])
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert not_modified.headers["ETag"] == first.headers["ETag"]

    assert client.post(f"{path}/cancel").status_code == 202
    changed = revalidated(client, path, first.headers["ETag"])
    assert changed.status_code == 200 and changed.json()["data"]["status"] == "cancelled"
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert changed.json() == client.get(path).json()


def test_a_run_detail_keeps_the_contract_error_order(client: TestClient, user: dict[str, Any]) -> None:
    chat, other_chat = new_chat(client), new_chat(client, "other")
    workflow = create_workflow(client, [step("say", "template", {"template": "hi"})])
    run = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    assert_refused(client.get(f"/api/chats/{other_chat['id']}/workflow-runs/{run['id']}"), 404, "Not Found")
    assert_refused(client.get(f"/api/chats/{chat['id']}/workflow-runs/{uuid.uuid4()}"), 404, "Not Found")
    assert_refused(client.get(f"/api/chats/{uuid.uuid4()}/workflow-runs/nope"), 400, "Bad Request", "workflowRunId")
    assert_refused(client.get(f"/api/chats/{uuid.uuid4()}/workflow-runs/{run['id']}"), 404, "Not Found")
    mallory = TestClient(client.app, raise_server_exceptions=False)
    mallory.portal = client.portal
    sign_up(mallory, "mallory@example.com", "Mallory")
    assert_refused(mallory.get(f"/api/chats/{chat['id']}/workflow-runs/{run['id']}"), 403, "Forbidden")
    mallory.cookies.clear()
    assert_refused(mallory.get(f"/api/chats/{chat['id']}/workflow-runs/nope"), 401, "Unauthorized")


def test_the_messages_are_304_until_a_message_is_added(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    messages = f"/api/chats/{chat['id']}/messages"
    assert client.post(messages, json={"content": "first"}).status_code == 201
    first = client.get(messages)
    assert [m["content"] for m in first.json()["data"]["messages"]] == ["first"]
    assert "nextCursor" not in first.json()["data"]
    assert revalidated(client, messages, first.headers["ETag"]).status_code == 304

    paged = client.get(messages, params={"limit": 1})
    assert paged.json()["data"]["nextCursor"] is None
    assert paged.headers["ETag"] != first.headers["ETag"]  # another read of the same chat, another tag

    assert client.post(messages, json={"content": "second"}).status_code == 201
    changed = revalidated(client, messages, first.headers["ETag"])
    assert changed.status_code == 200
    assert [m["content"] for m in changed.json()["data"]["messages"]] == ["first", "second"]


def test_messages_keep_the_contract_error_order(client: TestClient, user: dict[str, Any]) -> None:
    missing = f"/api/chats/{uuid.uuid4()}/messages"
    assert_refused(client.get(missing, params={"cursor": "not a cursor"}), 400, "Bad Request", "cursor")
    assert_refused(client.get(missing), 404, "Not Found")
    client.cookies.clear()
    assert_refused(client.get(missing, params={"cursor": "not a cursor"}), 401, "Unauthorized")
