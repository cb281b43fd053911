"""Scale-out under a fault: two API processes (`runwire serve --no-executor`) and two `runwire worker` on one PostgreSQL
database take about 190 runs across 20 chats through both APIs at once, while one worker is SIGKILLed mid-way and
restarted. Each chat follows a script of ten requests: runs queued behind the chat's others (`ifBusy: enqueue`),
refused while it is busy (`reject`), or cancelling its active and queued runs (`interrupt`), and re-runs of its ended
runs, whole and from the failed step. Some runs' last step fails at its first call, so that re-runs have completed
steps to reuse.

Afterwards:

- Nothing is lost. Every accepted run has ended, and both APIs list it exactly once and identically, in its chat's
  list in request order and in the user's list. A refused request created nothing.
- No overlap within a chat: each run that started did so after the one before it had ended. FIFO: the runs that
  started (all but those interrupted while queued) started in request order.
- An interrupt ended every run of its chat requested before it: those still active were cancelled. Only interrupts
  cancelled runs; only the failing step failed them.
- No completed step ran twice, and no reused step's tool was called. Each step calls a counting HTTP server on a path
  of its own (the run's input tag and the step), shared only by a run and its re-runs, and each answer carries the
  call's number on its path. So every completed step that ran shows which call it got (no two the same), and a path's
  calls are those of its completed and failed steps, plus at most one for each step an interrupt cut off and each
  step the killed worker was running and had not completed; reused steps count for none.
- A reused step's output is its source's."""

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
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
DELAY_SECONDS = 0.3
FINAL = frozenset({"completed", "failed", "cancelled"})
# The worker is killed once this many runs have completed and it has runs of its own in flight.
KILL_AFTER_COMPLETED = 40
FINAL_WAIT_SECONDS = 150
TRANSPORT_RETRIES = 3


@dataclass(frozen=True)
class Request:
    """One request of a chat's script: a new run with its `if_busy` (`flaky`: its last step's first call fails), or a
    re-run of the run the script's `rerun_of`-th request started, from its failed step when `from_failed` and the
    source did not complete (a run the killed worker was running may complete at its failing step's second call)."""

    if_busy: str = "enqueue"
    flaky: bool = False
    rerun_of: int | None = None
    from_failed: bool = False


RUN, FLAKY = Request(), Request(flaky=True)
REJECT, INTERRUPT = Request(if_busy="reject"), Request(if_busy="interrupt")
SCRIPTS = [
    # Queued runs; a failing run re-run from its failed step, and a whole re-run.
    [RUN, FLAKY, RUN, RUN, Request(rerun_of=1, from_failed=True), RUN, Request(rerun_of=0), RUN, RUN, RUN],
    # Refusals and interruptions among queued runs.
    [RUN, RUN, REJECT, RUN, INTERRUPT, RUN, RUN, REJECT, INTERRUPT, RUN],
    # All of it: a source may be interrupted before its re-run, and a re-run is re-run.
    [
        FLAKY,
        RUN,
        REJECT,
        Request(rerun_of=0, from_failed=True),
        RUN,
        INTERRUPT,
        FLAKY,
        RUN,
        Request(rerun_of=6, from_failed=True),
        Request(rerun_of=3),
    ],
    # Queued runs only.
    [RUN] * 10,
]
HTTP_STEPS = ("fetch", "after")


