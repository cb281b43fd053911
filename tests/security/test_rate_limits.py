"""Rate limits as the contract sets them: 429 with Retry-After in the error shape, counted in the database (shared
by every app on it), checked first on sign-in and sign-up and after the 401/400/404/403 checks elsewhere. A refused
request changes no stored data. Each case runs on SQLite and PostgreSQL."""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import ValidationError

from runwire.config import Settings
from runwire.db import Database
from runwire.deps import Quota, current_auth
from runwire.main import create_app
from runwire.ratelimits.models import RateLimitCounter
from tests.factories import REAL_PASSWORD_COST, make_settings
from tests.helpers import PASSWORD, StoredData, assert_refused, create_workflow, new_chat, sign_up, step, wait_for_run

SIGN_IN = "/api/auth/sign-in/email"
SIGN_UP = "/api/auth/sign-up/email"
PUBLIC_WRITES = {SIGN_IN, SIGN_UP}


def default(name: str) -> Any:
    return Settings.model_fields[name].default


DEFAULT_SIGN_IN_LIMITS = {
    name: default(name)
    for name in (
        "rate_limit_sign_in_per_email",
        "rate_limit_sign_in_per_address",
        "rate_limit_sign_in_window_seconds",
    )
}


def sign_in(client: TestClient, email: str = "ada@example.com", password: str = "wrong password", **kw: Any) -> Any:
    return client.post(SIGN_IN, json={"email": email, "password": password}, **kw)


def assert_limited(response: Any, window_seconds: int) -> None:
    """Refused with a Retry-After that a sliding window allows: at most the rest of this window and a whole next."""
    assert_refused(response, 429, "Too Many Requests")
    assert 1 <= int(response.headers["Retry-After"]) <= 2 * window_seconds, response.headers


def other_client(client: TestClient, address: tuple[str, int] = ("testclient", 50000)) -> TestClient:
    """Another user agent (own cookies, optionally another peer address) on the same running app, in the app's
    event loop (its semaphores belong to that loop)."""
    other = TestClient(client.app, raise_server_exceptions=False, client=address)
    other.portal = client.portal
    return other


def counters(client: TestClient, rule: str) -> list[int]:
    database: Database = client.app.state.database  # type: ignore[attr-defined]
    with database.reading() as session:
        return list(session.scalars(sa.select(RateLimitCounter.hits).where(RateLimitCounter.rule == rule)))


# Sign-in


def test_default_limits_refuse_the_right_password_after_ten_wrong_ones(app_factory: Callable[..., TestClient]) -> None:
    assert DEFAULT_SIGN_IN_LIMITS["rate_limit_sign_in_per_email"] == 10
    client = app_factory(**DEFAULT_SIGN_IN_LIMITS)
    sign_up(client)
    client.cookies.clear()
    for _ in range(10):
        assert_refused(sign_in(client), 401, "Unauthorized")
    stored = StoredData(client)
    stored.mark()
    limited = sign_in(client, password=PASSWORD)
    assert_limited(limited, 15 * 60)
    assert "runwire_session" not in limited.cookies
    stored.assert_unchanged()


