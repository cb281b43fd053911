"""Benchmark of isolated template rendering: what a render costs in a template worker process against the same
render in the server's own process (which the server never does: it would run a user's code unbounded).

One render per template step, so the difference of the medians is the per-step cost that isolation adds.

    python -m bench.template_bench [--quick]
"""

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

from bench.report import Figure, print_table
from runwire.config import Settings
from runwire.templating import sandbox
from runwire.templating.renderer import TemplateRenderer

TEMPLATE = (
    "Hello {{ input.name }}, {{ steps.fetch.output.items | length }} items: {{ steps.fetch.output.items | join(', ') }}"
)
CONTEXT = {"input": {"name": "Ada"}, "steps": {"fetch": {"output": {"items": [f"item {i}" for i in range(50)]}}}}
ADDED_COST_GOAL_MS = 1.0


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _timed(render: Callable[[], Awaitable[object]], count: int) -> list[float]:
    for _ in range(20):  # warm-up: compiled-template caches, a started worker
        await render()
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        await render()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


async def bench(count: int) -> list[Figure]:
    settings = Settings()
    renderer = TemplateRenderer(settings.render_limits, workers=1)
    renderer.start()
    limit = settings.max_step_output_bytes

    async def in_process() -> object:
        return sandbox.render_text(TEMPLATE, CONTEXT, max_chars=limit)

    async def in_worker() -> object:
        return await renderer.render_text(TEMPLATE, CONTEXT)

    try:
        local = await _timed(in_process, count)
        isolated = await _timed(in_worker, count)
    finally:
        renderer.stop()
    added = statistics.median(isolated) - statistics.median(local)
    return [
        Figure("renders per side", str(count)),
        Figure("in-process render p50 / p99", f"{statistics.median(local):.3f} / {_percentile(local, 0.99):.3f} ms"),
        Figure("worker render p50 / p99", f"{statistics.median(isolated):.3f} / {_percentile(isolated, 0.99):.3f} ms"),
        Figure(
            "added per-step cost of isolation (p50)",
            f"{added:.3f} ms",
            f"<= {ADDED_COST_GOAL_MS} ms",
            added <= ADDED_COST_GOAL_MS,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.template_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer renders")
    args = parser.parse_args(argv)
    figures = asyncio.run(bench(200 if args.quick else 2000))
    print_table("template rendering (one render per template step)", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
