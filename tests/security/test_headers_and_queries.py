"""Headers and query values that are not what they must be: a 400 naming them, whatever their size or encoding,
never a 500, and nothing changes."""

import base64

import pytest
from fastapi.testclient import TestClient

from tests.helpers import StoredData, assert_refused, start_run, wait_for_run

LISTS = (
    "/api/chats/{chatId}/workflow-runs?limit=5&cursor={cursor}",
    "/api/chats/{chatId}/workflow-runs?order=desc&cursor={cursor}",
    "/api/users/{userId}/chats?cursor={cursor}",
    "/api/users/{userId}/workflows?cursor={cursor}",
)


def _cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "key",
    [
        "[1e999]",
        "[NaN]",
        "[99999999999999999999999]",
        "[9223372036854775808]",
        "[-1]",
        "[true]",
        "[" * 5000,
        "[" * 5000 + "]" * 5000,
        '["\\u0000"]',
        '["2024-02-04T12:00:00+00:00", 5]',
        '["9999-12-31T23:59:59-23:59", "00000000-0000-4000-8000-000000000000"]',
        '["0001-01-01T00:00:00+23:59", "00000000-0000-4000-8000-000000000000"]',
        '{"a": 1}',
    ],
)
def test_a_cursor_not_issued_here_is_400(
    client: TestClient, world: dict[str, str], stored: StoredData, key: str
) -> None:
    stored.mark()
    for path in LISTS:
        response = client.get(path.format(cursor=_cursor(key), **world))
        assert_refused(response, 400, "Bad Request", "cursor")
    stored.assert_unchanged()


@pytest.mark.parametrize(
    "query",
    [
        "status=%00",
        "status=completed%00",
        "status=%FF%FE",
        "workflowId=%00",
        "workflowId=%FF",
        "order=%00",
        "order=DESC",
        "limit=%00",
        "limit=true",
        "limit=1e400",
        "limit=99999999999999999999999",
        "limit=%C2%B2",
        "cursor=%00",
        "cursor=%FF",
    ],
)
def test_garbage_in_a_query_value_is_400(
    client: TestClient, world: dict[str, str], stored: StoredData, query: str
) -> None:
    stored.mark()
    response = client.get(f"/api/chats/{world['chatId']}/workflow-runs?{query}")
    assert_refused(response, 400, "Bad Request", query.split("=")[0])
    stored.assert_unchanged()


@pytest.mark.parametrize(
    "value",
    [
        "²".encode("latin-1"),
        "¹³".encode("latin-1"),
        "²".encode(),
        b"9" * 5000,
        b"9223372036854775808",
        b"-1",
        b"1.5",
        b"1 2",
        b"0x10",
        b"\xff",
        b"",
    ],
)
def test_a_last_event_id_that_is_not_an_event_id_is_400(
    client: TestClient, world: dict[str, str], stored: StoredData, value: bytes
) -> None:
    run = start_run(client, world["chatId"], world["workflowId"])
    wait_for_run(client, world["chatId"], run["id"])
    stored.mark()
    path = f"/api/chats/{world['chatId']}/workflow-runs/{run['id']}/stream"
    response = client.get(path, headers=[(b"Last-Event-ID", value)])
    assert_refused(response, 400, "Bad Request", "Last-Event-ID")
    stored.assert_unchanged()


def test_a_last_event_id_replays_what_came_after_it(client: TestClient, world: dict[str, str]) -> None:
    run = start_run(client, world["chatId"], world["workflowId"])
    wait_for_run(client, world["chatId"], run["id"])
    path = f"/api/chats/{world['chatId']}/workflow-runs/{run['id']}/stream"
    everything = client.get(path).text
    after_first = client.get(path, headers={"Last-Event-ID": "1"}).text
    assert "id: 1\r\n" in everything and "id: 1\r\n" not in after_first and "id: 2\r\n" in after_first


def test_a_bad_header_on_someone_elses_path_is_400_before_404(
    client: TestClient, world: dict[str, str], stored: StoredData
) -> None:
    stored.mark()
    path = f"/api/chats/{world['chatId']}/workflow-runs/00000000-0000-4000-8000-000000000000/stream"
    assert_refused(client.get(path, headers=[(b"Last-Event-ID", b"\xb2")]), 400, "Bad Request", "Last-Event-ID")
    stored.assert_unchanged()


@pytest.mark.parametrize("key", ["é".encode("latin-1"), "é".encode(), b"k" * 10_000, b"a\x01", b" "])
def test_a_malformed_idempotency_key_is_400(
    client: TestClient, world: dict[str, str], stored: StoredData, key: bytes
) -> None:
    stored.mark()
    response = client.post(
        f"/api/chats/{world['chatId']}/workflow-runs",
        json={"workflowId": world["workflowId"]},
        headers=[(b"Idempotency-Key", key)],
    )
    assert_refused(response, 400, "Bad Request", "Idempotency-Key")
    stored.assert_unchanged()


def test_a_bad_cursor_without_a_session_is_401(client: TestClient, world: dict[str, str]) -> None:
    client.cookies.clear()
    for path in LISTS:
        response = client.get(path.format(cursor=_cursor("[1e999]"), **world))
        assert_refused(response, 401, "Unauthorized")
