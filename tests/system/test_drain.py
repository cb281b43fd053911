"""SIGTERM in the middle of runs and streams, on real processes: the step under way finishes, no further step starts,
streams end so that clients reconnect with their Last-Event-ID, the process exits 0 within the grace, and the next
executor resumes the run without running a completed step again. A second signal stops the process at once."""

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import (
    FINAL,
    HitCounter,
    Process,
    Server,
    Worker,
    free_port,
    signed_in,
    sse_events,
    wait_for_status,
)

pytestmark = pytest.mark.slow  # starts `runwire` subprocesses

TOKEN = "drain-metrics-token"
GRACE = 20
STEP_PAST_THE_SIGNAL = 8
QUEUE_POLL_SECONDS = 60


def workflow_steps(hit_counter: HitCounter, seconds: float) -> list[dict[str, Any]]:
    return [
        {"id": "first", "toolId": "http_request", "inputs": {"method": "GET", "url": f"{hit_counter.url}/first"}},
        {"id": "wait", "toolId": "delay", "inputs": {"seconds": seconds}, "dependsOn": ["first"]},
        {
            "id": "last",
            "toolId": "http_request",
            "inputs": {"method": "GET", "url": f"{hit_counter.url}/last"},
            "dependsOn": ["wait"],
        },
    ]


def start(client: httpx.Client, steps: list[dict[str, Any]]) -> str:
    chat = client.post("/api/chats", json={}).json()["data"]
    workflow = client.post("/api/workflows", json={"name": "drain", "steps": steps}).json()["data"]
    run = client.post(f"/api/chats/{chat['id']}/workflow-runs", json={"workflowId": workflow["id"]}).json()["data"]
    return f"/api/chats/{chat['id']}/workflow-runs/{run['id']}"


def wait_until_step_runs(client: httpx.Client, path: str, index: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        run: dict[str, Any] = client.get(path).json()["data"]
        if run["steps"][index]["status"] == "running":
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.05)


