"""A run's detail and a chat's messages answer with an ETag like the run list: a matching If-None-Match is a 304
while nothing in the chat changed, and never once something has; the contract's error order holds on this path. The
path's own parts: the session read sent to the driver directly, and the fast lane."""

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Header, Response
from fastapi.testclient import TestClient

from runwire.auth.service import hash_token
from runwire.chats import service as chats_service
from runwire.chats.service import ChatAccess
from runwire.db import utcnow
from runwire.driver import DriverStatement
from runwire.fastlane import FastLane, route_to
from tests.factories import POSTGRES_ADMIN_URL
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


def test_the_session_read_sends_what_sqlalchemy_would(client: TestClient, user: dict[str, Any]) -> None:
    """The session read goes to the driver directly (`driver.DriverStatement`): the SQL and the values it sends are
    those SQLAlchemy's own execution of the statement sends, and the row answers alike."""
    database = client.app.state.database  # type: ignore[attr-defined]
    chat = new_chat(client)
    token_hash = hash_token(client.cookies["runwire_session"])
    statement = DriverStatement(chats_service.ACCESS, database.engine.dialect)
    sent: list[tuple[str, Any]] = []
    for now in (utcnow(), utcnow().replace(microsecond=0)):
        values = {"chat_key": uuid.UUID(chat["id"]), "token_hash": token_hash, "now": now}
        sent.clear()
        with database.statements() as connection:
            sa.event.listen(connection, "before_cursor_execute", lambda *args: sent.append((args[2], args[3])))
            through_sqlalchemy = connection.execute(chats_service.ACCESS, values).one()
            direct = statement.first(connection.connection.driver_connection, values)
        assert sent == [(statement.sql, statement.parameters(values))]
        assert ChatAccess.from_row(direct).user_id == through_sqlalchemy.user_id == uuid.UUID(user["id"])
        assert ChatAccess.from_row(direct).owned and ChatAccess.from_row(direct).version == through_sqlalchemy[3]


def test_the_list_reads_on_after_the_database_drops_its_connections(
    app_factory: Callable[..., TestClient], database_url: str | None
) -> None:
    if database_url is None:
        pytest.skip("a SQLite file cannot drop its own process's connections; PostgreSQL can")
    client = app_factory()
    sign_up(client)
    path = f"/api/chats/{new_chat(client)['id']}/workflow-runs"

    def lists_at_once() -> None:
        """Lists read at once, as the session reads of concurrent requests, on several connections."""
        with ThreadPoolExecutor(8) as pool:
            listed = list(pool.map(lambda _: client.get(path), range(32)))
        assert {(response.status_code, response.text) for response in listed} == {(200, '{"data":{"workflowRuns":[]}}')}

    lists_at_once()
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database_url.rsplit("/", 1)[1],),
        )
    lists_at_once()


def test_the_fast_lane_answers_as_the_route_does(client: TestClient, user: dict[str, Any]) -> None:
    """A GET without a query string is answered by the fast lane (`fastlane.py`), one with a query string by
    FastAPI's own route: the same endpoint, the same answer."""
    assert isinstance(client.app.request_layer.keywords["lane"], FastLane)  # type: ignore[attr-defined]
    chat = new_chat(client)
    workflow = create_workflow(client, [step("say", "template", {"template": "hi"})])
    run = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    others = (mallory_of(client), anonymous_of(client))
    for path in (f"/api/chats/{chat['id']}/workflow-runs", f"/api/chats/{chat['id']}/workflow-runs/{run['id']}"):
        fast, routed = client.get(path), client.get(path, params={"ignored": "1"})
        assert (fast.status_code, fast.content) == (routed.status_code, routed.content) == (200, fast.content)
        assert {**fast.headers, "x-request-id": ""} == {**routed.headers, "x-request-id": ""}
        for other in others:
            assert (other.get(path).status_code, other.get(path).json()) == (
                other.get(path, params={"ignored": "1"}).status_code,
                other.get(path, params={"ignored": "1"}).json(),
            )
    assert client.get("/api/liveness").content == client.get("/api/liveness?ignored=1").content


def mallory_of(client: TestClient) -> TestClient:
    mallory = anonymous_of(client)
    sign_up(mallory, "mallory@example.com", "Mallory")
    return mallory


def anonymous_of(client: TestClient) -> TestClient:
    other = TestClient(client.app, raise_server_exceptions=False)
    other.portal = client.portal
    return other


def test_a_route_the_fast_lane_would_call_wrongly_is_refused() -> None:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def with_a_header(item_id: str, key: Annotated[str | None, Header()] = None) -> Response:
        return Response()

    @router.get("/numbers/{number}")
    async def with_a_number(number: int) -> Response:
        return Response()

    @router.get("/things")
    def not_a_coroutine() -> Response:
        return Response()

    @router.get("/dicts")
    async def returns_a_dict() -> dict[str, str]:
        return {}

    for endpoint in (with_a_header, with_a_number, not_a_coroutine, returns_a_dict):
        with pytest.raises(TypeError, match="cannot take the fast lane"):
            FastLane([route_to(router, endpoint)])