@dataclass(frozen=True)
class Sent:
    """A request as sent and answered: the run's input tag, and the run it started (None: refused)."""

    chat_id: str
    request: Request
    tag: str
    run_id: str | None
    # For a re-run, its source and whether it was asked to reuse the source's completed steps.
    source_id: str | None = None
    from_failed: bool = False


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[tuple[list[Server], list[Worker]]]:
    env = {"RUNWIRE_DATABASE_URL": postgres_url, "RUNWIRE_TOOL_ALLOWED_HOSTS": "127.0.0.1"}
    servers = [
        Server(tmp_path / name, tmp_path / f"{name}.log", {**env, "RUNWIRE_EXECUTOR_ID": name}, "--no-executor")
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


@pytest.fixture
def tool_server() -> Iterator[HitCounter]:
    """The counting HTTP server the steps call; a flaky run's last step fails at its path's first call."""
    counter = HitCounter(fails_first=lambda path: path.endswith("-flaky/after"))
    yield counter
    counter.httpd.shutdown()


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


def tag_of(chat_index: int, run_index: int, flaky: bool) -> str:
    return f"c{chat_index:02d}r{run_index:02d}" + ("-flaky" if flaky else "")


async def post_run(client: httpx.AsyncClient, chat_id: str, workflow_id: str, tag: str, if_busy: str) -> httpx.Response:
    """As a careful client does: a request lost in transit (a keep-alive connection the server closed as it was
    reused, say) is sent again with the same Idempotency-Key, so it starts one run whatever happened."""
    body = {"workflowId": workflow_id, "input": {"tag": tag}, "ifBusy": if_busy}
    headers = {"Idempotency-Key": f"scale-{tag}"}
    for _ in range(TRANSPORT_RETRIES):
        try:
            return await client.post(f"/api/chats/{chat_id}/workflow-runs", json=body, headers=headers)
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    return await client.post(f"/api/chats/{chat_id}/workflow-runs", json=body, headers=headers)


async def final_status(client: httpx.AsyncClient, chat_id: str, run_id: str) -> str:
    """The run's status once it has ended (a read lost in transit is read again)."""
    while True:
        try:
            response = await client.get(f"/api/chats/{chat_id}/workflow-runs/{run_id}")
        except httpx.TransportError:
            continue
        assert response.status_code == 200, response.text
        status: str = response.json()["data"]["status"]
        if status in FINAL:
            return status
        await asyncio.sleep(0.2)


async def trigger_all(
    urls: list[str], cookies: httpx.Cookies, chat_ids: list[str], workflow_id: str
) -> dict[str, list[Sent]]:
    """Send every chat's script: chats in parallel, each chat's requests one after another, alternating between the
    APIs; a re-run once its source has ended. Returns per chat the requests as sent, in order."""
    sent: dict[str, list[Sent]] = {chat_id: [] for chat_id in chat_ids}
    limits = httpx.Limits(max_connections=CHATS)
    clients = [httpx.AsyncClient(base_url=url, cookies=cookies, timeout=60, limits=limits) for url in urls]
    # A re-run carries no Idempotency-Key: it goes on a connection of its own, which the server cannot have closed.
    fresh = [httpx.AsyncClient(base_url=url, cookies=cookies, timeout=60, limits=NO_KEEPALIVE) for url in urls]
    try:

        async def one_chat(chat_index: int, chat_id: str) -> None:
            script = SCRIPTS[chat_index % len(SCRIPTS)]
            for index, request in enumerate(script):
                api = (chat_index + index) % len(clients)
                if request.rerun_of is None:
                    tag = tag_of(chat_index, index, request.flaky)
                    response = await post_run(clients[api], chat_id, workflow_id, tag, request.if_busy)
                    if response.status_code == 409 and request.if_busy == "reject":
                        sent[chat_id].append(Sent(chat_id, request, tag, None))
                        continue
                    assert response.status_code == 202, response.text
                    sent[chat_id].append(Sent(chat_id, request, tag, response.json()["data"]["id"]))
                    continue
                source = sent[chat_id][request.rerun_of]
                assert source.run_id is not None, "a script re-runs only runs that were accepted"
                status = await final_status(clients[api], chat_id, source.run_id)
                from_failed = request.from_failed and status != "completed"
                response = await fresh[api].post(
                    f"/api/chats/{chat_id}/workflow-runs/{source.run_id}/rerun", json={"fromFailed": from_failed}
                )
                assert response.status_code == 202, response.text
                run_id = response.json()["data"]["id"]
                sent[chat_id].append(Sent(chat_id, request, source.tag, run_id, source.run_id, from_failed))

        await asyncio.gather(*(one_chat(index, chat_id) for index, chat_id in enumerate(chat_ids)))
    finally:
        for client in [*clients, *fresh]:
            await client.aclose()
    return sent


def snapshot(client: httpx.Client, chat_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Every run of the chats as the API lists it now, by run id."""
    runs: dict[str, dict[str, Any]] = {}
    for chat_id in chat_ids:
        response = client.get(f"/api/chats/{chat_id}/workflow-runs")
        assert response.status_code == 200, response.text
        runs.update({run["id"]: run for run in response.json()["data"]["workflowRuns"]})
    return runs


def user_list(client: httpx.Client, user_id: str) -> list[dict[str, Any]]:
    """The user's runs across chats, every page."""
    runs: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = client.get(f"/api/users/{user_id}/workflow-runs", params=params)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        runs += data["workflowRuns"]
        cursor = data["nextCursor"]
        if cursor is None:
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


def runs_by_executor(monitor: psycopg.Connection[Any]) -> dict[str, int]:
    """How many durable workflows each executor has taken on."""
    rows = monitor.execute("SELECT executor_id, count(*) FROM dbos.workflow_status GROUP BY executor_id").fetchall()
    return {str(executor): int(count) for executor, count in rows}


def unfinished_runs(monitor: psycopg.Connection[Any]) -> list[str]:
    rows = monitor.execute("SELECT id FROM workflow_run WHERE status IN ('pending', 'running')").fetchall()
    return [str(row[0]) for row in rows]


def stored_runs(monitor: psycopg.Connection[Any]) -> dict[str, str]:
    """Every stored run's input tag, by run id."""
    return {str(row[0]): row[1] for row in monitor.execute("SELECT id, input->>'tag' FROM workflow_run").fetchall()}


def step_outputs(monitor: psycopg.Connection[Any]) -> dict[tuple[str, str], Any]:
    rows = monitor.execute("SELECT run_id, step_id, output FROM step_run").fetchall()
    return {(str(run_id), step_id): output for run_id, step_id, output in rows}


def durable_status(monitor: psycopg.Connection[Any], run_ids: list[str]) -> dict[str, Any]:
    """What DBOS records of these runs' workflows: for diagnosing a run that never ends."""
    rows = monitor.execute(
        "SELECT workflow_uuid, status, executor_id, queue_name, output, error FROM dbos.workflow_status "
        "WHERE workflow_uuid = ANY(%s)",
        (run_ids[:10],),
    ).fetchall()
    return {str(row[0]): row[1:] for row in rows}


def assert_chat_order(runs: list[dict[str, Any]], sent: list[Sent]) -> None:
    """The chat's runs in request order: no overlap, FIFO, interrupts and re-runs as they should have gone."""
    chat_id = sent[0].chat_id
    started = [run for run in runs if run["startedAt"] is not None]
    by_start = sorted(started, key=lambda run: run["startedAt"])
    assert [run["id"] for run in by_start] == [run["id"] for run in started], f"chat {chat_id} broke FIFO"
    for earlier, later in pairwise(started):
        assert earlier["completedAt"] <= later["startedAt"], f"runs overlapped in chat {chat_id}: {earlier} {later}"
    for run in runs:
        ran = [step for step in run["steps"] if step["startedAt"] is not None and step["reusedFrom"] is None]
        for upstream, downstream in pairwise(ran):
            assert upstream["completedAt"] <= downstream["startedAt"], run

    accepted = [request for request in sent if request.run_id is not None]
    by_id = {run["id"]: run for run in runs}
    for position, interrupt in enumerate(accepted):
        if interrupt.request.if_busy != "interrupt":
            continue
        # Cancelled in the interrupt's own transaction, if they had not ended before it.
        created_at = by_id[interrupt.run_id]["createdAt"]
        assert all(by_id[before.run_id]["completedAt"] <= created_at for before in accepted[:position]), chat_id
    interrupted_up_to = max((i for i, s in enumerate(accepted) if s.request.if_busy == "interrupt"), default=-1)
    for position, request in enumerate(accepted):
        run = by_id[request.run_id]
        if run["status"] == "cancelled":
            assert position < interrupted_up_to, f"run {run['id']} was cancelled with no interrupt after it"
        elif run["status"] == "failed":
            failing = [step for step in run["steps"] if step["status"] == "failed"]
            assert request.tag.endswith("-flaky") and [step["id"] for step in failing] == ["after"], run
            assert failing[0]["error"]["code"] == "http_error", run
        else:
            assert run["status"] == "completed", run


def assert_reruns(runs: dict[str, dict[str, Any]], sent: list[Sent], outputs: dict[tuple[str, str], Any]) -> int:
    """Each re-run is of its source's version, and reuses (output and all) exactly the steps its source completed
    when from its failed step, none otherwise. Returns how many re-runs reused steps and then completed."""
    reused_and_completed = 0
    for request in sent:
        if request.source_id is None or request.run_id is None:  # not a re-run (a re-run is never refused)
            continue
        run, source = runs[request.run_id], runs[request.source_id]
        assert run["rerunOf"] == source["id"] and run["workflowVersion"] == source["workflowVersion"]
        source_completed = {step["id"] for step in source["steps"] if step["status"] == "completed"}
        reused = {step["id"] for step in run["steps"] if step["reusedFrom"] is not None}
        assert reused == (source_completed if request.from_failed else set()), (run, source)
        for step in run["steps"]:
            if step["reusedFrom"] is not None:
                assert step["reusedFrom"] == source["id"] and step["status"] == "completed"
                assert outputs[run["id"], step["id"]] == outputs[source["id"], step["id"]]
        reused_and_completed += bool(reused) and run["status"] == "completed"
    return reused_and_completed


def assert_tool_calls(
    runs: dict[str, dict[str, Any]],
    tags: dict[str, str],
    outputs: dict[tuple[str, str], Any],
    hits: dict[str, int],
    cut_short: set[tuple[str, str]],
) -> list[str]:
    """Each path's calls are those of its steps that ran: every completed one got a call of its own, every failed
    one a call; the calls beyond them are at most one per step in `cut_short` or cancelled while running. Returns
    the paths called more often than their completed and failed steps."""
    steps_on: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for run_id, run in runs.items():
        for step in run["steps"]:
            if step["id"] in HTTP_STEPS:
                steps_on[f"/{tags[run_id]}/{step['id']}"].append((run_id, step))
    assert set(hits) <= set(steps_on), sorted(set(hits) - set(steps_on))[:10]
    beyond = []
    for path, steps in steps_on.items():
        ran = [(run_id, step) for run_id, step in steps if step["reusedFrom"] is None]
        calls = [outputs[run_id, step["id"]]["body"] for run_id, step in ran if step["status"] == "completed"]
        assert all(call["path"] == path for call in calls), calls
        numbers = [call["call"] for call in calls]
        assert len(set(numbers)) == len(numbers), f"two completed steps claim one call of {path}: {numbers}"
        failed = sum(step["status"] == "failed" for _, step in ran)
        cut = sum(
            (run_id, step["id"]) in cut_short or (step["status"] == "cancelled" and step["startedAt"] is not None)
            for run_id, step in ran
        )
        made = hits.get(path, 0)
        assert all(number <= made for number in numbers), (path, numbers, made)
        assert len(numbers) + failed <= made <= len(numbers) + failed + cut, (path, steps, made)
        if made > len(numbers) + failed:
            beyond.append(path)
    return beyond


@pytest.mark.timeout(300)
def test_two_apis_and_two_workers_survive_a_worker_sigkill(
    cluster: tuple[list[Server], list[Worker]], tool_server: HitCounter, monitor: psycopg.Connection[Any]
) -> None:
    servers, workers = cluster
    api1 = signed_in(servers[0])
    api2 = httpx.Client(base_url=servers[1].url, cookies=api1.cookies, timeout=30, limits=NO_KEEPALIVE)
    session = api2.get("/api/auth/session")
    assert session.status_code == 200, "the session of API 1 is not known to API 2"
    user_id = session.json()["data"]["user"]["id"]
    chat_ids = [
        (api1 if index % 2 == 0 else api2).post("/api/chats", json={"title": f"chat {index}"}).json()["data"]["id"]
        for index in range(CHATS)
    ]
    created = api1.post("/api/workflows", json={"name": "scale", "steps": workflow_steps(tool_server.url)})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["data"]["id"]

    sent: dict[str, list[Sent]] = {}
    trigger_errors: list[BaseException] = []

    def trigger() -> None:
        try:
            sent.update(asyncio.run(trigger_all([s.url for s in servers], api1.cookies, chat_ids, workflow_id)))
        except BaseException as exc:  # re-raised in the test's thread below
            trigger_errors.append(exc)

    began = time.monotonic()
    triggering = threading.Thread(target=trigger, daemon=True)
    triggering.start()

    # However slow a loaded machine makes the runs, the kill point comes while some are still to run; the victim is
    # a worker with runs in flight then.
    while True:
        assert not trigger_errors, trigger_errors
        running = {worker.executor_id: counts(monitor, worker.executor_id) for worker in workers}
        completed_runs = max(completed for completed, _ in running.values())
        in_flight = [worker for worker in workers if running[worker.executor_id][1] > 0]
        if completed_runs >= KILL_AFTER_COMPLETED and in_flight:
            victim = in_flight[0]
            break
        still_to_run = triggering.is_alive() or unfinished_runs(monitor)
        assert still_to_run, f"no kill point: every run ended ({completed_runs} completed; {runs_by_executor(monitor)})"
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

    triggering.join(FINAL_WAIT_SECONDS)
    assert not triggering.is_alive(), "triggering the runs did not end"
    assert not trigger_errors, trigger_errors
    deadline = time.monotonic() + FINAL_WAIT_SECONDS
    while unfinished := unfinished_runs(monitor):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(unfinished)} run(s) not final after {FINAL_WAIT_SECONDS} s; "
                f"their durable workflows: {durable_status(monitor, unfinished)}"
            )
        time.sleep(0.2)
    now = snapshot(api1, chat_ids)
    wall = time.monotonic() - began

    # Nothing lost: every accepted run is stored, has ended, and is listed once, identically by both APIs, in its
    # chat's list in request order and in the user's list; a refused request stored nothing.
    requests = [request for chat_id in chat_ids for request in sent[chat_id]]
    accepted = {request.run_id: request for request in requests if request.run_id is not None}
    refused = [request for request in requests if request.run_id is None]
    tags = stored_runs(monitor)
    assert set(tags) == set(accepted) == set(now)
    assert {tags[run_id] for run_id in accepted} == {request.tag for request in accepted.values()}
    assert not {request.tag for request in refused} & set(tags.values())
    assert all(run["status"] in FINAL and all(s["status"] in FINAL for s in run["steps"]) for run in now.values())
    for chat_id in chat_ids:
        listed_1 = api1.get(f"/api/chats/{chat_id}/workflow-runs")
        listed_2 = api2.get(f"/api/chats/{chat_id}/workflow-runs")
        assert listed_1.status_code == listed_2.status_code == 200
        assert listed_1.json() == listed_2.json()
        runs = listed_1.json()["data"]["workflowRuns"]
        assert [run["id"] for run in runs] == [s.run_id for s in sent[chat_id] if s.run_id is not None], chat_id
        assert all(run["chatId"] == chat_id for run in runs)
        assert_chat_order(runs, sent[chat_id])
    across_chats = user_list(api1, user_id)
    assert user_list(api2, user_id) == across_chats
    assert sorted(run["id"] for run in across_chats) == sorted(now)
    assert all(run == now[run["id"]] for run in across_chats)

    # Re-runs from the failed step happened, and reused what their sources had completed.
    outputs = step_outputs(monitor)
    reused_and_completed = assert_reruns(now, requests, outputs)
    assert reused_and_completed > 0, "no re-run completed from its failed step"

    # No completed step ran twice, no reused step's tool was called: a step can only have called its tool once more
    # if an interrupt cut it off, or the victim was running it when it died (so it had not completed).
    assert completed_steps(before_kill) <= completed_steps(after_kill)
    cut_short = {
        (run_id, step["id"])
        for run_id in orphaned & set(after_kill)
        for step in after_kill[run_id]["steps"]
        if step["status"] == "running"
    }
    beyond = assert_tool_calls(now, tags, outputs, dict(tool_server.hits), cut_short)

    statuses = [run["status"] for run in now.values()]
    print(
        f"\nscale fault: {len(requests)} requests in {CHATS} chats on 2 serve + 2 worker: {len(accepted)} runs "
        f"({sum(r.source_id is not None for r in requests)} re-runs, {reused_and_completed} completed from their "
        f"failed step), {len(refused)} refused; {statuses.count('completed')} completed, "
        f"{statuses.count('failed')} failed, {statuses.count('cancelled')} cancelled; wall {wall:.1f} s; killed "
        f"{victim.executor_id} at {killed_at:.1f} s (triggering {'done' if triggers_done_at_kill else 'still going'}) "
        f"with {len(orphaned)} runs on it; paths called more than their completed and failed steps: {sorted(beyond)}"
    )
