"""Two API processes on one PostgreSQL database, each with its own list cache: at every event of a running run,
each serves what the database holds."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runwire.config import Settings
from runwire.db import create_db_engine
from tests.helpers import Server, signed_in
from tests.list_exactness import QUIET_STEPS, ListGet, assert_served_as_stored

pytestmark = pytest.mark.slow


@pytest.fixture
def two_servers(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Server, Server]]:
    env = {"RUNWIRE_DATABASE_URL": postgres_url}
    executing = Server(tmp_path / "a", tmp_path / "a.log", env)
    api_only = Server(tmp_path / "b", tmp_path / "b.log", env, "--no-executor")
    try:
        executing.start()
        api_only.start()
        yield executing, api_only
    finally:
        api_only.stop()
        executing.stop()


def _list_get(client: httpx.Client, chat_id: str) -> ListGet:
    def get() -> tuple[dict[str, Any], str]:
        response = client.get(f"/api/chats/{chat_id}/workflow-runs")
        assert response.status_code == 200
        return response.json(), response.headers["etag"]

    return get


def test_both_processes_serve_the_stored_list_at_every_event(
    two_servers: tuple[Server, Server], postgres_url: str
) -> None:
    executing, api_only = two_servers
    first = signed_in(executing)
    second = httpx.Client(base_url=api_only.url, timeout=10, cookies=first.cookies)
    chat = first.post("/api/chats", json={"title": "exact"}).json()["data"]
    workflow = first.post("/api/workflows", json={"name": "exact", "steps": QUIET_STEPS}).json()["data"]
    run = second.post(f"/api/chats/{chat['id']}/workflow-runs", json={"workflowId": workflow["id"]}).json()["data"]
    engine = create_db_engine(Settings(database_url=postgres_url).resolved_database_url)
    gets = [_list_get(first, chat["id"]), _list_get(second, chat["id"])]
    compared = 0
    try:
        with first.stream("GET", f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/stream", timeout=30) as events:
            for line in events.iter_lines():
                if line.startswith("event: "):
                    compared += assert_served_as_stored(engine, chat["id"], gets)
    finally:
        engine.dispose()
    assert compared >= 2 * 7
