"""Approval steps across real processes: decisions posted at once take exactly one; a `kill -9` while a step waits
loses nothing (the step waits again after the restart, and a decision then lets the run go on); and on PostgreSQL a
decision posted to an API-only process reaches the step waiting in a worker, even one killed and restarted."""

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import HitCounter, Server, Worker, recover, signed_in, wait_for_status

pytestmark = pytest.mark.slow  # starts `runwire` subprocesses

DECISIONS = 6
GRACE_SECONDS = 60
FINAL = {"completed", "failed", "cancelled"}


SHIP = {"id": "ship", "toolId": "approval", "inputs": {"prompt": "Ship it?"}}


def approval_then_fetch(hit_counter: HitCounter) -> list[dict[str, Any]]:
    return [
        SHIP,
        {
            "id": "fetch",
            "toolId": "http_request",
            "inputs": {"method": "GET", "url": f"{hit_counter.url}/after"},
            "dependsOn": ["ship"],
        },
    ]


def start_waiting_run(client: httpx.Client, steps: list[dict[str, Any]]) -> str:
    """A run of `steps` whose first step waits for a decision; its path."""
    chat = client.post("/api/chats", json={"title": "approvals"}).json()["data"]
    workflow = client.post("/api/workflows", json={"name": "approve", "steps": steps}).json()["data"]
    created = client.post(f"/api/chats/{chat['id']}/workflow-runs", json={"workflowId": workflow["id"]})
    assert created.status_code == 202, created.text
    path = f"/api/chats/{chat['id']}/workflow-runs/{created.json()['data']['id']}"
    deadline = time.monotonic() + 30
    while (run := client.get(path).json()["data"])["steps"][0]["waitingFor"] != "decision":
        assert time.monotonic() < deadline, run
        time.sleep(0.02)
    return path


def event_types(client: httpx.Client, path: str) -> list[str]:
    with client.stream("GET", f"{path}/stream", timeout=30) as stream:
        return [line.removeprefix("event: ") for line in stream.iter_lines() if line.startswith("event: ")]


async def post_at_once(base_url: str, cookies: httpx.Cookies, path: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, cookies=cookies, timeout=60) as client:
        bodies = [{"approved": n % 2 == 0, "comment": f"decision {n}"} for n in range(DECISIONS)]
        return list(await asyncio.gather(*(client.post(f"{path}/steps/ship/decision", json=b) for b in bodies)))


def test_decisions_posted_at_once_take_exactly_one(any_backend_server: tuple[Server, str | None]) -> None:
    server, _ = any_backend_server
    client = signed_in(server)
    after = {"id": "after", "toolId": "template", "inputs": {"template": "{{ steps.ship.output.comment }}"}}
    path = start_waiting_run(client, [SHIP, {**after, "dependsOn": ["ship"]}])

    responses = asyncio.run(post_at_once(server.url, client.cookies, path))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [409] * (DECISIONS - 1), [response.text for response in responses]
    (taken,) = [n for n, response in enumerate(responses) if response.status_code == 200]
    done = wait_for_status(client, path, FINAL)
    ship = done["steps"][0]
    if taken % 2 == 0:
        assert done["status"] == "completed" and ship["output"]["comment"] == f"decision {taken}"
        assert done["steps"][1]["output"] == {"text": f"decision {taken}"}
    else:
        assert done["status"] == "failed" and ship["error"]["message"] == f"The step was rejected: decision {taken}"
        assert done["steps"][1]["status"] == "cancelled"
    assert event_types(client, path).count("step_waiting") == 1


def test_a_kill_while_waiting_then_a_decision_after_the_restart(server: Server, hit_counter: HitCounter) -> None:
    server.start()
    client = signed_in(server)
    path = start_waiting_run(client, approval_then_fetch(hit_counter))
    server.kill()

    server.start()
    restarted = httpx.Client(base_url=server.url, cookies=client.cookies, timeout=10)
    run = restarted.get(path).json()["data"]
    assert (run["status"], run["steps"][0]["status"], run["steps"][0]["waitingFor"]) == (
        "running",
        "running",
        "decision",
    )
    decided = restarted.post(f"{path}/steps/ship/decision", json={"approved": True, "comment": "after the crash"})

    assert decided.status_code == 200, decided.text
    done = wait_for_status(restarted, path, FINAL)
    assert done["status"] == "completed", done
    assert done["steps"][0]["output"]["comment"] == "after the crash"
    assert hit_counter.hits == {"/after": 1}
    assert event_types(restarted, path).count("step_waiting") == 1


@pytest.mark.parametrize("after_the_kill", ["restart", "recover"])
def test_a_decision_posted_to_an_api_process_reaches_the_worker_that_took_the_wait_on(
    api_only: Server,
    workers: dict[str, Worker],
    hit_counter: HitCounter,
    cluster_env: dict[str, str],
    after_the_kill: str,
) -> None:
    """The killed worker restarts and resumes its own waits, or `runwire recover` hands them to another worker."""
    api_only.start()
    workers["w1"].start()
    client = signed_in(api_only)
    path = start_waiting_run(client, approval_then_fetch(hit_counter))
    workers["w1"].kill()
    if after_the_kill == "restart":
        workers["w1"].start()
    else:
        workers["w2"].start()
        recovered = recover("w1", cluster_env)
        assert recovered.returncode == 0, recovered.stderr
        assert recovered.stdout.split()[:2] == [path.rsplit("/", 1)[1], "1"], recovered.stdout

    decided = client.post(f"{path}/steps/ship/decision", json={"approved": True, "comment": "from the API"})

    assert decided.status_code == 200, decided.text
    done = wait_for_status(client, path, FINAL)
    assert done["status"] == "completed", done
    assert hit_counter.hits == {"/after": 1}
    assert event_types(client, path).count("step_waiting") == 1


def test_sigterm_does_not_wait_out_the_grace_for_a_step_that_waits_for_a_decision(
    tmp_path: Path, hit_counter: HitCounter
) -> None:
    env = {"RUNWIRE_TOOL_ALLOWED_HOSTS": "127.0.0.1", "RUNWIRE_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)}
    server = Server(tmp_path / "data", tmp_path / "server.log", env)
    server.start()
    try:
        client = signed_in(server)
        path = start_waiting_run(client, approval_then_fetch(hit_counter))
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        # Far below the grace: the drain has nothing to wait for, the wait resumes after the restart.
        assert server.process.wait(GRACE_SECONDS / 2) == 0
        assert "run stopped mid-step" not in server.log_path.read_text()

        server.start()
        restarted = httpx.Client(base_url=server.url, cookies=client.cookies, timeout=10)
        decided = restarted.post(f"{path}/steps/ship/decision", json={"approved": True})
        assert decided.status_code == 200, decided.text
        assert wait_for_status(restarted, path, FINAL)["status"] == "completed"
        assert hit_counter.hits == {"/after": 1}
    finally:
        server.stop()
