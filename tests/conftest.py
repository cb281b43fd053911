"""Fixtures: a real app per test on a real database (a SQLite file, or a fresh PostgreSQL database), driven over
HTTP through Starlette's TestClient. Every app-level test runs on both backends."""

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from runwire.config import Settings
from runwire.main import create_app
from runwire.templating.renderer import TemplateRenderer

PASSWORD = "correct horse battery"
ORIGIN = "http://localhost:3026"


POSTGRES_ADMIN_URL = os.environ.get("RUNWIRE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_or_skip() -> None:
    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("RUNWIRE_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here but not reachable at {POSTGRES_ADMIN_URL}: {exc}")
        pytest.skip(f"no PostgreSQL reachable at {POSTGRES_ADMIN_URL}: {exc}")


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a PostgreSQL database made for the caller alone, dropped afterwards."""
    _postgres_or_skip()
    name = f"runwire_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_renderer() -> Iterator[TemplateRenderer]:
    """Template worker processes as the executor runs them, with the default limits."""
    settings = Settings()
    renderer = TemplateRenderer(settings.render_limits, workers=2)
    renderer.start()
    yield renderer
    renderer.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the embedded SQLite default; else the URL of a PostgreSQL database made for this test alone."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


# Tests sign up and act as many users from one address, quickly: limits far above that, still counted. Tests of the
# limits set their own.
GENEROUS_RATE_LIMITS = {
    "rate_limit_sign_in_per_email": 10_000,
    "rate_limit_sign_in_per_address": 100_000,
    "rate_limit_sign_ups_per_address": 100_000,
    "rate_limit_starts_per_minute": 100_000,
    "rate_limit_writes_per_minute": 100_000,
}


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "queue_poll_seconds": 0.01,
        "retry_backoff_seconds": 0.05,
        **GENEROUS_RATE_LIMITS,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def app_factory(tmp_path: Path, database_url: str | None) -> Iterator[Callable[..., TestClient]]:
    """Start an app (and its executor) with given settings; stopped at the end of the test."""
    clients: list[TestClient] = []

    def start(**overrides: Any) -> TestClient:
        settings = make_settings(tmp_path, database_url=database_url, **overrides)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(app_factory: Callable[..., TestClient]) -> TestClient:
    return app_factory()


def sign_up(client: TestClient, email: str = "ada@example.com", name: str = "Ada") -> dict[str, Any]:
    response = client.post("/api/auth/sign-up/email", json={"email": email, "password": PASSWORD, "name": name})
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()["data"]["user"]
    return user


def new_chat(client: TestClient, title: str = "A chat") -> dict[str, Any]:
    response = client.post("/api/chats", json={"title": title})
    assert response.status_code == 201, response.text
    chat: dict[str, Any] = response.json()["data"]
    return chat


@pytest.fixture
def user(client: TestClient) -> dict[str, Any]:
    return sign_up(client)
