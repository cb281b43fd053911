import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, new_chat, sign_up


def test_create_get_and_delete_chat(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client, "Plans")
    assert set(chat) == {"id", "userId", "title", "workflowId", "createdAt", "updatedAt"}
    assert chat["userId"] == user["id"] and chat["title"] == "Plans"
    assert uuid.UUID(chat["id"]).version == 4 and chat["id"] == chat["id"].lower()
    assert client.get(f"/api/chats/{chat['id']}").json()["data"] == chat
    assert client.get(f"/api/chats/{chat['id'].upper()}").status_code == 200
    assert client.delete(f"/api/chats/{chat['id']}").status_code == 204
    for path in (f"/api/chats/{chat['id']}", f"/api/chats/{chat['id']}/workflow-runs"):
        gone = client.get(path)
        assert gone.status_code == 404
        assert gone.json()["error"] == "Not Found"
    assert client.delete(f"/api/chats/{chat['id']}").status_code == 404


def test_chat_without_body_has_no_title(client: TestClient, user: dict[str, Any]) -> None:
    response = client.post("/api/chats")
    assert response.status_code == 201
    assert response.json()["data"]["title"] is None


def test_list_chats_newest_first_with_cursor(client: TestClient, user: dict[str, Any]) -> None:
    created = [new_chat(client, f"chat {i}")["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/api/users/{user['id']}/chats", params=params).json()["data"]
        seen += [c["id"] for c in page["chats"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))
    bad = client.get(f"/api/users/{user['id']}/chats", params={"cursor": "!!not-a-cursor"})
    assert bad.status_code == 400
    assert client.get(f"/api/users/{user['id']}/chats", params={"limit": 0}).status_code == 400
    assert client.get(f"/api/users/{user['id']}/chats", params={"limit": 101}).status_code == 400


def test_another_users_chat_is_forbidden_everywhere(client: TestClient) -> None:
    owner = sign_up(client, "owner@example.com")
    chat = new_chat(client)
    client.cookies.clear()
    sign_up(client, "intruder@example.com")
    base = f"/api/chats/{chat['id']}"
    for method, path in (
        ("GET", base),
        ("DELETE", base),
        ("GET", f"{base}/workflow-runs"),
        ("GET", f"/api/users/{owner['id']}/chats"),
    ):
        response = client.request(method, path)
        assert response.status_code == 403, (method, path)
        assert response.json()["error"] == "Forbidden"
    assert client.get(f"/api/users/{uuid.uuid4()}/chats").status_code == 404
    client.cookies.clear()
    client.post("/api/auth/sign-in/email", json={"email": "owner@example.com", "password": PASSWORD})
    assert client.get(base).status_code == 200
