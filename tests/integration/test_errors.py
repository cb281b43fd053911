"""One error shape for everything, request ids, the cross-site guard, and what the logs never hold."""

import logging
import random
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import ORIGIN, PASSWORD, new_chat, sign_up


def assert_error_shape(body: dict[str, Any], error: str) -> None:
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"error", "message", "details"}


def test_unknown_route_and_wrong_method(client: TestClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert_error_shape(missing.json(), "Not Found")
    wrong = client.put("/api/liveness")
    assert wrong.status_code == 405
    assert_error_shape(wrong.json(), "Method Not Allowed")


def test_malformed_json_and_validation_are_400(client: TestClient) -> None:
    sign_up(client)
    bad_json = client.post("/api/chats", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    assert_error_shape(bad_json.json(), "Bad Request")
    assert bad_json.json()["details"][0]["field"] == "body"
    bad_field = client.post("/api/chats", json={"title": 5})
    assert bad_field.status_code == 400
    assert bad_field.json()["details"][0]["field"] == "title"
    extra = client.post("/api/chats", json={"title": "x", "surprise": 1})
    assert extra.status_code == 400


def test_malformed_body_without_session_is_401(client: TestClient) -> None:
    response = client.post("/api/chats", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 401


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    sign_up(client)
    response = client.post(
        "/api/chats",
        content=b'{"title": "' + b"x" * (1024 * 1024 + 10) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert_error_shape(response.json(), "Content Too Large")


def test_unexpected_exception_is_a_bare_500(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(client)

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("runwire.chats.service.create_chat", explode)
    response = client.post("/api/chats", json={})
    assert response.status_code == 500
    assert response.json() == {
        "error": "Internal Server Error",
        "message": "An unexpected error occurred; it has been logged.",
    }
    assert "secret" not in response.text
    assert response.headers["x-request-id"]


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    echoed = client.get("/api/liveness", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    made = client.get("/api/liveness", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces" and len(made.headers["x-request-id"]) == 32
    # Made ids never repeat, even when something reseeds the random module between requests.
    made_ids, kept = set(), random.getstate()
    try:
        for _ in range(3):
            random.seed(7)
            made_ids.add(client.get("/api/liveness").headers["x-request-id"])
    finally:
        random.setstate(kept)
    assert len(made_ids) == 3 and all(re.fullmatch("[0-9a-f]{32}", made_id) for made_id in made_ids)


def test_liveness(client: TestClient) -> None:
    response = client.get("/api/liveness")
    assert response.status_code == 200
    assert response.json() == {"data": {"status": "ok"}}


def test_cross_origin_writes_are_refused(client: TestClient) -> None:
    sign_up(client)
    evil = client.post("/api/chats", json={}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert_error_shape(evil.json(), "Forbidden")
    assert client.post("/api/chats", json={}, headers={"Origin": ORIGIN}).status_code == 201
    assert client.get("/api/liveness", headers={"Origin": "https://evil.example"}).status_code == 200
    form = client.post("/api/chats", content=b"title=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    assert_error_shape(form.json(), "Unsupported Media Type")


def test_cross_origin_refusal_changes_nothing(client: TestClient) -> None:
    user = sign_up(client)
    chat = new_chat(client)
    response = client.delete(f"/api/chats/{chat['id']}", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert client.get(f"/api/chats/{chat['id']}").status_code == 200
    assert len(client.get(f"/api/users/{user['id']}/chats").json()["data"]["chats"]) == 1


def test_logs_hold_no_secret(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="runwire")
    logging.getLogger("runwire").addHandler(caplog.handler)
    try:
        sign_up(client)
        token = client.cookies.get("runwire_session") or ""
        client.post("/api/auth/sign-in/email", json={"email": "ada@example.com", "password": PASSWORD})
        client.get("/api/auth/session")
        client.post("/api/auth/sign-in/email", json={"email": "ada@example.com", "password": "wrong password"})
    finally:
        logging.getLogger("runwire").removeHandler(caplog.handler)
    access = [r for r in caplog.records if r.name == "runwire.access"]
    assert {(r.method, r.path, r.status) for r in access} >= {  # type: ignore[attr-defined]
        ("POST", "/api/auth/sign-up/email", 201),
        ("GET", "/api/auth/session", 200),
        ("POST", "/api/auth/sign-in/email", 401),
    }
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert PASSWORD not in text and token not in text and "wrong password" not in text
