"""The floor of the step benchmark: a bare DBOS workflow of N trivial async steps, started directly, on a system
database configured as Runwire configures its own (SQLite in WAL mode, or PostgreSQL). For each line read on stdin it
runs the workflow once and prints that run's milliseconds per step on a line of stdout, until stdin ends; so the
benchmark can alternate its runs with Runwire's, each pair seeing the same load.

    python -m bench.dbos_floor --url URL --steps N
"""

import argparse
import asyncio
import json
import sys
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


async def _timed_run(steps: int) -> float:
    began = time.perf_counter()
    handle = await DBOS.start_workflow_async(trivial_workflow, steps)
    await handle.get_result()
    return (time.perf_counter() - began) * 1000 / steps


async def _answer_requests(steps: int) -> None:
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):
        print(json.dumps(await _timed_run(steps)), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dbos_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the DBOS system database URL")
    parser.add_argument("--steps", type=int, required=True)
    args = parser.parse_args(argv)
    config: DBOSConfig = {"name": "bench-floor", "system_database_url": args.url, "log_level": "WARNING"}
    if args.url.startswith("sqlite"):
        config["system_database_engine"] = create_dbos_sqlite_engine(args.url, 8)
    DBOS(config=config)
    DBOS.launch()
    try:
        asyncio.run(_answer_requests(args.steps))
    finally:
        DBOS.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
