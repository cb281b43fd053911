"""A template worker: a process of its own that renders one template at a time for the server.

`python -m runwire.templating.worker MEMORY_BYTES`. It lowers its priority and caps its address space, says it is
ready (one frame, READY), then answers each request frame on stdin with one result frame on stdout, until stdin
closes. A render's time is the CPU time it takes here (a profiling timer), so a loaded machine never fails a quick
template; a render past it answers OUT_OF_TIME and the server replaces the worker. A render that runs out of memory
fails with a MemoryError here, or ends the process.
"""

import os
import resource
import signal
import sys
from typing import Any

import orjson

from runwire.jsonlimits import json_problems
from runwire.templating.frames import read_frame, write_frame
from runwire.templating.sandbox import TEMPLATE_LIMIT, TemplateError, render_text, render_value

NICENESS = 10
READY = {"ready": True}
OUT_OF_TIME = "outOfTime"


class _OutOfTime(BaseException):
    """Raised by the CPU timer inside a render; a BaseException, so that no `except Exception` on the way keeps it."""


def _out_of_time(signum: int, frame: object) -> None:
    raise _OutOfTime


def _limit_memory(extra_bytes: int) -> None:
    """Allow the address space the interpreter has now, plus `extra_bytes` for rendering."""
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * resource.getpagesize()
    limit = current + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def render(request: dict[str, Any]) -> dict[str, Any]:
    seconds: float = request["cpuSeconds"]
    try:
        signal.setitimer(signal.ITIMER_PROF, seconds)
        try:
            return _render(request)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except _OutOfTime:
        return {
            "error": f"the template did not finish within {seconds:g} seconds",
            "code": TEMPLATE_LIMIT,
            OUT_OF_TIME: True,
        }


def _render(request: dict[str, Any]) -> dict[str, Any]:
    max_bytes: int = request["maxBytes"]
    try:
        if request["kind"] == "text":
            result: object = render_text(request["template"], request["context"], max_chars=max_bytes)
        else:
            result = render_value(request["template"], request["context"], max_chars=max_bytes)
        problems = json_problems(result, "result")
        if problems:
            path, message = problems[0]
            raise TemplateError(f"the template's {path} is not valid data: {message}")
        if len(orjson.dumps(result)) > max_bytes:
            raise TemplateError(f"the template's result is larger than {max_bytes} bytes", TEMPLATE_LIMIT)
    except TemplateError as error:
        return {"error": error.message, "code": error.code}
    except MemoryError:
        return {"error": "the template ran out of memory while rendering", "code": TEMPLATE_LIMIT}
    return {"ok": result}


def main() -> None:
    _limit_memory(int(sys.argv[1]))
    os.nice(NICENESS)
    signal.signal(signal.SIGPROF, _out_of_time)
    requests, results = sys.stdin.buffer, sys.stdout.buffer
    write_frame(results, READY)
    while (request := read_frame(requests)) is not None:
        assert isinstance(request, dict)
        write_frame(results, render(request))


if __name__ == "__main__":
    main()
