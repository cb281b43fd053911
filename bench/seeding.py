"""Runs made through the public API: workflows of sequential steps, runs requested in chats, a wait until they have
all ended, and a run's time per step."""

import asyncio
import time
from typing import Any

from bench.common import Api, parse_timestamp

FINAL = frozenset({"completed", "failed", "cancelled"})
POLL_SECONDS = 0.05


def template_steps(count: int) -> list[dict[str, Any]]:
    """`count` sequential `template` steps, each rendering its upstream step's text: real work, no waiting."""
    steps: list[dict[str, Any]] = [{"id": "s0", "name": "Step 0", "toolId": "template", "inputs": {"template": "go"}}]
    for i in range(1, count):
        text = f"{{{{ steps.s{i - 1}.output.text }}}} / step {i}"
        steps.append(
            {
                "id": f"s{i}",
                "name": f"Step {i}",
                "toolId": "template",
                "inputs": {"template": text},
                "dependsOn": [f"s{i - 1}"],
            }
        )
    return steps


def chained_steps(count: int, tool_id: str, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """`count` steps of `tool_id` with `inputs`, each depending on the one before it."""
    return [
        {"id": f"s{i}", "toolId": tool_id, "inputs": inputs, "dependsOn": [f"s{i - 1}"] if i else []}
        for i in range(count)
    ]


async def request_runs(api: Api, chat_id: str, workflow_id: str, count: int) -> list[str]:
    """Request `count` runs of the chat one after another (they execute in that order)."""
    return [await api.start_run(chat_id, workflow_id) for _ in range(count)]


async def wait_until_ended(
    api: Api, chat_ids: list[str], timeout: float, poll_seconds: float = POLL_SECONDS
) -> dict[str, list[dict[str, Any]]]:
    """Each chat's runs once every one has ended; fails if one did not complete. Polls every `poll_seconds`."""
    deadline = time.monotonic() + timeout
    pending = set(chat_ids)
    ended: dict[str, list[dict[str, Any]]] = {}
    while pending:
        listed = await asyncio.gather(*(api.list_runs(chat_id) for chat_id in sorted(pending)))
        for chat_id, runs in zip(sorted(pending), listed, strict=True):
            if all(run["status"] in FINAL for run in runs):
                ended[chat_id] = runs
                pending.discard(chat_id)
        if pending and time.monotonic() > deadline:
            unended = [
                f"{run['id']} {run['status']} (steps: {', '.join(step['status'] for step in run['steps'])})"
                for chat_id, runs in zip(sorted(pending), listed, strict=True)
                for run in runs
                if run["status"] not in FINAL
            ]
            raise RuntimeError(
                f"runs of {len(pending)} chat(s) still not ended after {timeout:g} s, e.g. " + "; ".join(unended[:5])
            )
        if pending:
            await asyncio.sleep(poll_seconds)
    failed = [run for runs in ended.values() for run in runs if run["status"] != "completed"]
    if failed:
        example = failed[0]
        raise RuntimeError(
            f"{len(failed)} run(s) did not complete, e.g. {example['id']}: {example['status']}, {example['error']}"
        )
    return ended


async def run_alone(
    api: Api, workflow_id: str, title: str, timeout: float, poll_seconds: float = POLL_SECONDS
) -> dict[str, Any]:
    """A run of the workflow in a new chat of its own, as listed once it has ended."""
    chat = await api.create_chat(title)
    await api.start_run(chat, workflow_id)
    (run,) = (await wait_until_ended(api, [chat], timeout, poll_seconds))[chat]
    return run


def ms_per_step(run: dict[str, Any], steps: int) -> float:
    """An ended run's milliseconds from its start to its end, per step."""
    return (parse_timestamp(run["completedAt"]) - parse_timestamp(run["startedAt"])) * 1000 / steps
