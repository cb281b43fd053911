"""Benchmark of the seed endpoint, `GET /api/chats/:chatId/workflow-runs`, against its floor.

- List vs floor: requests/s of the list of a chat of 50 runs x 5 `template` steps, side by side with apps that
  return the very same bytes from memory under the same uvicorn settings (bench/floor_apps.py), and /api/liveness.
- Cost growth: p50/p99 latency (one connection) at 1, 10, 100 and 1,000 runs in the chat, and at ~1,000 vs
  1,000,000 runs in the database in other chats.
- Statements per list request, counted in-process (bench/statements.py), at 1 and 1,000 runs.
- Memory: server RSS while listing a 1,000-run chat 100 times after a warm-up.

The 50 runs are made through the public API and executed by the engine of a real `runwire serve` on a fresh
temporary data dir (the embedded SQLite default). The larger chats and the volume in other chats are clones of
those runs written by bench/bulk_load.py while the server is stopped: executing 1,000 runs in one chat through
the engine would take minutes (runs of a chat execute one at a time). The server is pinned to one core and the
load generator (wrk, or httpx without it) to the other. Numbers are information: the exit status is 0 whenever the
harness itself worked.

With `--postgres` the server runs on a fresh PostgreSQL database (127.0.0.1:5432) and the benchmark measures what
needs no bulk loading, which writes SQLite files only: the list, its 304 and liveness against the floor apps, and the
idle CPU.

    python -m bench.list_bench [--quick] [--postgres]
"""

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.bulk_load import BulkLoader
from bench.common import POSTGRES_ADMIN_URL, Api, Server, cpu_seconds, postgres_database
from bench.floor_apps import KINDS, FloorServer
from bench.loadgen import Load, drive, generator_name, split_cores
from bench.report import Figure, print_table
from bench.seeding import request_runs, template_steps, wait_until_ended
from bench.statements import first_word, statements_per_request

CONNECTIONS = 16
SEED_RUNS = 50
STEPS_PER_RUN = 5
GROWTH = (1, 10, 100, 1_000)
BASELINE_OTHER_RUNS = 1_000
RUNS_PER_OTHER_CHAT = 100
SEED_TIMEOUT = 120.0
MEMORY_WARMUP = 10
MEMORY_LISTS = 100  # 20 in quick mode
GOAL_VS_CEILING = 0.8
GOAL_VS_FLOOR = 0.3
GOAL_VOLUME_GROWTH = 1.3
GOAL_STATEMENTS = 2
GOAL_REVALIDATED_STATEMENTS = 1
GOAL_REVALIDATION = 0.7
GOAL_LIVENESS = 0.9
GOAL_IDLE_CPU = 0.01


@dataclass(frozen=True)
class Scale:
    throughput_seconds: float
    rounds: int
    latency_seconds: float
    warmup_requests: int
    volume_runs: int
    volume_chats: tuple[int, ...]  # the chats (by run count) whose latency is compared at both volumes
    memory_lists: int
    idle_seconds: float


FULL = Scale(
    throughput_seconds=5.0,
    rounds=2,
    latency_seconds=4.0,
    warmup_requests=50,
    volume_runs=1_000_000,
    volume_chats=(1, SEED_RUNS, 1_000),
    memory_lists=MEMORY_LISTS,
    idle_seconds=10.0,
)
QUICK = Scale(
    throughput_seconds=1.0,
    rounds=1,
    latency_seconds=1.0,
    warmup_requests=5,
    volume_runs=20_000,
    volume_chats=(1, SEED_RUNS),
    memory_lists=20,
    idle_seconds=3.0,
)


@dataclass(frozen=True)
class Seeded:
    cookie: str
    main_chat: str
    growth_chats: dict[int, str]

    def path(self, chat_id: str) -> str:
        return f"/api/chats/{chat_id}/workflow-runs"


@dataclass(frozen=True)
class Latency:
    runs: int
    body_bytes: int
    load: Load


@dataclass(frozen=True)
class SideBySide:
    """The list, its 304 and liveness against the floor apps, in one run, and the idle server's CPU before."""

    body_bytes: int
    throughput: dict[str, Load]
    idle_cpu: float
    idle_seconds: float


@dataclass(frozen=True)
class Results:
    side_by_side: SideBySide
    growth: list[Latency]
    volume_runs: tuple[int, int]
    volume: list[tuple[Latency, Latency]]
    statements: dict[int, dict[str, list[str]]]
    memory_kb: tuple[int, int, int]
    memory_lists: int


