"""The error codes of GET /api/chats/:chatId/workflow-runs and their precedence: 401 → 400 → 404 → 403."""

import uuid

from fastapi.testclient import TestClient

from tests.helpers import new_chat, sign_up


def runs_path(chat_id: str) -> str:
    return f"/api/chats/{chat_id}/workflow-runs"


def test_owned_chat_with_no_runs(client: TestClient) -> None:
    sign_up(client)
    chat = new_chat(client)
    response = client.get(runs_path(chat["id"]), headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": {"workflowRuns": []}}


def test_no_session_comes_first(client: TestClient) -> None:
    for chat_id in ("not-a-uuid", str(uuid.uuid4())):
        response = client.get(runs_path(chat_id))
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized", "message": "A valid session is required."}


def test_bad_id_then_missing_then_forbidden(client: TestClient) -> None:
    sign_up(client, "owner@example.com")
    chat = new_chat(client)
    client.cookies.clear()
    sign_up(client, "other@example.com")
    for bad in (
        "not-a-uuid",
        "1234",
        "550e8400e29b41d4a716446655440000",
        "{550e8400-e29b-41d4-a716-446655440000}",
    ):
        response = client.get(runs_path(bad))
        assert response.status_code == 400, bad
        assert response.json()["error"] == "Bad Request"
        assert response.json()["details"] == [{"field": "chatId", "message": "is not a UUID"}]
    missing = client.get(runs_path(str(uuid.uuid4())))
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found", "message": "Chat not found."}
    forbidden = client.get(runs_path(chat["id"]))
    assert forbidden.status_code == 403
    assert forbidden.json() == {"error": "Forbidden", "message": "You cannot access another user's chat."}


def test_a_malformed_body_is_400_ahead_of_a_missing_or_foreign_resource(client: TestClient) -> None:
    sign_up(client, "owner@example.com")
    chat = new_chat(client)
    workflow = client.post("/api/workflows", json={"name": "w", "steps": []})
    assert workflow.status_code == 201, workflow.text
    client.cookies.clear()
    sign_up(client, "other@example.com")
    missing = str(uuid.uuid4())
    for method, path, body in (
        ("POST", runs_path(missing), {"workflowId": "not-a-uuid"}),
        ("POST", runs_path(chat["id"]), {}),
        ("PATCH", f"/api/workflows/{missing}", {"steps": [{"id": 1}]}),
        ("PATCH", f"/api/workflows/{workflow.json()['data']['id']}", {"name": 42}),
    ):
        response = client.request(method, path, json=body)
        assert response.status_code == 400, (method, path, response.text)
        assert response.json()["error"] == "Bad Request" and response.json()["details"]
    assert client.post(runs_path(missing), json={"workflowId": str(uuid.uuid4())}).status_code == 404
    assert client.post(runs_path(chat["id"]), json={"workflowId": str(uuid.uuid4())}).status_code == 403
