"""Writers racing on one resource, against a real `runwire serve` on SQLite and on PostgreSQL: every request gets
a contract answer, and the record stays consistent."""

import asyncio
import sqlite3
from typing import Any

import psycopg
import pytest

from tests.helpers import WRITERS, Server, signed_in_async

pytestmark = pytest.mark.slow  # starts `runwire` subprocesses


def steps(label: str) -> list[dict[str, Any]]:
    return [{"id": "say", "toolId": "template", "inputs": {"template": label}}]


async def patch_concurrently(base_url: str) -> tuple[list[int], dict[str, Any]]:
    async with signed_in_async(base_url) as client:
        workflow = (await client.post("/api/workflows", json={"name": "w", "steps": steps("v1")})).json()["data"]
        path = f"/api/workflows/{workflow['id']}"
        responses = await asyncio.gather(
            *(client.patch(path, json={"steps": steps(f"edit {i}")}) for i in range(WRITERS))
        )
        final = (await client.get(path)).json()["data"]
        return [response.status_code for response in responses], final


def test_concurrent_edits_of_one_workflow_each_make_a_version(any_backend_server: tuple[Server, str | None]) -> None:
    server, _ = any_backend_server
    statuses, final = asyncio.run(patch_concurrently(server.url))
    assert statuses == [200] * WRITERS
    assert final["version"] == WRITERS + 1


async def runs_while_deleting(base_url: str) -> tuple[list[int], int, str]:
    async with signed_in_async(base_url) as client:
        chat = (await client.post("/api/chats", json={"title": "doomed"})).json()["data"]
        workflow = (
            await client.post(
                "/api/workflows",
                json={"name": "w", "steps": [{"id": "d", "toolId": "delay", "inputs": {"seconds": 5}}]},
            )
        ).json()["data"]
        runs_path = f"/api/chats/{chat['id']}/workflow-runs"

        async def start() -> int:
            return (await client.post(runs_path, json={"workflowId": workflow["id"]})).status_code

        async def delete() -> int:
            await asyncio.sleep(0.05)
            return (await client.delete(f"/api/chats/{chat['id']}")).status_code

        *created, deleted = await asyncio.gather(*(start() for _ in range(WRITERS)), delete())
        return created, deleted, str(chat["id"])


def run_statuses(server: Server, database_url: str | None, chat_id: str) -> list[str]:
    if database_url is None:
        with sqlite3.connect(server.data_dir / "runwire.db") as connection:
            rows = connection.execute(
                "SELECT status FROM workflow_run WHERE chat_id = ?", (chat_id.replace("-", ""),)
            ).fetchall()
    else:
        with psycopg.connect(database_url) as connection:
            rows = connection.execute("SELECT status FROM workflow_run WHERE chat_id = %s", (chat_id,)).fetchall()
    return [str(row[0]) for row in rows]


def test_runs_started_while_their_chat_is_deleted_all_end_cancelled(
    any_backend_server: tuple[Server, str | None],
) -> None:
    server, database_url = any_backend_server
    created, deleted, chat_id = asyncio.run(runs_while_deleting(server.url))
    assert deleted == 204
    assert set(created) <= {202, 404} and 202 in created
    statuses = run_statuses(server, database_url, chat_id)
    assert len(statuses) == created.count(202)
    assert set(statuses) == {"cancelled"}, statuses
