"""Fixtures: a real app on a real SQLite file per test, driven over HTTP through Starlette's TestClient."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runwire.config import Settings
from runwire.main import create_app

PASSWORD = "correct horse battery"
ORIGIN = "http://localhost:3026"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": data_dir, "queue_poll_seconds": 0.01, "retry_backoff_seconds": 0.05}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Start an app (and its executor) with given settings; stopped at the end of the test."""
    clients: list[TestClient] = []

    def start(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(tmp_path, **overrides)), raise_server_exceptions=False)
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
