"""Benchmark of a step's overhead: a run of N sequential trivial steps (`delay` of 0 s) through Runwire's API
against a bare DBOS workflow of N trivial steps on the same kind of database, side by side, on SQLite and on
PostgreSQL. Runwire's per-step figure is (completedAt - startedAt) / N of runs started one at a time in idle chats;
the floor's is the workflow's wall time / N (`bench.dbos_floor`, a process of its own). The two alternate, a run of
one then a run of the other, so that a burst of load on this shared machine falls on both rather than on one.

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

from bench.common import POSTGRES_ADMIN_URL, Api, Server, postgres_database
from bench.report import Figure, print_table
from bench.seeding import chained_steps, ms_per_step, run_alone

GOAL_RATIO = 1.5
RUN_TIMEOUT = 300.0
# The list is read this seldom while a run executes, longer than a run of 100 steps takes here: reading it (a body
# that grows with the steps, built afresh at each read since the run moved on) takes CPU the run's steps would
# otherwise have, and the bare DBOS workflow it is compared with is read by no one.
POLL_SECONDS = 1.0


class Floor:
    """`bench.dbos_floor` in a process of its own, running its workflow once per `run()`."""

    def __init__(self, url: str, steps: int) -> None:
        command = [sys.executable, "-m", "bench.dbos_floor", "--url", url, "--steps", str(steps)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self) -> float:
        """The milliseconds per step of one run."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench.dbos_floor exited with {self.process.wait(timeout=RUN_TIMEOUT)}")
        per_step: float = json.loads(line)
        return per_step

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=RUN_TIMEOUT)


async def alternate_runs(server: Server, floor: Floor, steps: int, runs: int) -> tuple[list[float], list[float]]:
    """Runwire's and the floor's milliseconds per step, a run of each in turn, after one of each to warm up."""
    api = Api(server.url, max_connections=8)
    try:
        await api.sign_up()
        workflow_id = await api.create_workflow("bench steps", chained_steps(steps, "delay", {"seconds": 0}))
        ours, floors = [], []
        for _ in range(runs + 1):
            run = await run_alone(api, workflow_id, "bench steps", RUN_TIMEOUT, POLL_SECONDS)
            ours.append(ms_per_step(run, steps))
            floors.append(floor.run())
        return ours[1:], floors[1:]
    finally:
        await api.aclose()


def measure(backend: str, tmp: Path, database_url: str | None, floor_url: str, steps: int, runs: int) -> list[Figure]:
    env = {"RUNWIRE_DATABASE_URL": database_url} if database_url else {}
    floor_process = Floor(floor_url, steps)
    try:
        with Server(tmp / f"{backend}-data", tmp / f"{backend}.log", env=env) as server:
            ours, floor = asyncio.run(alternate_runs(server, floor_process, steps, runs))
    finally:
        floor_process.close()
    # Each run of Runwire's against the floor's run right after it, which saw the same load.
    ratio = statistics.median(mine / bare for mine, bare in zip(ours, floor, strict=True))
    name = f"{backend}: Runwire / bare DBOS, median of pairs"
    return [
        Figure(f"{backend}: Runwire per step p50 ({runs} runs x {steps} steps)", f"{statistics.median(ours):.2f} ms"),
        Figure(f"{backend}: bare DBOS per step p50", f"{statistics.median(floor):.2f} ms"),
        Figure(name, f"{ratio:.2f}", f"<= {GOAL_RATIO}", ratio <= GOAL_RATIO),
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
