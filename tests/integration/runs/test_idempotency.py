"""Idempotency-Key on POST /api/chats/:chatId/workflow-runs: one run per key and user for 24 h, on both backends."""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runwire.chats.models import Chat
from runwire.db import utcnow
from runwire.runs import idempotency
from runwire.runs.schemas import RunCreate
from runwire.runs.service import Enqueued
from tests.helpers import create_workflow, new_chat, sign_up, step, wait_for_run

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


def runs_path(chat_id: str) -> str:
    return f"/api/chats/{chat_id}/workflow-runs"


def listed_ids(client: TestClient, chat_id: str) -> list[str]:
    response = client.get(runs_path(chat_id))
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()["data"]["workflowRuns"]]


def post_run(
    client: TestClient, chat_id: str, body: dict[str, Any], key: str | bytes | None = None
) -> Any:  # httpx.Response
    # As bytes: a key that is not ASCII text must reach the server as sent.
    value = key if isinstance(key, bytes) else None if key is None else key.encode("ascii")
    headers = [(HEADER.encode(), value)] if value is not None else []
    return client.post(runs_path(chat_id), json=body, headers=headers)


@pytest.fixture
def enqueued(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[Enqueued]:
    """Every run the app hands to its executor, still handed over for real."""
    executor = client.app.state.executor  # type: ignore[attr-defined]
    handed: list[Enqueued] = []
    real = executor.enqueue

    def counting(run: Enqueued) -> None:
        handed.append(run)
        real(run)

    monkeypatch.setattr(executor, "enqueue", counting)
    return handed


@pytest.fixture
def workflow(client: TestClient, user: dict[str, Any]) -> dict[str, Any]:
    return create_workflow(client, [step("say", "template", {"template": "hi {{ input.name }}"})])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[timedelta], None]]:
    """Moves the idempotency rules' clock (only theirs) forward by a given amount."""
    offset = [timedelta(0)]

    def shifted() -> datetime:
        return utcnow() + offset[0]

    monkeypatch.setattr(idempotency, "utcnow", shifted)

    def advance(by: timedelta) -> None:
        offset[0] = by

    yield advance


def test_replay_answers_with_the_same_run_in_its_current_state(
    client: TestClient, workflow: dict[str, Any], enqueued: list[Enqueued]
) -> None:
    chat = new_chat(client)
    body = {"workflowId": workflow["id"], "input": {"name": "Ada"}}
    first = post_run(client, chat["id"], body, "retry-1")
    assert first.status_code == 202, first.text
    assert REPLAYED not in first.headers
    created = first.json()["data"]
    assert created["status"] == "pending"
    done = wait_for_run(client, chat["id"], created["id"])

    again = post_run(client, chat["id"], body, "retry-1")
    assert again.status_code == 202, again.text
    assert again.headers[REPLAYED] == "true"
    replayed = again.json()["data"]
    assert replayed["id"] == created["id"]
    assert set(replayed) == set(created)
    assert replayed["status"] == done["status"] == "completed"
    assert replayed["completedAt"] == done["completedAt"]
    assert listed_ids(client, chat["id"]) == [created["id"]]
    assert [item.run_id for item in enqueued] == [uuid.UUID(created["id"])]


def test_the_same_request_written_differently_is_a_replay(client: TestClient, workflow: dict[str, Any]) -> None:
    chat = new_chat(client)
    first = post_run(client, chat["id"], {"workflowId": workflow["id"], "input": {"a": 1, "b": [1, {"c": 2}]}}, "k")
    same = post_run(
        client, chat["id"], {"input": {"b": [1, {"c": 2}], "a": 1}, "workflowId": workflow["id"].upper()}, "k"
    )
    assert same.status_code == 202 and same.headers[REPLAYED] == "true"
    assert same.json()["data"]["id"] == first.json()["data"]["id"]
    # No input and an empty input are one request: the body is compared once validated.
    bare = post_run(client, chat["id"], {"workflowId": workflow["id"]}, "other")
    empty = post_run(client, chat["id"], {"workflowId": workflow["id"], "input": {}}, "other")
    assert empty.headers[REPLAYED] == "true" and empty.json()["data"]["id"] == bare.json()["data"]["id"]
    assert len(listed_ids(client, chat["id"])) == 2


