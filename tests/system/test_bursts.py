"""Many requests at once against a real `runwire serve`: all are answered, none waits on another's lock."""

import asyncio

import pytest

from tests.helpers import Server, signed_in_async

pytestmark = pytest.mark.slow  # starts `runwire` subprocesses

BURST = 120


async def _burst(base_url: str) -> list[int]:
    async with signed_in_async(base_url, connections=BURST) as client:
        chat = (await client.post("/api/chats", json={"title": "busy"})).json()["data"]
        workflow = (
            await client.post(
                "/api/workflows",
                json={"name": "w", "steps": [{"id": "a", "toolId": "template", "inputs": {"template": "x"}}]},
            )
        ).json()["data"]

        async def one(index: int) -> int:
            if index % 3 == 0:
                response = await client.post("/api/chats", json={"title": f"chat {index}"})
            elif index % 3 == 1:
                response = await client.post(
                    f"/api/chats/{chat['id']}/workflow-runs", json={"workflowId": workflow["id"]}
                )
            else:
                response = await client.get(f"/api/chats/{chat['id']}/workflow-runs")
            return response.status_code

        return await asyncio.gather(*(one(index) for index in range(BURST)))


def test_a_burst_of_reads_and_writes_is_answered_without_errors(server: Server) -> None:
    server.start()
    statuses = asyncio.run(_burst(server.url))
    assert sorted(set(statuses)) == [200, 201, 202], statuses
    assert statuses.count(202) == len(range(1, BURST, 3))
