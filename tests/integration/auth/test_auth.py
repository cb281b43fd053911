import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import PASSWORD, sign_up

SIGN_UP = "/api/auth/sign-up/email"
SIGN_IN = "/api/auth/sign-in/email"


def test_sign_up_returns_user_and_sets_a_safe_cookie(client: TestClient) -> None:
    response = client.post(SIGN_UP, json={"email": "Ada@Example.com", "password": PASSWORD, "name": "Ada"})
    assert response.status_code == 201
    user = response.json()["data"]["user"]
    assert set(user) == {"id", "email", "name", "createdAt"}
    assert user["email"] == "ada@example.com"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("runwire_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert PASSWORD not in response.text


def test_secure_cookie_when_configured(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(secure_cookies=True)
    response = client.post(SIGN_UP, json={"email": "a@example.com", "password": PASSWORD, "name": "A"})
    assert "Secure" in response.headers["set-cookie"]


def test_sign_up_conflict_and_validation(client: TestClient) -> None:
    sign_up(client)
    again = client.post(SIGN_UP, json={"email": "ADA@example.com", "password": PASSWORD, "name": "Ada"})
    assert again.status_code == 409
    assert again.json()["error"] == "Conflict"
    short = client.post(SIGN_UP, json={"email": "b@example.com", "password": "short", "name": "B"})
    assert short.status_code == 400
    assert short.json()["details"][0]["field"] == "password"
    bad_email = client.post(SIGN_UP, json={"email": "nope", "password": PASSWORD, "name": "B"})
    assert bad_email.status_code == 400


def test_session_endpoint_and_sign_in_issues_a_new_session(client: TestClient) -> None:
    user = sign_up(client)
    first = client.cookies.get("runwire_session")
    session = client.get("/api/auth/session")
    assert session.status_code == 200
    assert session.json()["data"]["user"]["id"] == user["id"]
    assert session.json()["data"]["session"]["expiresAt"].endswith("Z")
    signed_in = client.post(SIGN_IN, json={"email": "ada@example.com", "password": PASSWORD})
    assert signed_in.status_code == 200
    assert client.cookies.get("runwire_session") != first


def test_wrong_password_and_unknown_email_get_the_same_answer(client: TestClient) -> None:
    sign_up(client)
    client.cookies.clear()
    wrong = client.post(SIGN_IN, json={"email": "ada@example.com", "password": "not the password"})
    unknown = client.post(SIGN_IN, json={"email": "nobody@example.com", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers


def test_sign_out_revokes_only_its_own_session(client: TestClient) -> None:
    sign_up(client)
    other = client.post(SIGN_IN, json={"email": "ada@example.com", "password": PASSWORD})
    assert other.status_code == 200
    other_token = client.cookies.get("runwire_session")
    first = client.post(SIGN_IN, json={"email": "ada@example.com", "password": PASSWORD})
    assert first.status_code == 200
    out = client.post("/api/auth/sign-out")
    assert out.status_code == 204
    assert 'runwire_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert client.get("/api/auth/session").status_code == 401
    client.cookies.set("runwire_session", other_token or "")
    assert client.get("/api/auth/session").status_code == 200


def test_revoked_token_stays_revoked(client: TestClient) -> None:
    sign_up(client)
    token = client.cookies.get("runwire_session") or ""
    assert client.post("/api/auth/sign-out").status_code == 204
    client.cookies.set("runwire_session", token)
    assert client.get("/api/auth/session").status_code == 401


def test_session_expires(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(session_ttl_hours=1 / 3600)  # one second
    sign_up(client)
    assert client.get("/api/auth/session").status_code == 200
    time.sleep(1.2)
    expired = client.get("/api/auth/session")
    assert expired.status_code == 401
    assert expired.json() == {"error": "Unauthorized", "message": "A valid session is required."}


def test_garbage_cookie_is_401(client: TestClient, user: dict[str, Any]) -> None:
    # In place of the session's cookie: a second cookie of the same name would leave which one is sent to the jar.
    client.cookies.set("runwire_session", "forged", domain="testserver.local")
    assert client.get("/api/auth/session").status_code == 401
