"""Helpers for tests that drive workflows and runs over HTTP."""

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi.testclient import TestClient

FINAL = {"completed", "failed", "cancelled"}


def create_workflow(client: TestClient, steps: list[dict[str, Any]], name: str = "wf") -> dict[str, Any]:
    response = client.post("/api/workflows", json={"name": name, "steps": steps})
    assert response.status_code == 201, response.text
    workflow: dict[str, Any] = response.json()["data"]
    return workflow


def start_run(
    client: TestClient, chat_id: str, workflow_id: str, run_input: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"workflowId": workflow_id}
    if run_input is not None:
        body["input"] = run_input
    response = client.post(f"/api/chats/{chat_id}/workflow-runs", json=body)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()["data"]
    return run


def get_run(client: TestClient, chat_id: str, run_id: str) -> dict[str, Any]:
    response = client.get(f"/api/chats/{chat_id}/workflow-runs/{run_id}")
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()["data"]
    return run


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value {value!r}")
        time.sleep(interval)


def wait_for_run(
    client: TestClient, chat_id: str, run_id: str, statuses: set[str] = FINAL, timeout: float = 20.0
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        run = get_run(client, chat_id, run_id)
        return run if run["status"] in statuses else None

    result: dict[str, Any] = wait_for(check, timeout)
    return result


def step(step_id: str, tool_id: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "toolId": tool_id, "inputs": inputs, **extra}


def wait_for_first_step(client: TestClient, chat_id: str, run_id: str, status: str = "running") -> dict[str, Any]:
    """Wait until the run's first step has the status (a run is running a moment before its first step is)."""
    result: dict[str, Any] = wait_for(
        lambda: (run := get_run(client, chat_id, run_id))["steps"][0]["status"] == status and run
    )
    return result


def sse_events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """A Server-Sent Events response's events, from its lines: `{"id": int, "event": str, "data": parsed JSON}`."""
    current: dict[str, Any] = {}
    for line in lines:
        if line.startswith("id: "):
            current["id"] = int(line[4:])
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif not line and current:
            yield current
            current = {}
