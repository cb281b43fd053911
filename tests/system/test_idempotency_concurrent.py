"""Requests with one Idempotency-Key at once, against a real `runwire serve` on SQLite and on PostgreSQL: exactly one
run is created and queued, and every request answers with it (or 409 for another body)."""

import asyncio
from typing import Any

import httpx
import pytest

from tests.helpers import WRITERS, Server, signed_in_async

pytestmark = pytest.mark.slow  # starts `runwire` subprocesses

REQUESTS = min(16, WRITERS)


async def _wait_until_ended(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    for _ in range(400):
        run: dict[str, Any] = (await client.get(path)).json()["data"]
        if run["status"] in ("completed", "failed", "cancelled"):
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run at {path} did not end")


async def fire_same_key(base_url: str, bodies: list[dict[str, Any]]) -> tuple[list[httpx.Response], list[Any]]:
    """Sign up, then send every body to one chat at once with one key; the responses and the chat's runs after."""
    async with signed_in_async(base_url) as client:
        chat = (await client.post("/api/chats", json={"title": "flaky network"})).json()["data"]
        workflow = (
            await client.post(
                "/api/workflows",
                json={"name": "w", "steps": [{"id": "say", "toolId": "template", "inputs": {"template": "hi"}}]},
            )
        ).json()["data"]
        path = f"/api/chats/{chat['id']}/workflow-runs"
        responses = await asyncio.gather(
            *(
                client.post(path, json={"workflowId": workflow["id"], **body}, headers={"Idempotency-Key": "once"})
                for body in bodies
            )
        )
        runs = (await client.get(path)).json()["data"]["workflowRuns"]
        for run in runs:
            await _wait_until_ended(client, f"{path}/{run['id']}")
        runs = (await client.get(path)).json()["data"]["workflowRuns"]
        return list(responses), runs


def test_simultaneous_retries_start_one_run(any_backend_server: tuple[Server, str | None]) -> None:
    responses, runs = asyncio.run(fire_same_key(any_backend_server[0].url, [{"input": {"n": 1}}] * REQUESTS))
    assert [r.status_code for r in responses] == [202] * REQUESTS, [r.text for r in responses]
    assert len(runs) == 1
    assert {r.json()["data"]["id"] for r in responses} == {runs[0]["id"]}
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
    assert replayed.count(None) == 1 and replayed.count("true") == REQUESTS - 1
    assert runs[0]["status"] == "completed"


def test_simultaneous_uses_for_two_bodies_start_one_run_and_refuse_the_other(
    any_backend_server: tuple[Server, str | None],
) -> None:
    bodies = [{"input": {"n": index % 2}} for index in range(REQUESTS)]
    responses, runs = asyncio.run(fire_same_key(any_backend_server[0].url, bodies))
    assert len(runs) == 1
    by_body: dict[int, set[int]] = {0: set(), 1: set()}
    for body, response in zip(bodies, responses, strict=True):
        by_body[body["input"]["n"]].add(response.status_code)
        if response.status_code == 202:
            assert response.json()["data"]["id"] == runs[0]["id"]
        else:
            assert response.json()["error"] == "Conflict", response.text
    assert sorted(map(sorted, by_body.values())) == [[202], [409]], by_body