class StreamReader:
    """A run's stream read on a thread: its events, and when it ended."""

    def __init__(self, url: str, cookies: httpx.Cookies, last_event_id: int | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.ended_at: float | None = None
        self.error: BaseException | None = None
        self.opened = threading.Event()
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        self._thread = threading.Thread(target=self._read, args=(url, cookies, headers), daemon=True)
        self._thread.start()
        assert self.opened.wait(10), "the stream did not open"

    def _read(self, url: str, cookies: httpx.Cookies, headers: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", url, cookies=cookies, headers=headers, timeout=60) as response:
                self.opened.set()
                for event in sse_events(response.iter_lines()):
                    self.events.append(event)
        except BaseException as error:
            self.error = error
        finally:
            self.ended_at = time.monotonic()
            self.opened.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert self.ended_at is not None, "the stream is still open"
        assert self.error is None, f"the stream broke instead of ending: {self.error!r}"


def metric(server: Server | str, name: str) -> float:
    url = server.url if isinstance(server, Server) else server
    text = httpx.get(f"{url}/api/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in the metrics")


def terminate(process: Process) -> tuple[int, float]:
    """SIGTERM, then wait: the exit status, and the seconds it took."""
    assert process.process is not None
    sent = time.monotonic()
    process.process.send_signal(signal.SIGTERM)
    status = process.process.wait(GRACE + 15)
    return status, time.monotonic() - sent


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def sqlite_server(data_dir: Path, tmp_path: Path) -> Iterator[Server]:
    env = {
        "RUNWIRE_TOOL_ALLOWED_HOSTS": "127.0.0.1",
        "RUNWIRE_SHUTDOWN_GRACE_SECONDS": str(GRACE),
        "RUNWIRE_METRICS_TOKEN": TOKEN,
    }
    server = Server(data_dir, tmp_path / "server.log", env)
    yield server
    server.stop()


def test_sigterm_lets_the_step_finish_ends_streams_and_the_restart_resumes(
    sqlite_server: Server, hit_counter: HitCounter
) -> None:
    server = sqlite_server
    server.start()
    client = signed_in(server)
    # The step outlasts the drain's start by far, so that a stream ending with the step is told apart on a loaded
    # machine too.
    path = start(client, workflow_steps(hit_counter, seconds=STEP_PAST_THE_SIGNAL))
    running = wait_until_step_runs(client, path, 1)
    stream = StreamReader(f"{server.url}{path}/stream", client.cookies)
    assert metric(server, "runwire_open_streams") == 1
    assert metric(server, "runwire_executor_runs_in_progress") == 1

    assert server.process is not None
    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    stream.join(STEP_PAST_THE_SIGNAL)
    ended = stream.ended_at
    assert ended is not None and ended - sent < STEP_PAST_THE_SIGNAL - 2, "the stream outlived the drain's start"
    status = server.process.wait(GRACE + 15)
    waited = time.monotonic() - sent
    assert status == 0, server.log_path.read_text()
    assert waited < GRACE, waited
    assert hit_counter.hits == {"/first": 1}, "no step started after SIGTERM"
    log = server.log_path.read_text()
    assert '"draining: no new runs' in log and '"run left for the next executor"' in log

    server.start()
    restarted = httpx.Client(base_url=server.url, cookies=client.cookies, timeout=10)
    done = wait_for_status(restarted, path, FINAL)
    assert done["status"] == "completed", done
    assert hit_counter.hits == {"/first": 1, "/last": 1}
    first, wait, last = done["steps"]
    assert first == running["steps"][0]
    assert wait["attempts"] == 1, "the step that finished during the drain ran once"
    assert wait["completedAt"] < last["startedAt"]
    # The stream read before SIGTERM resumes where it ended, on the restarted server.
    last_seen = stream.events[-1]["id"]
    resumed = StreamReader(f"{server.url}{path}/stream", client.cookies, last_event_id=last_seen)
    resumed.join(10)
    ids = [event["id"] for event in resumed.events]
    assert (
        ids == list(range(last_seen + 1, last_seen + 1 + len(ids))) and resumed.events[-1]["event"] == "run_completed"
    )


def test_a_step_past_the_grace_is_stopped_and_run_again_after_the_restart(
    data_dir: Path, tmp_path: Path, hit_counter: HitCounter
) -> None:
    env = {"RUNWIRE_TOOL_ALLOWED_HOSTS": "127.0.0.1", "RUNWIRE_SHUTDOWN_GRACE_SECONDS": "1"}
    server = Server(data_dir, tmp_path / "server.log", env)
    try:
        server.start()
        client = signed_in(server)
        path = start(client, workflow_steps(hit_counter, seconds=4))
        wait_until_step_runs(client, path, 1)
        status, _ = terminate(server)
        assert status == 0
        # Stopped at the grace rather than waited for (no wall-clock bound: a loaded machine takes seconds to exit):
        # the log says so, and after the restart the step runs again (2 attempts) where a finished one would not.
        assert '"run stopped mid-step: the grace ended"' in server.log_path.read_text()

        server.start()
        restarted = httpx.Client(base_url=server.url, cookies=client.cookies, timeout=10)
        done = wait_for_status(restarted, path, FINAL)
        assert done["status"] == "completed", done
        assert hit_counter.hits == {"/first": 1, "/last": 1}
        assert done["steps"][1]["attempts"] == 2, "the interrupted step ran again, the completed one did not"
    finally:
        server.stop()


def test_a_second_signal_stops_at_once(sqlite_server: Server, hit_counter: HitCounter) -> None:
    server = sqlite_server
    server.start()
    client = signed_in(server)
    path = start(client, workflow_steps(hit_counter, seconds=10))
    wait_until_step_runs(client, path, 1)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    sent = time.monotonic()
    server.process.send_signal(signal.SIGINT)
    status = server.process.wait(10)
    assert time.monotonic() - sent < 8  # the step had more than 9 s to go, the grace 20
    assert status == 128 + signal.SIGINT
    assert '"second signal: stopping at once"' in server.log_path.read_text()

    server.start()
    restarted = httpx.Client(base_url=server.url, cookies=client.cookies, timeout=10)
    done = wait_for_status(restarted, path, FINAL, timeout=40)
    assert done["status"] == "completed" and hit_counter.hits == {"/first": 1, "/last": 1}


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[dict[str, Any]]:
    env = {
        "RUNWIRE_DATABASE_URL": postgres_url,
        "RUNWIRE_TOOL_ALLOWED_HOSTS": "127.0.0.1",
        "RUNWIRE_SHUTDOWN_GRACE_SECONDS": str(GRACE),
        "RUNWIRE_METRICS_TOKEN": TOKEN,
        # Nothing here waits for a look at the queue on its timer: every run starts because a worker was woken.
        "RUNWIRE_QUEUE_POLL_SECONDS": str(QUEUE_POLL_SECONDS),
    }
    api = Server(tmp_path / "api", tmp_path / "api.log", env, "--no-executor")
    w1_port = free_port()
    w1 = Worker("w1", tmp_path / "w1.log", {**env, "RUNWIRE_METRICS_PORT": str(w1_port)})
    w2 = Worker("w2", tmp_path / "w2.log", env)
    yield {"api": api, "w1": w1, "w2": w2, "w1_url": f"http://127.0.0.1:{w1_port}"}
    for process in (api, w1, w2):
        process.stop()


def test_on_postgresql_a_draining_worker_hands_its_run_to_another_and_the_api_ends_its_streams(
    cluster: dict[str, Any], hit_counter: HitCounter
) -> None:
    api, w1, w2 = cluster["api"], cluster["w1"], cluster["w2"]
    api.start()
    w1.start()
    client = signed_in(api)
    path = start(client, workflow_steps(hit_counter, seconds=3))
    wait_until_step_runs(client, path, 1)
    stream = StreamReader(f"{api.url}{path}/stream", client.cookies)
    # The worker serves its own liveness, readiness and metrics on RUNWIRE_METRICS_PORT, and nothing else.
    w1_url = cluster["w1_url"]
    assert httpx.get(f"{w1_url}/api/readiness").json() == {"data": {"status": "ready"}}
    assert metric(w1_url, "runwire_executor_runs_in_progress") == 1
    assert httpx.get(f"{w1_url}/api/chats/{path.split('/')[3]}").status_code == 404

    status, seconds = terminate(w1)
    assert status == 0, w1.log_path.read_text()
    assert 1 < seconds < GRACE, seconds
    run = client.get(path).json()["data"]
    assert [step["status"] for step in run["steps"]] == ["completed", "completed", "pending"]
    assert '"drained: runs left unfinished are back on the run queue"' in w1.log_path.read_text()

    w2.start()
    done = wait_for_status(client, path, FINAL)
    assert done["status"] == "completed", done
    assert hit_counter.hits == {"/first": 1, "/last": 1}
    assert done["steps"][1]["attempts"] == 1
    stream.join(10)
    assert stream.events[-1]["event"] == "run_completed"
    logged = [json.loads(line) for line in w2.log_path.read_text().splitlines() if line.startswith("{")]
    assert any(line["message"] == "step started" and line.get("step_id") == "last" for line in logged), logged

    # The API process: a stream open on SIGTERM (of a run no executor takes) ends, and the process exits 0.
    assert terminate(w2)[0] == 0
    path = start(client, workflow_steps(hit_counter, seconds=1))
    live = StreamReader(f"{api.url}{path}/stream", client.cookies)
    assert metric(api, "runwire_open_streams") == 1
    assert metric(api, "runwire_queue_pending_runs") == 1
    status, seconds = terminate(api)
    live.join(5)
    assert status == 0 and seconds < GRACE / 2, (status, seconds, api.log_path.read_text())


def test_on_postgresql_the_chats_next_run_starts_on_another_worker_once_a_draining_worker_ends_a_run(
    cluster: dict[str, Any],
) -> None:
    api, workers = cluster["api"], (cluster["w1"], cluster["w2"])
    for process in (api, *workers):
        process.start()
    client = signed_in(api)
    path = start(client, [{"id": "wait", "toolId": "delay", "inputs": {"seconds": 5}}])
    wait_until_step_runs(client, path, 0)
    run_id = path.rsplit("/", 1)[1]
    (draining,) = [worker for worker in workers if run_id in worker.log_path.read_text()]
    runs_path, workflow_id = path.rsplit("/", 1)[0], client.get(path).json()["data"]["workflowId"]
    queued = client.post(runs_path, json={"workflowId": workflow_id})
    assert queued.status_code == 202 and queued.json()["data"]["status"] == "pending", queued.text

    status, _ = terminate(draining)  # its step finishes within the grace, and with it the run
    assert status == 0, draining.log_path.read_text()
    assert client.get(path).json()["data"]["status"] == "completed"
    # The other worker looked at the queue when the second run was queued, with the chat busy; only a wake lets it
    # look again before its next poll, a minute away.
    next_run = wait_for_status(client, f"{runs_path}/{queued.json()['data']['id']}", FINAL, timeout=15)
    assert next_run["status"] == "completed", next_run
