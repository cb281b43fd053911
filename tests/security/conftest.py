"""What every attack case asserts: the exact status, the contract's error shape, and that the stored data did not
change. Each case runs on SQLite and PostgreSQL through the `client` fixture."""

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from runwire.db import Base, Database
from tests.conftest import new_chat, sign_up
from tests.helpers import create_workflow, step

# Counters that refused requests are meant to move; everything else must stay as it was.
UNCOUNTED_TABLES = frozenset({"rate_limit_counter"})

Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(client: TestClient) -> Snapshot:
    """Every row of every Runwire table, in a stable order."""
    database: Database = client.app.state.database  # type: ignore[attr-defined]
    tables: Snapshot = {}
    with database.reading() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in UNCOUNTED_TABLES:
                continue
            rows = session.execute(sa.select(table)).all()
            tables[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return tables


def assert_refused(response: Any, status: int, error: str, field: str | None = None) -> dict[str, Any]:
    """The response is `status` in the contract's error shape, naming `field` in its details when given."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert isinstance(body["message"], str) and body["message"], body
    assert set(body) <= {"error", "message", "details"}, body
    if field is not None:
        assert field in [detail["field"] for detail in body.get("details", [])], body
    return body


class StoredData:
    """`mark()` before an attack, `assert_unchanged()` after it: every stored row must be as it was."""

    def __init__(self, client: TestClient) -> None:
        self._client = client
        self._before: Snapshot | None = None

    def mark(self) -> None:
        self._before = snapshot(self._client)

    def assert_unchanged(self) -> None:
        assert self._before is not None, "mark() first"
        assert snapshot(self._client) == self._before


@pytest.fixture
def stored(client: TestClient) -> StoredData:
    return StoredData(client)


@pytest.fixture
def world(client: TestClient) -> dict[str, str]:
    """A signed-in user with a chat and a one-step workflow, for the attacks that need a target."""
    user = sign_up(client)
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "delay", {"seconds": 0})])
    return {"userId": user["id"], "chatId": chat["id"], "workflowId": workflow["id"]}
