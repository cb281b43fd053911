"""`runwire serve` as a real process: the README walkthrough over TCP, and crash recovery with SIGKILL."""

import time

import httpx
import pytest

from tests.helpers import PASSWORD, HitCounter, Server, signed_in, wait_for_status

pytestmark = pytest.mark.slow  # starts `runwire` subprocesses


def test_walkthrough_over_tcp(server: Server) -> None:
    server.start()
    client = signed_in(server)
    assert (
        "HttpOnly"
        in client.post("/api/auth/sign-in/email", json={"email": "ada@example.com", "password": PASSWORD}).headers[
            "set-cookie"
        ]
    )
    chat = client.post("/api/chats", json={"title": "First chat"}).json()["data"]
    listed = client.get(f"/api/chats/{chat['id']}/workflow-runs", headers={"Accept": "application/json"})
    assert listed.status_code == 200 and listed.json() == {"data": {"workflowRuns": []}}
    assert listed.headers["x-request-id"]


def test_sigkill_mid_run_resumes_without_repeating_completed_steps(server: Server, hit_counter: HitCounter) -> None:
    server.start()
    client = signed_in(server)
    chat = client.post("/api/chats", json={}).json()["data"]
    workflow = client.post(
        "/api/workflows",
        json={
            "name": "crash",
            "steps": [
                {
                    "id": "fetch",
                    "toolId": "http_request",
                    "inputs": {"method": "GET", "url": f"{hit_counter.url}/first"},
                },
                {"id": "wait", "toolId": "delay", "inputs": {"seconds": 2}, "dependsOn": ["fetch"]},
                {
                    "id": "after",
                    "toolId": "http_request",
                    "inputs": {"method": "GET", "url": f"{hit_counter.url}/second"},
                    "dependsOn": ["wait"],
                },
            ],
        },
    ).json()["data"]
    run = client.post(f"/api/chats/{chat['id']}/workflow-runs", json={"workflowId": workflow["id"]}).json()["data"]
    path = f"/api/chats/{chat['id']}/workflow-runs/{run['id']}"
    deadline = time.monotonic() + 20
    while client.get(path).json()["data"]["steps"][1]["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    before = client.get(path).json()["data"]
    server.kill()
    assert hit_counter.hits == {"/first": 1}

    server.start()
    restarted = httpx.Client(base_url=server.url, cookies=client.cookies, timeout=10)
    done = wait_for_status(restarted, path, {"completed", "failed", "cancelled"})
    assert done["status"] == "completed", done
    assert hit_counter.hits == {"/first": 1, "/second": 1}
    fetch_before, fetch_after = before["steps"][0], done["steps"][0]
    assert fetch_after == fetch_before
    assert fetch_after["attempts"] == 1
    assert done["startedAt"] == before["startedAt"]


def test_graceful_restart_mid_step_finishes_the_run(server: Server, hit_counter: HitCounter) -> None:
    server.start()
    client = signed_in(server)
    chat = client.post("/api/chats", json={}).json()["data"]
    workflow = client.post(
        "/api/workflows",
        json={
            "name": "restart",
            "steps": [
                {"id": "wait", "toolId": "delay", "inputs": {"seconds": 3}},
                {
                    "id": "after",
                    "toolId": "http_request",
                    "inputs": {"method": "GET", "url": f"{hit_counter.url}/after"},
                    "dependsOn": ["wait"],
                },
            ],
        },
    ).json()["data"]
    run = client.post(f"/api/chats/{chat['id']}/workflow-runs", json={"workflowId": workflow["id"]}).json()["data"]
    path = f"/api/chats/{chat['id']}/workflow-runs/{run['id']}"
    wait_for_status(client, path, {"running"})
    server.stop()
    server.start()
    restarted = httpx.Client(base_url=server.url, cookies=client.cookies, timeout=10)
    done = wait_for_status(restarted, path, {"completed", "failed", "cancelled"})
    assert done["status"] == "completed", done
    assert hit_counter.hits == {"/after": 1}
