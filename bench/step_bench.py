"""Benchmark of a step's overhead: a run of N sequential trivial steps (`delay` of 0 s) through Runwire's API
against a bare DBOS workflow of N trivial steps on the same kind of database, side by side, on SQLite and on
PostgreSQL. Runwire's per-step figure is (completedAt - startedAt) / N of runs started one at a time in idle chats;
the floor's is the workflow's wall time / N (`bench.dbos_floor`, a process of its own).

    python -m bench.step_bench [--quick]
"""

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.common import POSTGRES_ADMIN_URL, Api, Server, parse_timestamp, postgres_database
from bench.report import Figure, print_table
from bench.seeding import wait_until_ended

GOAL_RATIO = 1.5
RUN_TIMEOUT = 300.0
# The list is read this seldom while a run executes: reading it (a body that grows with the steps) takes CPU the
# run's steps would otherwise have, and the bare DBOS workflow it is compared with is read by no one.
POLL_SECONDS = 0.25


def delay_steps(count: int) -> list[dict[str, object]]:
    return [
        {"id": f"s{i}", "toolId": "delay", "inputs": {"seconds": 0}, "dependsOn": [f"s{i - 1}"] if i else []}
        for i in range(count)
    ]


async def runwire_per_step(server: Server, steps: int, runs: int) -> list[float]:
    api = Api(server.url, max_connections=8)
    try:
        await api.sign_up()
        workflow_id = await api.create_workflow("bench steps", delay_steps(steps))
        per_step = []
        for _ in range(runs + 1):  # the first one warms up and is not counted
            chat = await api.create_chat("bench steps")
            await api.start_run(chat, workflow_id)
            (run,) = (await wait_until_ended(api, [chat], RUN_TIMEOUT, POLL_SECONDS))[chat]
            elapsed = parse_timestamp(run["completedAt"]) - parse_timestamp(run["startedAt"])
            per_step.append(elapsed * 1000 / steps)
        return per_step[1:]
    finally:
        await api.aclose()


def floor_per_step(url: str, steps: int, runs: int) -> list[float]:
    command = [sys.executable, "-m", "bench.dbos_floor", "--url", url, "--steps", str(steps), "--runs", str(runs)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=RUN_TIMEOUT)
    samples: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
    return samples


def measure(backend: str, tmp: Path, database_url: str | None, floor_url: str, steps: int, runs: int) -> list[Figure]:
    env = {"RUNWIRE_DATABASE_URL": database_url} if database_url else {}
    with Server(tmp / f"{backend}-data", tmp / f"{backend}.log", env=env) as server:
        ours = asyncio.run(runwire_per_step(server, steps, runs))
    floor = floor_per_step(floor_url, steps, runs)
    ratio = statistics.median(ours) / statistics.median(floor)
    return [
        Figure(f"{backend}: Runwire per step p50 ({runs} runs x {steps} steps)", f"{statistics.median(ours):.2f} ms"),
        Figure(f"{backend}: bare DBOS per step p50", f"{statistics.median(floor):.2f} ms"),
        Figure(f"{backend}: Runwire / bare DBOS", f"{ratio:.2f}", f"<= {GOAL_RATIO}", ratio <= GOAL_RATIO),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.step_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    args = parser.parse_args(argv)
    steps, runs = (20, 3) if args.quick else (100, 7)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="runwire-bench-", ignore_cleanup_errors=True) as directory:
        tmp = Path(directory)
        floor_sqlite = f"sqlite:///{tmp / 'floor.db'}"
        figures += measure("SQLite", tmp, None, floor_sqlite, steps, runs)
        with postgres_database() as runwire_url, postgres_database() as floor_url:
            if runwire_url is None or floor_url is None:
                figures.append(Figure("PostgreSQL", "skipped: no PostgreSQL at " + POSTGRES_ADMIN_URL))
            else:
                figures += measure("PostgreSQL", tmp, runwire_url, floor_url, steps, runs)
    print_table("step overhead against bare DBOS (sequential trivial steps)", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