def test_a_key_reused_for_another_body_or_chat_is_409_and_changes_nothing(
    client: TestClient, workflow: dict[str, Any], enqueued: list[Enqueued]
) -> None:
    chat = new_chat(client)
    other_chat = new_chat(client, "other")
    first = post_run(client, chat["id"], {"workflowId": workflow["id"], "input": {"name": "Ada"}}, "k-1")
    assert first.status_code == 202

    for chat_id, body in (
        (chat["id"], {"workflowId": workflow["id"], "input": {"name": "Grace"}}),
        (chat["id"], {"workflowId": workflow["id"]}),
        (other_chat["id"], {"workflowId": workflow["id"], "input": {"name": "Ada"}}),
    ):
        reused = post_run(client, chat_id, body, "k-1")
        assert reused.status_code == 409, reused.text
        assert REPLAYED not in reused.headers
        error = reused.json()
        assert set(error) == {"error", "message"}
        assert error["error"] == "Conflict" and HEADER in error["message"]

    assert listed_ids(client, chat["id"]) == [first.json()["data"]["id"]]
    assert listed_ids(client, other_chat["id"]) == []
    assert len(enqueued) == 1
    # The first request still replays.
    replay = post_run(client, chat["id"], {"workflowId": workflow["id"], "input": {"name": "Ada"}}, "k-1")
    assert replay.status_code == 202 and replay.json()["data"]["id"] == first.json()["data"]["id"]


def test_keys_are_per_user(client: TestClient) -> None:
    sign_up(client, "ada@example.com")
    ada_workflow = create_workflow(client, [step("say", "template", {"template": "a"})])
    ada_chat = new_chat(client)
    ada_run = post_run(client, ada_chat["id"], {"workflowId": ada_workflow["id"]}, "shared-key")
    assert ada_run.status_code == 202
    client.cookies.clear()
    sign_up(client, "grace@example.com", "Grace")
    grace_workflow = create_workflow(client, [step("say", "template", {"template": "g"})])
    grace_chat = new_chat(client)
    grace_run = post_run(client, grace_chat["id"], {"workflowId": grace_workflow["id"]}, "shared-key")
    assert grace_run.status_code == 202, grace_run.text
    assert REPLAYED not in grace_run.headers
    assert grace_run.json()["data"]["id"] != ada_run.json()["data"]["id"]
    assert listed_ids(client, grace_chat["id"]) == [grace_run.json()["data"]["id"]]


def test_a_key_is_free_again_after_24_hours(
    client: TestClient, workflow: dict[str, Any], clock: Callable[[timedelta], None]
) -> None:
    chat = new_chat(client)
    body = {"workflowId": workflow["id"], "input": {"name": "Ada"}}
    first = post_run(client, chat["id"], body, "daily").json()["data"]

    clock(timedelta(hours=23, minutes=59))
    assert post_run(client, chat["id"], body, "daily").json()["data"]["id"] == first["id"]
    # Within the day another body is still refused...
    assert post_run(client, chat["id"], {"workflowId": workflow["id"]}, "daily").status_code == 409

    # ...and after it the key starts a new run, for any request; the expired use is replaced.
    clock(timedelta(hours=24, seconds=1))
    later = post_run(client, chat["id"], {"workflowId": workflow["id"]}, "daily")
    assert later.status_code == 202, later.text
    assert REPLAYED not in later.headers
    second = later.json()["data"]
    assert second["id"] != first["id"]
    replay = post_run(client, chat["id"], {"workflowId": workflow["id"]}, "daily")
    assert replay.headers[REPLAYED] == "true" and replay.json()["data"]["id"] == second["id"]
    assert post_run(client, chat["id"], body, "daily").status_code == 409
    assert listed_ids(client, chat["id"]) == [first["id"], second["id"]]


@pytest.mark.parametrize(
    "key",
    ["", "with space", "tab\there", "x" * 256, "caf\u00e9".encode(), b"bell\x7f"],
    ids=["empty", "space", "tab", "too-long", "non-ascii", "del"],
)
def test_a_malformed_key_is_400(client: TestClient, workflow: dict[str, Any], key: str | bytes) -> None:
    chat = new_chat(client)
    response = post_run(client, chat["id"], {"workflowId": workflow["id"]}, key)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "Bad Request"
    assert body["details"] == [{"field": HEADER, "message": "must be 1 to 255 visible ASCII characters (no spaces)"}]
    assert listed_ids(client, chat["id"]) == []


