"""The server's side of template rendering: a small pool of warm worker processes (`templating.worker`).

A render never runs on an event loop or in a database transaction here: it is sent to an idle worker and waited for
on a thread of the pool's own, so that slow renders never take the threads the executor writes with. A render past
its time, or one whose step is cancelled, has its worker killed; a fresh worker takes its place on the next render.
A render's time is the CPU time the worker spends on it, counted by the worker: a loaded machine (or a worker's
start) is never charged to the template. The server kills a worker that has not answered long past that time (a
computation in C that the worker's timer cannot stop), or whose render ran out of time.
"""

import asyncio
import contextlib
import select
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from runwire import metrics
from runwire.templating.frames import read_frame, write_frame
from runwire.templating.sandbox import TEMPLATE_LIMIT, TemplateError
from runwire.templating.worker import OUT_OF_TIME, READY

# How long a new worker may take to start (import, cap its memory, say it is ready) on a loaded machine.
START_SECONDS = 30.0
# The wall-clock time a render may take, as a multiple of its CPU time plus a margin, before its worker is killed.
WALL_FACTOR, WALL_MARGIN_SECONDS = 4.0, 5.0


@dataclass(frozen=True)
class RenderLimits:
    timeout_seconds: float
    memory_bytes: int
    max_output_bytes: int


class _Worker:
    def __init__(self, memory_bytes: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runwire.templating.worker", str(memory_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # A worker's own output could hold a template's text; it never reaches the server's log.
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._killed = False
        self._ready = False

    @property
    def alive(self) -> bool:
        return not self._killed and self.process.poll() is None

    def call(self, request: dict[str, Any], timeout: float) -> object:
        """The worker's answer to a render of at most `timeout` CPU seconds; TemplateError when it ran out of time or
        memory (the worker is then killed), or died."""
        stdin, stdout = self._pipes()
        if not self._started(stdout):
            self.kill()
            raise TemplateError("a template worker did not start", "tool_unavailable")
        timed_out = False
        try:
            write_frame(stdin, {**request, "cpuSeconds": timeout})
            readable, _, _ = select.select([stdout], [], [], timeout * WALL_FACTOR + WALL_MARGIN_SECONDS)
            timed_out = not readable
            answer = None if timed_out else read_frame(stdout)
        except (OSError, ValueError):
            answer = None
        if isinstance(answer, dict) and answer.get(OUT_OF_TIME):
            timed_out, answer = True, None
        if answer is not None:
            return answer
        self.kill()
        metrics.TEMPLATE_RENDERS_LIMITED.labels("killed_timeout" if timed_out else "killed_memory").inc()
        if timed_out:
            raise TemplateError(f"the template did not finish within {timeout:g} seconds", TEMPLATE_LIMIT)
        raise TemplateError("the template ran out of memory while rendering", TEMPLATE_LIMIT)

    def _started(self, stdout: IO[bytes]) -> bool:
        """Whether the worker is ready, waiting for it the first time."""
        if not self._ready:
            with contextlib.suppress(OSError, ValueError):
                readable, _, _ = select.select([stdout], [], [], START_SECONDS)
                self._ready = bool(readable) and read_frame(stdout) == READY
        return self._ready

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        return self.process.stdin, self.process.stdout

    def kill(self) -> None:
        """Stop the worker at once, from any thread; the thread that uses it closes it."""
        self._killed = True
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    def close(self) -> None:
        self.kill()
        self.process.wait()
        for pipe in self._pipes():
            with contextlib.suppress(OSError):
                pipe.close()


class _Cancelled(Exception):
    pass


@dataclass
class _Call:
    request: dict[str, Any]
    lock: threading.Lock = field(default_factory=threading.Lock)
    worker: _Worker | None = None
    cancelled: bool = False

    def cancel(self) -> bool:
        """Stop the call; whether a worker was rendering it (and is killed). Killed under the lock that `unbind`
        takes, so that a cancel coming as the render ends never kills the worker once it has moved on to another."""
        with self.lock:
            self.cancelled = True
            worker = self.worker
            if worker is not None:
                worker.kill()
        return worker is not None

    def bind(self, worker: _Worker) -> None:
        with self.lock:
            if self.cancelled:
                raise _Cancelled
            self.worker = worker

    def unbind(self) -> None:
        with self.lock:
            self.worker = None


class TemplateRenderer:
    """Renders templates in at most `workers` worker processes at once; further renders wait for one."""

    def __init__(self, limits: RenderLimits, *, workers: int) -> None:
        self.limits = limits
        self._max_workers = workers
        self._idle: list[_Worker] = []
        self._count = 0
        self._available = threading.Condition()
        self._threads = ThreadPoolExecutor(max_workers=workers * 2, thread_name_prefix="runwire-template")
        self._stopped = False

    def start(self) -> None:
        """Start one worker ahead of the first render, so that it finds a warm one."""
        with self._available:
            self._count += 1
        self._release(_Worker(self.limits.memory_bytes))

    def stop(self) -> None:
        with self._available:
            self._stopped = True
            idle, self._idle = self._idle, []
            self._available.notify_all()
        for worker in idle:
            worker.close()
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def render_value(self, value: object, context: dict[str, Any]) -> object:
        """Every template string in a JSON value rendered (a lone `{{ expression }}` keeps its JSON type)."""
        return await self._render("value", value, context)

    async def render_text(self, template: str, context: dict[str, Any]) -> str:
        text = await self._render("text", template, context)
        assert isinstance(text, str)
        return text

    async def _render(self, kind: str, template: object, context: dict[str, Any]) -> object:
        call = _Call({"kind": kind, "template": template, "context": context, "maxBytes": self.limits.max_output_bytes})
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(self._threads, self._run, call)
        except asyncio.CancelledError:
            if call.cancel():
                metrics.TEMPLATE_RENDERS_LIMITED.labels("killed_cancelled").inc()
            raise
        if not isinstance(answer, dict):
            raise TemplateError("templates cannot be rendered: the renderer is stopping", TEMPLATE_LIMIT)
        if "error" in answer:
            if answer["code"] == TEMPLATE_LIMIT:
                metrics.TEMPLATE_RENDERS_LIMITED.labels("refused").inc()
            raise TemplateError(answer["error"], answer["code"])
        return answer["ok"]

    def _run(self, call: _Call) -> object | None:
        try:
            worker = self._acquire(call)
        except _Cancelled:
            return None
        try:
            call.bind(worker)
            return worker.call(call.request, self.limits.timeout_seconds)
        except _Cancelled:
            return None
        finally:
            call.unbind()
            self._release(worker)

    def _acquire(self, call: _Call) -> _Worker:
        with self._available:
            while not self._idle and self._count >= self._max_workers:
                if self._stopped or call.cancelled:
                    raise _Cancelled
                self._available.wait(0.1)
            if self._stopped or call.cancelled:
                raise _Cancelled
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return _Worker(self.limits.memory_bytes)
        except BaseException:
            with self._available:
                self._count -= 1
                self._available.notify()
            raise

    def _release(self, worker: _Worker) -> None:
        with self._available:
            keep = worker.alive and not self._stopped
            if keep:
                self._idle.append(worker)
            else:
                self._count -= 1
            self._available.notify()
        if not keep:
            worker.close()