def test_sign_in_is_limited_whatever_the_credentials_or_body(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(rate_limit_sign_in_per_email=2, rate_limit_sign_in_per_address=3)
    sign_up(client)
    for _ in range(2):
        assert_refused(sign_in(client), 401, "Unauthorized")
    assert_limited(sign_in(client, password=PASSWORD), 900)  # the email's limit: 3 attempts on the address now
    # The address's limit: any email, any body.
    assert_limited(sign_in(client, email="nobody@example.com"), 900)
    assert_limited(client.post(SIGN_IN, content=b"{not json", headers={"Content-Type": "application/json"}), 900)
    assert_limited(client.post(SIGN_IN, json={"email": 5}), 900)


def test_a_malformed_sign_in_under_the_limits_is_400(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(rate_limit_sign_in_per_address=5)
    bad = client.post(SIGN_IN, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_refused(bad, 400, "Bad Request", field="body")
    assert_refused(client.post(SIGN_IN, json={"email": "a@example.com"}), 400, "Bad Request", field="password")


def test_the_address_limit_spans_emails_and_a_success_does_not_reset_it(
    app_factory: Callable[..., TestClient],
) -> None:
    client = app_factory(rate_limit_sign_in_per_email=100, rate_limit_sign_in_per_address=4)
    sign_up(client)
    for index in range(3):
        assert_refused(sign_in(client, email=f"guess{index}@example.com"), 401, "Unauthorized")
    assert sign_in(client, password=PASSWORD).status_code == 200  # not counted, and resets nothing
    assert_refused(sign_in(client, email="guess3@example.com"), 401, "Unauthorized")
    assert_limited(sign_in(client, password=PASSWORD), 900)
    # Another address is not held up.
    assert sign_in(other_client(client, ("203.0.113.9", 4000)), password=PASSWORD).status_code == 200


def test_successful_sign_ins_are_not_counted(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(rate_limit_sign_in_per_email=2, rate_limit_sign_in_per_address=2)
    sign_up(client)
    for _ in range(5):
        assert sign_in(client, password=PASSWORD).status_code == 200
    assert counters(client, "sign-in-email") == [0]


# Sign-up


def test_sign_ups_are_limited_per_address(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(rate_limit_sign_ups_per_address=3)
    sign_up(client, "a@example.com")
    sign_up(client, "b@example.com")
    taken = client.post(SIGN_UP, json={"email": "a@example.com", "password": PASSWORD, "name": "A"})
    assert_refused(taken, 409, "Conflict")  # every attempt counts
    stored = StoredData(client)
    stored.mark()
    assert_limited(client.post(SIGN_UP, json={"email": "c@example.com", "password": PASSWORD, "name": "C"}), 3600)
    assert_limited(client.post(SIGN_UP, json={"email": "not an email"}), 3600)
    stored.assert_unchanged()
    sign_up(other_client(client, ("203.0.113.9", 4000)), "d@example.com")


# Signed-in users


def test_starting_work_is_limited_per_user(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(rate_limit_starts_per_minute=2)
    sign_up(client)
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "template", {"template": "x"})])
    path = f"/api/chats/{chat['id']}/workflow-runs"
    for _ in range(2):
        response = client.post(path, json={"workflowId": workflow["id"]})
        assert response.status_code == 202, response.text
        wait_for_run(client, chat["id"], response.json()["data"]["id"])
    stored = StoredData(client)
    stored.mark()
    assert_limited(client.post(path, json={"workflowId": workflow["id"]}), 60)
    stored.assert_unchanged()
    assert client.post("/api/chats", json={}).status_code == 201  # other writes have their own limit
    other = other_client(client)
    sign_up(other, "grace@example.com", "Grace")
    other_chat = new_chat(other)
    other_workflow = create_workflow(other, [step("a", "template", {"template": "x"})])
    response = other.post(f"/api/chats/{other_chat['id']}/workflow-runs", json={"workflowId": other_workflow["id"]})
    assert response.status_code == 202, response.text
    wait_for_run(other, other_chat["id"], response.json()["data"]["id"])


def test_other_writes_are_limited_per_user(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(rate_limit_writes_per_minute=3)
    sign_up(client)
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "template", {"template": "x"})])
    assert client.patch(f"/api/workflows/{workflow['id']}", json={"name": "renamed"}).status_code == 200
    stored = StoredData(client)
    stored.mark()
    assert_limited(client.delete(f"/api/chats/{chat['id']}"), 60)
    assert_limited(client.post("/api/chats", json={"title": "one more"}), 60)
    assert_limited(client.post("/api/auth/sign-out"), 60)
    stored.assert_unchanged()
    assert client.get(f"/api/chats/{chat['id']}").status_code == 200  # reads are not limited
    other = other_client(client)
    sign_up(other, "grace@example.com", "Grace")
    assert other.post("/api/chats", json={}).status_code == 201


def test_a_limited_user_still_hears_about_401_400_404_and_403_first(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(rate_limit_writes_per_minute=1, rate_limit_starts_per_minute=1)
    other = other_client(client)
    sign_up(other, "grace@example.com", "Grace")
    foreign_chat = new_chat(other)
    sign_up(client)
    chat = new_chat(client)  # the one write allowed this minute
    workflow_path = "/api/workflows/00000000-0000-4000-8000-000000000000"
    stored = StoredData(client)
    stored.mark()
    assert_refused(client.post("/api/chats", json={"title": 5}), 400, "Bad Request", field="title")
    assert_refused(client.post("/api/workflows", json={"name": ""}), 400, "Bad Request")
    assert_refused(client.delete("/api/chats/not-a-uuid"), 400, "Bad Request")
    assert_refused(client.patch(workflow_path, json={"name": "x"}), 404, "Not Found")
    assert_refused(client.delete(f"/api/chats/{foreign_chat['id']}"), 403, "Forbidden")
    anonymous = other_client(client)
    assert_refused(anonymous.delete(f"/api/chats/{chat['id']}"), 401, "Unauthorized")
    assert_limited(client.delete(f"/api/chats/{chat['id']}"), 60)
    runs = f"/api/chats/{chat['id']}/workflow-runs"
    assert_refused(client.post(runs, json={}), 400, "Bad Request", field="workflowId")
    stored.assert_unchanged()


def test_reads_are_not_limited_nor_counted_by_default(client: TestClient) -> None:
    user = sign_up(client)
    chat = new_chat(client)
    for _ in range(30):
        assert client.get(f"/api/chats/{chat['id']}").status_code == 200
        assert client.get(f"/api/users/{user['id']}/chats").status_code == 200
    assert counters(client, "reads") == []


def test_reads_are_limited_when_configured(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(rate_limit_reads_per_minute=3)
    sign_up(client)
    chat = new_chat(client)
    assert client.get(f"/api/chats/{chat['id']}").status_code == 200
    assert client.get("/api/tools").status_code == 200
    assert client.get("/api/auth/session").status_code == 200
    assert_limited(client.get(f"/api/chats/{chat['id']}"), 60)
    assert_refused(client.get("/api/chats/00000000-0000-4000-8000-000000000000"), 404, "Not Found")
    assert client.post("/api/chats", json={}).status_code == 201  # writes have their own limit


# Client addresses


def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(rate_limit_sign_in_per_address=1, trusted_proxies="10.0.0.0/8")
    assert_refused(sign_in(client, headers={"X-Forwarded-For": "198.51.100.1"}), 401, "Unauthorized")
    assert_limited(sign_in(client, headers={"X-Forwarded-For": "198.51.100.2"}), 900)


def test_x_forwarded_for_names_the_client_behind_a_trusted_proxy(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(rate_limit_sign_in_per_address=1, trusted_proxies="10.0.0.0/8, 127.0.0.1")
    proxy = other_client(client, ("127.0.0.1", 123))
    assert_refused(sign_in(proxy, headers={"X-Forwarded-For": "198.51.100.1"}), 401, "Unauthorized")
    assert_refused(sign_in(proxy, headers={"X-Forwarded-For": "198.51.100.2, 10.1.2.3"}), 401, "Unauthorized")
    # What the client wrote left of the address the trusted proxies saw changes nothing.
    spoofed = sign_in(proxy, headers={"X-Forwarded-For": "192.0.2.77, 198.51.100.1"})
    assert_limited(spoofed, 900)
    assert_limited(sign_in(proxy, headers={"X-Forwarded-For": "198.51.100.2"}), 900)


def test_malformed_limit_settings_fail_at_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RUNWIRE_TRUSTED_PROXIES", "10.0.0.0/8, not-a-network")
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings(data_dir=tmp_path)
    monkeypatch.delenv("RUNWIRE_TRUSTED_PROXIES")
    monkeypatch.setenv("RUNWIRE_RATE_LIMIT_WRITES_PER_MINUTE", "-1")
    with pytest.raises(ValidationError, match="rate_limit_writes_per_minute"):
        Settings(data_dir=tmp_path)


# Storage


def test_two_apps_on_one_database_share_the_counters(
    app_factory: Callable[..., TestClient], tmp_path: Path, database_url: str | None
) -> None:
    first = app_factory(rate_limit_sign_in_per_email=3)
    settings = make_settings(tmp_path, database_url=database_url, rate_limit_sign_in_per_email=3)
    with TestClient(create_app(settings, run_executor=False), raise_server_exceptions=False) as second:
        sign_up(first)
        assert_refused(sign_in(first), 401, "Unauthorized")
        assert_refused(sign_in(second), 401, "Unauthorized")
        assert_refused(sign_in(first), 401, "Unauthorized")
        assert_limited(sign_in(second, password=PASSWORD), 900)
        assert_limited(sign_in(first, password=PASSWORD), 900)


def test_windows_are_purged_once_they_no_longer_count(client: TestClient) -> None:
    database: Database = client.app.state.database  # type: ignore[attr-defined]
    hour = 3600
    current_end = (int(time.time()) // hour + 1) * hour
    with database.writing() as session:
        for window_end in (current_end - 2 * hour, current_end - hour):  # two windows ago; the previous one
            session.add(RateLimitCounter(rule="sign-up-address", subject="0" * 64, window_end=window_end, hits=7))
    sign_up(client)  # opens this window for the client's address
    assert sorted(counters(client, "sign-up-address")) == [1, 7]


def calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from calls(dependency)


def test_every_route_of_a_signed_in_user_has_its_quota_last(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    checked = 0
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path in PUBLIC_WRITES:
            continue
        signed_in = current_auth in set(calls(route.dependant))
        quotas = [
            dependency.call.rule for dependency in route.dependant.dependencies if isinstance(dependency.call, Quota)
        ]
        if (route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}:
            assert signed_in, route.path
            assert quotas in (["writes"], ["start_work"]), route.path
        elif signed_in:
            assert quotas == ["reads"], route.path
        else:
            continue
        assert isinstance(route.dependant.dependencies[-1].call, Quota), f"{route.path}: the quota comes last"
        checked += 1
    assert checked >= 15


# Brute force


@pytest.mark.slow
def test_a_flood_of_wrong_sign_ins_neither_gets_through_nor_holds_others_up(
    app_factory: Callable[..., TestClient],
) -> None:
    client = app_factory(rate_limit_sign_in_per_email=40, rate_limit_sign_in_per_address=1000, **REAL_PASSWORD_COST)
    sign_up(client)
    client.cookies.clear()
    user = other_client(client, ("203.0.113.9", 4000))
    sign_up(user, "grace@example.com", "Grace")
    chat = new_chat(user)
    flooding = True
    durations: list[float] = []

    def attack(_: int) -> int:
        return int(sign_in(client).status_code)

    def use() -> None:
        while flooding:
            started = time.monotonic()
            assert user.get(f"/api/chats/{chat['id']}").status_code == 200
            assert user.post("/api/chats", json={}).status_code == 201
            durations.append(time.monotonic() - started)

    with ThreadPoolExecutor(max_workers=21) as pool:
        other_user = pool.submit(use)
        began = time.monotonic()
        statuses = list(pool.map(attack, range(80)))
        flood_seconds = time.monotonic() - began
        flooding = False
        other_user.result()
    assert statuses.count(401) == 40 and statuses.count(429) == 40, statuses
    # Held up behind the flood, a request would wait about all of it (40 password checks); measured against the
    # flood itself, the bound holds on a fast machine and a loaded one alike.
    assert durations and max(durations) < flood_seconds / 2, (flood_seconds, durations)
    assert_limited(sign_in(client, password=PASSWORD), 900)
