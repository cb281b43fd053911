"""Every benchmark, one after another: `python -m bench [--quick] [--postgres]` (what `make bench` and `make
bench-quick` run).

Each prints its own table. The exit status is non-zero only when a benchmark's harness broke (an exception), never
because a figure missed its goal.
"""

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Sequence

from bench import (
    chat_bench,
    engine_bench,
    list_bench,
    mcp_bench,
    step_bench,
    stream_bench,
    template_bench,
    web_bench,
)

BENCHMARKS: dict[str, Callable[[Sequence[str] | None], int]] = {
    "stream": stream_bench.main,
    "list": list_bench.main,
    "engine": engine_bench.main,
    "step": step_bench.main,
    "template": template_bench.main,
    "chat": chat_bench.main,
    "web": web_bench.main,
    "mcp": mcp_bench.main,
}

# The benchmarks that take --postgres (the step benchmark always measures both databases).
ON_POSTGRES = ("list",)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark in its quick mode (about a minute)")
    parser.add_argument(
        "--postgres", action="store_true", help=f"those of {', '.join(ON_POSTGRES)} on PostgreSQL instead of SQLite"
    )
    parser.add_argument(
        "only", nargs="*", metavar="NAME", help=f"run just these of {', '.join(BENCHMARKS)} (default: all)"
    )
    args = parser.parse_args(argv)
    if unknown := set(args.only) - BENCHMARKS.keys():
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    broken = []
    started = time.monotonic()
    for name in args.only or BENCHMARKS:
        print(f"\n=== {name} benchmark{' (quick)' if args.quick else ''} ===", flush=True)
        began = time.monotonic()
        try:
            options = ["--quick"] * args.quick + ["--postgres"] * (args.postgres and name in ON_POSTGRES)
            status = BENCHMARKS[name](options)
        except Exception:
            traceback.print_exc()
            status = 1
        if status != 0:
            broken.append(name)
        print(f"=== {name}: {time.monotonic() - began:.0f} s{', BROKEN' if status else ''} ===", flush=True)
    print(
        f"\nall benchmarks: {time.monotonic() - started:.0f} s" + (f"; broken: {', '.join(broken)}" if broken else "")
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