async def seed_through_api(server: Server) -> Seeded:
    api = Api(server.url, max_connections=32)
    try:
        await api.sign_up()
        workflow_id = await api.create_workflow("bench list", template_steps(STEPS_PER_RUN))
        main_chat = await api.create_chat("bench list")
        growth = {runs: await api.create_chat(f"bench growth {runs}") for runs in GROWTH}
        await request_runs(api, main_chat, workflow_id, SEED_RUNS)
        await wait_until_ended(api, [main_chat], SEED_TIMEOUT)
        return Seeded(api.session_cookie, main_chat, growth)
    finally:
        await api.aclose()


def add_clones(data_dir: Path, seeded: Seeded, *, growth: bool, other_runs: int) -> int:
    """Clone the seeded runs into the growth chats (when `growth`) and into new chats of the same user, then return
    the number of runs in the database."""
    loader = BulkLoader(data_dir)
    try:
        templates = loader.templates(seeded.main_chat)
        if growth:
            for runs, chat_id in seeded.growth_chats.items():
                loader.add_runs(templates, [chat_id], runs)
        chats = loader.add_chats(loader.chat_owner(seeded.main_chat), other_runs // RUNS_PER_OTHER_CHAT, "bench volume")
        loader.add_runs(templates, chats, RUNS_PER_OTHER_CHAT)
        return loader.run_count()
    finally:
        loader.close()


def get_response(url: str, cookie: str, times: int = 1, extra: dict[str, str] | None = None) -> httpx.Response:
    """A GET of `url`, sent `times` times one after another (more than once to warm the server up)."""
    with httpx.Client(headers={"Cookie": cookie, **(extra or {})}, timeout=60) as client:
        for _ in range(times):
            response = client.get(url)
            if response.status_code not in (200, 304):
                raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return response


def get_body(url: str, cookie: str, times: int = 1) -> bytes:
    return get_response(url, cookie, times).content


def best_throughput(
    targets: dict[str, str], cookie: str, scale: Scale, cpus: set[int] | None, extra: dict[str, dict[str, str]]
) -> dict[str, Load]:
    """Every target (with its `extra` headers) loaded in turn, round after round, after a warm-up; the best round."""
    for name, url in targets.items():
        get_response(url, cookie, scale.warmup_requests, extra.get(name))
    rounds: dict[str, list[Load]] = {name: [] for name in targets}
    for _ in range(scale.rounds):
        for name, url in targets.items():
            headers = [f"Cookie: {cookie}", *(f"{key}: {value}" for key, value in extra.get(name, {}).items())]
            load = drive(url, connections=CONNECTIONS, seconds=scale.throughput_seconds, headers=headers, cpus=cpus)
            if load.errors:
                raise RuntimeError(f"{name}: {load.errors} failed request(s) under load")
            rounds[name].append(load)
    return {name: max(loads, key=lambda load: load.rps) for name, loads in rounds.items()}


def latency(server: Server, seeded: Seeded, chat_id: str, runs: int, scale: Scale, cpus: set[int] | None) -> Latency:
    url = server.url + seeded.path(chat_id)
    body = get_body(url, seeded.cookie, scale.warmup_requests)
    load = drive(url, connections=1, seconds=scale.latency_seconds, headers=[f"Cookie: {seeded.cookie}"], cpus=cpus)
    if load.errors:
        raise RuntimeError(f"list of {runs} runs: {load.errors} failed request(s)")
    return Latency(runs, len(body), load)


def memory(server: Server, url: str, cookie: str, lists: int) -> tuple[int, int, int]:
    """Server VmRSS before listing, after the warm-up lists, and after `lists` more."""
    before = server.rss_kb()
    with httpx.Client(headers={"Cookie": cookie}, timeout=60) as client:
        for count in (MEMORY_WARMUP, lists):
            for _ in range(count):
                if client.get(url).status_code != 200:
                    raise RuntimeError(f"GET {url} failed while measuring memory")
            if count == MEMORY_WARMUP:
                warm = server.rss_kb()
    return before, warm, server.rss_kb()


@contextmanager
def floor_servers(tmp: Path, body: bytes, cpus: set[int] | None) -> Iterator[dict[str, FloorServer]]:
    body_file = tmp / "body.json"
    body_file.write_bytes(body)
    with ExitStack() as stack, ThreadPoolExecutor(len(KINDS)) as pool:
        servers = {kind: FloorServer(kind, body_file, tmp / f"floor-{kind}.log", cpus) for kind in KINDS}
        for server in servers.values():
            stack.callback(server.stop)
        list(pool.map(FloorServer.start, servers.values()))  # side by side: each takes a second to import
        yield servers


def bench(tmp: Path, scale: Scale) -> Results:
    server_cpus, load_cpus = split_cores()
    data_dir = tmp / "data"
    server = Server(data_dir, tmp / "server.log", cpus=server_cpus)
    try:
        server.start()
        seeded = asyncio.run(seed_through_api(server))
        server.stop()
        baseline_runs = add_clones(data_dir, seeded, growth=True, other_runs=BASELINE_OTHER_RUNS)
        server.start()
        compared = side_by_side(tmp, server, seeded, scale)
        chats = {runs: seeded.growth_chats[runs] for runs in GROWTH} | {SEED_RUNS: seeded.main_chat}
        before = {runs: latency(server, seeded, chat, runs, scale, load_cpus) for runs, chat in chats.items()}
        biggest = server.url + seeded.path(seeded.growth_chats[max(GROWTH)])
        memory_kb = memory(server, biggest, seeded.cookie, scale.memory_lists)
        server.stop()
        counted = statements_per_request(
            data_dir, seeded.cookie, [seeded.path(seeded.growth_chats[runs]) for runs in (1, max(GROWTH))]
        )
        statements = dict(zip((1, max(GROWTH)), counted.values(), strict=True))
        total_runs = add_clones(data_dir, seeded, growth=False, other_runs=scale.volume_runs - BASELINE_OTHER_RUNS)
        server.start()
        volume = [
            (before[runs], latency(server, seeded, chats[runs], runs, scale, load_cpus)) for runs in scale.volume_chats
        ]
    finally:
        server.stop()
    growth = [before[runs] for runs in GROWTH]
    return Results(compared, growth, (baseline_runs, total_runs), volume, statements, memory_kb, scale.memory_lists)


def side_by_side(tmp: Path, server: Server, seeded: Seeded, scale: Scale) -> SideBySide:
    """The idle server's CPU, then the list (fresh and revalidated) and liveness loaded in turn with the floor apps
    serving the list's bytes."""
    server_cpus, load_cpus = split_cores()
    main_list = server.url + seeded.path(seeded.main_chat)
    first = get_response(main_list, seeded.cookie)
    idle_cpu = idle_cpu_share(server, scale.idle_seconds)
    with floor_servers(tmp, first.content, server_cpus) as floors:
        targets = {"list": main_list, "list-304": main_list, "liveness": server.url + "/api/liveness"}
        targets |= {kind: floor.url + "/floor" for kind, floor in floors.items()}
        extra = {"list-304": {"If-None-Match": first.headers["etag"]}}
        throughput = best_throughput(targets, seeded.cookie, scale, load_cpus, extra)
    return SideBySide(len(first.content), throughput, idle_cpu, scale.idle_seconds)


def bench_postgres(tmp: Path, scale: Scale, database_url: str) -> SideBySide:
    server_cpus, _ = split_cores()
    server = Server(tmp / "data", tmp / "server.log", env={"RUNWIRE_DATABASE_URL": database_url}, cpus=server_cpus)
    try:
        server.start()
        return side_by_side(tmp, server, asyncio.run(seed_through_api(server)), scale)
    finally:
        server.stop()


def idle_cpu_share(server: Server, seconds: float) -> float:
    """The share of one core the server's process used while nothing asked anything of it: from a second after the
    last request, once the look at the run queue that the last run's end woke is over."""
    time.sleep(1.0)
    began, used = time.monotonic(), cpu_seconds(server.pid)
    time.sleep(seconds)
    return (cpu_seconds(server.pid) - used) / (time.monotonic() - began)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def side_by_side_figures(compared: SideBySide) -> list[Figure]:
    rps = {name: load.rps for name, load in compared.throughput.items()}
    kb = compared.body_bytes / 1024
    out = [Figure(f"req/s {name}", f"{value:,.0f}") for name, value in rps.items()]
    vs_ceiling, vs_floor = _ratio(rps["list"], rps["fastapi"]), _ratio(rps["list"], rps["bare"])
    out += [
        Figure(
            f"list ({kb:.1f} KB) / FastAPI route, same bytes",
            f"{vs_ceiling:.2f}",
            f">= {GOAL_VS_CEILING:g}",
            vs_ceiling >= GOAL_VS_CEILING,
        ),
        Figure(
            f"list ({kb:.1f} KB) / bare ASGI, same bytes",
            f"{vs_floor:.2f}",
            f">= {GOAL_VS_FLOOR:g}",
            vs_floor >= GOAL_VS_FLOOR,
        ),
        Figure("list / sync FastAPI route, same bytes", f"{_ratio(rps['list'], rps['fastapi-sync']):.2f}"),
        Figure(
            "list / sync route behind Runwire's 3 sync deps, no db", f"{_ratio(rps['list'], rps['fastapi-deps']):.2f}"
        ),
        Figure(
            "list 304 (If-None-Match) / FastAPI route, small dict",
            f"{_ratio(rps['list-304'], rps['fastapi-dict']):.2f}",
            f">= {GOAL_REVALIDATION:g}",
            _ratio(rps["list-304"], rps["fastapi-dict"]) >= GOAL_REVALIDATION,
        ),
        Figure(
            "liveness / FastAPI route, small dict",
            f"{_ratio(rps['liveness'], rps['fastapi-dict']):.2f}",
            f">= {GOAL_LIVENESS:g}",
            _ratio(rps["liveness"], rps["fastapi-dict"]) >= GOAL_LIVENESS,
        ),
        Figure("liveness / bare ASGI", f"{_ratio(rps['liveness'], rps['bare']):.2f}"),
    ]
    out.append(
        Figure(
            f"CPU of an idle server over {compared.idle_seconds:g} s",
            f"{compared.idle_cpu * 100:.2f}% of a core",
            f"<= {GOAL_IDLE_CPU * 100:g}%",
            compared.idle_cpu <= GOAL_IDLE_CPU,
        )
    )
    return out


def figures(results: Results) -> list[Figure]:
    out = side_by_side_figures(results.side_by_side)
    for item in results.growth:
        out.append(
            Figure(
                f"list latency p50/p99, {item.runs} runs ({item.body_bytes / 1024:,.1f} KB)",
                f"{item.load.p50_ms:.2f} / {item.load.p99_ms:.2f} ms",
            )
        )
    smallest = results.growth[0]
    for item in results.growth[1:]:
        per_kb = _ratio(item.load.p50_ms - smallest.load.p50_ms, (item.body_bytes - smallest.body_bytes) / 1024)
        out.append(Figure(f"  added p50 per added KB, 1 -> {item.runs} runs", f"{per_kb * 1000:.1f} us/KB"))
    baseline, total = results.volume_runs
    for before, after in results.volume:
        growth = _ratio(after.load.p50_ms, before.load.p50_ms)
        out.append(
            Figure(
                f"p50 at {total:,} / {baseline:,} runs in db, chat of {before.runs}",
                f"{growth:.2f} ({before.load.p50_ms:.2f} -> {after.load.p50_ms:.2f} ms)",
                f"<= {GOAL_VOLUME_GROWTH:g}",
                growth <= GOAL_VOLUME_GROWTH,
            )
        )
    for runs, counted in results.statements.items():
        for kind, sent in counted.items():
            goal = GOAL_REVALIDATED_STATEMENTS if kind != "fresh" else GOAL_STATEMENTS
            kinds = ", ".join(f"{first_word(s)}" for s in sent)
            out.append(
                Figure(
                    f"SQL statements per list, {runs} run(s), {kind}",
                    f"{len(sent)} ({kinds})",
                    f"<= {goal}",
                    len(sent) <= goal,
                )
            )
    before_kb, warm_kb, after_kb = results.memory_kb
    out.append(
        Figure(
            f"server RSS listing 1,000 runs: before / +{MEMORY_WARMUP} / +{results.memory_lists} more",
            f"{before_kb / 1024:.1f} / {warm_kb / 1024:.1f} / {after_kb / 1024:.1f} MiB",
            "no growth after warm-up",
            after_kb - warm_kb <= 0.02 * warm_kb,
        )
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.list_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short loads and 20k runs of volume; under 30 s")
    parser.add_argument("--postgres", action="store_true", help="on PostgreSQL: the list against the floor apps")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="runwire-bench-", ignore_cleanup_errors=True) as tmp:
        if args.postgres:
            with postgres_database() as database_url:
                if database_url is None:
                    print(f"no PostgreSQL at {POSTGRES_ADMIN_URL}: nothing measured")
                    return 0
                table = side_by_side_figures(bench_postgres(Path(tmp), scale, database_url))
        else:
            results = bench(Path(tmp), scale)
            table = figures(results)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print_table(f"run list (GET /api/chats/:chatId/workflow-runs), {backend}", table)
    generator = generator_name()
    print(
        f"load: {generator}, {CONNECTIONS} connections ({'1 thread' if generator == 'wrk' else 'asyncio'}) for "
        f"req/s, best of {scale.rounds} x {scale.throughput_seconds:g} s; 1 connection for latency, "
        f"{scale.latency_seconds:g} s; server and load on separate cores: {split_cores()}"
    )
    print(
        f"list: {SEED_RUNS} runs x {STEPS_PER_RUN} template steps made through the API"
        + (
            ""
            if args.postgres
            else f"; larger chats and {results.volume_runs[1]:,} runs of volume cloned from them by the bulk loader"
            + (" (quick mode: a small volume)" if args.quick else "")
        )
    )
    print(f"took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
