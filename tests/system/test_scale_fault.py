"""Scale-out under a fault: two `runwire serve` (API + executor) and two `runwire worker` on one PostgreSQL database
take 200 runs across 20 chats through both APIs at once while one worker is SIGKILLed mid-way and restarted.

Afterwards every run has completed, both APIs list every run exactly once and identically, each chat's runs ran one
at a time in request order, and no step that had completed ran again (each step calls a test HTTP server on a path
of its own, so the server's hit counts say how often each step's tool call happened)."""

import asyncio
import threading
import time
from collections.abc import Iterator
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import NO_KEEPALIVE, HitCounter, Server, Worker, signed_in

pytestmark = pytest.mark.slow  # starts `runwire` subprocesses

CHATS = 20
RUNS_PER_CHAT = 10
RUNS = CHATS * RUNS_PER_CHAT
DELAY_SECONDS = 0.3
FINAL = frozenset({"completed", "failed", "cancelled"})
# The worker is killed once this many runs have completed and it has runs of its own in flight.
KILL_AFTER_COMPLETED = RUNS // 4
FINAL_WAIT_SECONDS = 150
TRANSPORT_RETRIES = 3


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[tuple[list[Server], list[Worker]]]:
    env = {"RUNWIRE_DATABASE_URL": postgres_url, "RUNWIRE_TOOL_ALLOWED_HOSTS": "127.0.0.1"}
    servers = [
        Server(tmp_path / name, tmp_path / f"{name}.log", {**env, "RUNWIRE_EXECUTOR_ID": name})
        for name in ("api1", "api2")
    ]
    workers = [Worker(name, tmp_path / f"{name}.log", env) for name in ("w1", "w2")]
    try:
        # The first process brings the empty database to the newest schema alone; the others then find nothing to do.
        servers[0].start()
        servers[1].launch()
        for worker in workers:
            worker.launch()
        servers[1].wait_until(servers[1]._answers, "runwire serve answering")
        for worker in workers:
            worker.wait_until(partial(has_started, worker), f"worker {worker.executor_id} start")
        yield servers, workers
    finally:
        for process in [*workers, *servers]:
            process.stop()


@pytest.fixture
def monitor(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    """The test's one connection of its own, for watching progress without loading the APIs."""
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        yield connection


def has_started(worker: Worker) -> bool:
    return '"worker started"' in worker.log_path.read_text()


def workflow_steps(hit_url: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "fetch",
            "toolId": "http_request",
            "inputs": {"method": "GET", "url": hit_url + "/{{ input.tag }}/fetch"},
        },
        {"id": "wait", "toolId": "delay", "dependsOn": ["fetch"], "inputs": {"seconds": DELAY_SECONDS}},
        {
            "id": "after",
            "toolId": "http_request",
            "dependsOn": ["wait"],
            "inputs": {"method": "GET", "url": hit_url + "/{{ input.tag }}/after"},
        },
    ]


HTTP_STEPS = ("fetch", "after")


def tag_of(chat_index: int, run_index: int) -> str:
    return f"c{chat_index:02d}r{run_index:02d}"


async def post_run(client: httpx.AsyncClient, chat_id: str, workflow_id: str, tag: str) -> httpx.Response:
    """As a careful client does: a request lost in transit (a keep-alive connection the server closed as it was
    reused, say) is sent again with the same Idempotency-Key, so it starts one run whatever happened."""
    body = {"workflowId": workflow_id, "input": {"tag": tag}}
    headers = {"Idempotency-Key": f"scale-{tag}"}
    for _ in range(TRANSPORT_RETRIES):
        try:
            return await client.post(f"/api/chats/{chat_id}/workflow-runs", json=body, headers=headers)
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    return await client.post(f"/api/chats/{chat_id}/workflow-runs", json=body, headers=headers)


async def trigger_all(
    urls: list[str], cookies: httpx.Cookies, chat_ids: list[str], workflow_id: str
) -> dict[str, list[tuple[str, str]]]:
    """POST every run: chats in parallel, each chat's runs one after another, alternating between the APIs.
    Returns per chat the (run id, tag) pairs in the order the API accepted them."""
    accepted: dict[str, list[tuple[str, str]]] = {chat_id: [] for chat_id in chat_ids}
    limits = httpx.Limits(max_connections=CHATS)
    clients = [httpx.AsyncClient(base_url=url, cookies=cookies, timeout=60, limits=limits) for url in urls]
    try:

        async def one_chat(chat_index: int, chat_id: str) -> None:
            for run_index in range(RUNS_PER_CHAT):
                client = clients[(chat_index + run_index) % len(clients)]
                tag = tag_of(chat_index, run_index)
                response = await post_run(client, chat_id, workflow_id, tag)
                assert response.status_code == 202, response.text
                run = response.json()["data"]
                assert run["status"] == "pending", run
                accepted[chat_id].append((run["id"], tag))

        await asyncio.gather(*(one_chat(index, chat_id) for index, chat_id in enumerate(chat_ids)))
    finally:
        for client in clients:
            await client.aclose()
    return accepted


