"""The floor of the step benchmark: a bare DBOS workflow of N trivial async steps, started directly, on a system
database configured as Runwire configures its own (SQLite in WAL mode, or PostgreSQL). Prints the milliseconds per
step of each run as JSON on stdout.

    python -m bench.dbos_floor --url URL --steps N --runs K
"""

import argparse
import asyncio
import json
import time
from collections.abc import Sequence

from dbos import DBOS, DBOSConfig

from runwire.db import create_dbos_sqlite_engine


@DBOS.step(name="bench.trivial_step")
async def trivial_step(index: int) -> int:
    return index


@DBOS.workflow(name="bench.trivial_workflow")
async def trivial_workflow(steps: int) -> int:
    total = 0
    for index in range(steps):
        total += await trivial_step(index)
    return total


async def _timed_runs(steps: int, runs: int) -> list[float]:
    per_step = []
    for _ in range(runs + 1):  # the first one warms up and is not counted
        began = time.perf_counter()
        handle = await DBOS.start_workflow_async(trivial_workflow, steps)
        await handle.get_result()
        per_step.append((time.perf_counter() - began) * 1000 / steps)
    return per_step[1:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dbos_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the DBOS system database URL")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--runs", type=int, required=True)
    args = parser.parse_args(argv)
    config: DBOSConfig = {"name": "bench-floor", "system_database_url": args.url, "log_level": "WARNING"}
    if args.url.startswith("sqlite"):
        config["system_database_engine"] = create_dbos_sqlite_engine(args.url, 8)
    DBOS(config=config)
    DBOS.launch()
    try:
        print(json.dumps(asyncio.run(_timed_runs(args.steps, args.runs))))
    finally:
        DBOS.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