def test_the_widest_keys_are_accepted(client: TestClient, workflow: dict[str, Any]) -> None:
    chat = new_chat(client)
    for key in ("x" * 255, "!", "".join(chr(c) for c in range(0x21, 0x7F))):
        response = post_run(client, chat["id"], {"workflowId": workflow["id"]}, key)
        assert response.status_code == 202, (key, response.text)


def test_precedence_is_kept(client: TestClient) -> None:
    sign_up(client, "owner@example.com")
    owner_workflow = create_workflow(client, [step("say", "template", {"template": "a"})])
    chat = new_chat(client)
    client.cookies.clear()

    body = {"workflowId": owner_workflow["id"]}
    for key in ("bad key", "good-key"):
        no_session = post_run(client, chat["id"], body, key)
        assert no_session.status_code == 401, no_session.text
        assert no_session.json() == {"error": "Unauthorized", "message": "A valid session is required."}
    assert post_run(client, "not-a-uuid", body, "bad key").status_code == 401

    sign_up(client, "other@example.com")
    assert post_run(client, str(uuid.uuid4()), body, "bad key").status_code == 400
    assert post_run(client, chat["id"], body, "bad key").status_code == 400
    assert post_run(client, str(uuid.uuid4()), body, "good-key").status_code == 404
    assert post_run(client, chat["id"], body, "good-key").status_code == 403


def test_without_the_header_every_request_starts_a_run(
    client: TestClient, workflow: dict[str, Any], enqueued: list[Enqueued]
) -> None:
    chat = new_chat(client)
    body = {"workflowId": workflow["id"]}
    responses = [post_run(client, chat["id"], body) for _ in range(3)]
    assert [r.status_code for r in responses] == [202, 202, 202]
    assert all(REPLAYED not in r.headers for r in responses)
    ids = [r.json()["data"]["id"] for r in responses]
    assert len(set(ids)) == 3 and listed_ids(client, chat["id"]) == ids
    assert len(enqueued) == 3


def test_a_request_racing_an_uncommitted_one_waits_and_answers_with_its_run(
    client: TestClient, workflow: dict[str, Any], user: dict[str, Any]
) -> None:
    """The second request's transaction runs while the first has created its run but not committed: it must wait
    for the first (SQLite: for the write lock; PostgreSQL: for the chat lock, then the key's unique index fails)
    and answer with the first one's run without creating or queueing one.

    The first run is handed to the executor only after its commit: this test holds that transaction open far longer
    than a request does, and on PostgreSQL a run dequeued before its row is visible is never started."""
    chat_id = uuid.UUID(new_chat(client)["id"])
    user_id = uuid.UUID(user["id"])
    data = RunCreate.model_validate({"workflowId": workflow["id"], "input": {"name": "Ada"}})
    database = client.app.state.database  # type: ignore[attr-defined]
    executor = client.app.state.executor  # type: ignore[attr-defined]
    first_queued: list[Enqueued] = []
    second_queued: list[Enqueued] = []
    outcome: list[idempotency.Created] = []

    def second_request() -> None:
        with database.writing() as session:
            chat = session.get(Chat, chat_id)
            outcome.append(
                idempotency.create_run(
                    chat, data, user_id=user_id, key="race", enqueue=second_queued.append, session=session
                )
            )

    racer = threading.Thread(target=second_request)
    with database.writing() as session:
        chat = session.get(Chat, chat_id)
        first = idempotency.create_run(
            chat, data, user_id=user_id, key="race", enqueue=first_queued.append, session=session
        )
        racer.start()
        time.sleep(0.5)
        assert racer.is_alive(), "the second request should wait for the first transaction"
    racer.join(30)
    assert not racer.is_alive()
    for item in first_queued:
        executor.enqueue(item)

    assert first.replayed is False and [item.run_id for item in first_queued] == [first.run_id]
    assert outcome == [idempotency.Created(first.run_id, True)]
    assert second_queued == []
    assert listed_ids(client, str(chat_id)) == [str(first.run_id)]
    assert wait_for_run(client, str(chat_id), str(first.run_id))["status"] == "completed"
