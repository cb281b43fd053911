"""`ifBusy: reject` requests sent at once to an idle chat, against a real `runwire serve` on SQLite and on
PostgreSQL: exactly one starts a run, every other is refused with 409."""

import asyncio
from typing import Any

import httpx
import pytest

from tests.helpers import WRITERS, Server, signed_in_async

pytestmark = pytest.mark.slow  # starts `runwire` subprocesses

REQUESTS = min(8, WRITERS)


async def fire_rejects(base_url: str) -> tuple[list[httpx.Response], list[dict[str, Any]]]:
    async with signed_in_async(base_url) as client:
        chat = (await client.post("/api/chats", json={"title": "busy"})).json()["data"]
        steps = [{"id": "wait", "toolId": "delay", "inputs": {"seconds": 30}}]
        workflow = (await client.post("/api/workflows", json={"name": "w", "steps": steps})).json()["data"]
        path = f"/api/chats/{chat['id']}/workflow-runs"
        body = {"workflowId": workflow["id"], "ifBusy": "reject"}
        responses = await asyncio.gather(*(client.post(path, json=body) for _ in range(REQUESTS)))
        runs: list[dict[str, Any]] = (await client.get(path)).json()["data"]["workflowRuns"]
        for run in runs:
            await client.post(f"{path}/{run['id']}/cancel")
        return list(responses), runs


def test_simultaneous_rejects_on_an_idle_chat_start_exactly_one_run(
    any_backend_server: tuple[Server, str | None],
) -> None:
    responses, runs = asyncio.run(fire_rejects(any_backend_server[0].url))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [202] + [409] * (REQUESTS - 1), [response.text for response in responses]
    (created,) = [response.json()["data"] for response in responses if response.status_code == 202]
    assert [run["id"] for run in runs] == [created["id"]]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"] == "Conflict"