def snapshot(client: httpx.Client, chat_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Every run of the chats as the API lists it now, by run id."""
    runs: dict[str, dict[str, Any]] = {}
    for chat_id in chat_ids:
        response = client.get(f"/api/chats/{chat_id}/workflow-runs")
        assert response.status_code == 200, response.text
        runs.update({run["id"]: run for run in response.json()["data"]["workflowRuns"]})
    return runs


def completed_steps(runs: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (run_id, step["id"]) for run_id, run in runs.items() for step in run["steps"] if step["status"] == "completed"
    }


def counts(monitor: psycopg.Connection[Any], executor_id: str) -> tuple[int, int]:
    """(runs completed, durable workflows the executor is running now)."""
    completed = monitor.execute("SELECT count(*) FROM workflow_run WHERE status = 'completed'").fetchone()
    running = monitor.execute(
        "SELECT count(*) FROM dbos.workflow_status WHERE executor_id = %s AND status = 'PENDING'", (executor_id,)
    ).fetchone()
    assert completed is not None and running is not None
    return int(completed[0]), int(running[0])


def victims_runs(monitor: psycopg.Connection[Any], executor_id: str) -> set[str]:
    """The runs whose durable workflow the executor had taken on and not finished."""
    rows = monitor.execute(
        "SELECT workflow_uuid FROM dbos.workflow_status WHERE executor_id = %s AND status = 'PENDING'", (executor_id,)
    ).fetchall()
    return {str(row[0]) for row in rows}


def unfinished_runs(monitor: psycopg.Connection[Any]) -> list[str]:
    rows = monitor.execute("SELECT id FROM workflow_run WHERE status IN ('pending', 'running')").fetchall()
    return [str(row[0]) for row in rows]


def count_runs(monitor: psycopg.Connection[Any]) -> int:
    row = monitor.execute("SELECT count(*) FROM workflow_run").fetchone()
    assert row is not None
    return int(row[0])


def durable_status(monitor: psycopg.Connection[Any], run_ids: list[str]) -> dict[str, Any]:
    """What DBOS records of these runs' workflows: for diagnosing a run that never ends."""
    rows = monitor.execute(
        "SELECT workflow_uuid, status, executor_id, queue_name, output, error FROM dbos.workflow_status "
        "WHERE workflow_uuid = ANY(%s)",
        (run_ids[:10],),
    ).fetchall()
    return {str(row[0]): row[1:] for row in rows}


@pytest.mark.timeout(300)
def test_two_apis_and_two_workers_survive_a_worker_sigkill(
    cluster: tuple[list[Server], list[Worker]], hit_counter: HitCounter, monitor: psycopg.Connection[Any]
) -> None:
    servers, workers = cluster
    victim = workers[0]
    api1 = signed_in(servers[0])
    api2 = httpx.Client(base_url=servers[1].url, cookies=api1.cookies, timeout=30, limits=NO_KEEPALIVE)
    assert api2.get("/api/auth/session").status_code == 200, "the session of API 1 is not known to API 2"
    chat_ids = [
        (api1 if index % 2 == 0 else api2).post("/api/chats", json={"title": f"chat {index}"}).json()["data"]["id"]
        for index in range(CHATS)
    ]
    created = api1.post("/api/workflows", json={"name": "scale", "steps": workflow_steps(hit_counter.url)})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["data"]["id"]

    accepted: dict[str, list[tuple[str, str]]] = {}
    trigger_errors: list[BaseException] = []

    def trigger() -> None:
        try:
            accepted.update(asyncio.run(trigger_all([s.url for s in servers], api1.cookies, chat_ids, workflow_id)))
        except BaseException as exc:  # re-raised in the test's thread below
            trigger_errors.append(exc)

    began = time.monotonic()
    triggering = threading.Thread(target=trigger, daemon=True)
    triggering.start()

    deadline = time.monotonic() + 60
    while True:
        assert not trigger_errors, trigger_errors
        completed_runs, victim_running = counts(monitor, victim.executor_id)
        if completed_runs >= KILL_AFTER_COMPLETED and victim_running > 0:
            break
        assert time.monotonic() < deadline, f"no kill point: {completed_runs} completed, {victim_running} on the victim"
        time.sleep(0.05)
    before_kill = snapshot(api1, chat_ids)
    victim.kill()
    killed_at = time.monotonic() - began
    # Nothing the victim had started can move on now, so every step completed here had completed before the kill
    # or was completed later by a live process; none of them may call its tool again.
    after_kill = snapshot(api2, chat_ids)
    orphaned = victims_runs(monitor, victim.executor_id)
    triggers_done_at_kill = not triggering.is_alive()
    victim.start()

    triggering.join(60)
    assert not triggering.is_alive(), "triggering the runs did not end"
    assert not trigger_errors, trigger_errors
    deadline = time.monotonic() + FINAL_WAIT_SECONDS
    while (unfinished := unfinished_runs(monitor)) or count_runs(monitor) < RUNS:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(unfinished)} run(s) not final after {FINAL_WAIT_SECONDS} s; "
                f"their durable workflows: {durable_status(monitor, unfinished)}"
            )
        time.sleep(0.2)
    now = snapshot(api1, chat_ids)
    wall = time.monotonic() - began

    # Every run completed, every step of it too.
    assert sum(len(ids) for ids in accepted.values()) == RUNS
    not_completed = [run for run in now.values() if run["status"] != "completed"]
    assert not not_completed, not_completed[:5]
    assert all(step["status"] == "completed" for run in now.values() for step in run["steps"])

    # Each run listed exactly once, identically by both APIs, in request order.
    for chat_id in chat_ids:
        listed_1 = api1.get(f"/api/chats/{chat_id}/workflow-runs")
        listed_2 = api2.get(f"/api/chats/{chat_id}/workflow-runs")
        assert listed_1.status_code == listed_2.status_code == 200
        assert listed_1.json() == listed_2.json()
        runs = listed_1.json()["data"]["workflowRuns"]
        ids = [run["id"] for run in runs]
        assert len(ids) == len(set(ids)) == RUNS_PER_CHAT
        assert ids == [run_id for run_id, _ in accepted[chat_id]], f"chat {chat_id} is not listed in request order"
        assert all(run["chatId"] == chat_id for run in runs)
        # Started in request order, and one at a time: each run ended before the next one started.
        by_start = sorted(runs, key=lambda run: run["startedAt"])
        assert [run["id"] for run in by_start] == ids, f"chat {chat_id} did not start its runs in request order"
        for earlier, later in pairwise(runs):
            assert earlier["completedAt"] <= later["startedAt"], f"runs overlapped in chat {chat_id}: {earlier} {later}"
        for run in runs:
            steps = run["steps"]
            assert [step["id"] for step in steps] == ["fetch", "wait", "after"]
            for upstream, downstream in pairwise(steps):
                assert upstream["completedAt"] <= downstream["startedAt"], run

    # Every step's tool call happened; none that had completed happened again.
    tags = {run_id: tag for pairs in accepted.values() for run_id, tag in pairs}
    hits = dict(hit_counter.hits)
    expected_paths = {f"/{tag}/{step}": (run_id, step) for run_id, tag in tags.items() for step in HTTP_STEPS}
    assert set(hits) == set(expected_paths), sorted(set(hits) ^ set(expected_paths))[:10]
    assert all(count >= 1 for count in hits.values())
    settled = completed_steps(after_kill)
    assert completed_steps(before_kill) <= settled
    repeated = {path: count for path, count in hits.items() if count > 1}
    repeated_completed = {path: count for path, count in repeated.items() if expected_paths[path] in settled}
    assert not repeated_completed, f"completed steps ran again: {repeated_completed}"
    # A step can only have run twice if the victim was running it when it died, and only once more.
    assert all(expected_paths[path][0] in orphaned for path in repeated), (repeated, orphaned)
    assert all(count == 2 for count in repeated.values()), repeated

    in_flight = [run for run in before_kill.values() if run["status"] == "running"]
    print(
        f"\nscale fault: {RUNS} runs in {CHATS} chats on 2 serve + 2 worker; wall {wall:.1f} s, "
        f"{RUNS / wall:.1f} runs/s; killed {victim.executor_id} at {killed_at:.1f} s "
        f"(triggering {'done' if triggers_done_at_kill else 'still going'}); at the kill "
        f"{sum(run['status'] == 'completed' for run in before_kill.values())} runs completed, "
        f"{len(in_flight)} running ({len(orphaned)} on {victim.executor_id}); "
        f"{len(repeated)} step(s) ran twice: {sorted(repeated)}"
    )
