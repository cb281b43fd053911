"""A process's graceful stop. The first SIGTERM (or Ctrl-C) begins the drain: the executor takes no new run and no
further step, the process answers readiness with 503, its streams close (clients reconnect elsewhere with their
Last-Event-ID), and the steps and requests under way get up to RUNWIRE_SHUTDOWN_GRACE_SECONDS to finish; then the
process stops, exit status 0. Runs it did not finish go back on the run queue for the next executor, as after a
crash: completed steps are replayed from their checkpoints, never run again. A second signal stops it at once."""

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from runwire import metrics

log = logging.getLogger("runwire.drain")


class Drain:
    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self._begun_at: float | None = None
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    @property
    def begun(self) -> bool:
        return self._begun_at is not None

    @property
    def deadline(self) -> float:
        """When the grace ends, on `time.monotonic()`'s clock (the drain has begun)."""
        assert self._begun_at is not None, "the drain has not begun"
        return self._begun_at + self.grace_seconds

    def begin(self) -> None:
        """Begin the drain (once; later calls do nothing) and tell every listener."""
        with self._lock:
            if self._begun_at is not None:
                return
            self._begun_at = time.monotonic()
            listeners = list(self._listeners)
        metrics.DRAINING.set(1)
        log.info(
            "draining: no new runs; running steps and requests may finish", extra={"grace_seconds": self.grace_seconds}
        )
        for listener in listeners:
            listener()

    def on_begin(self, listener: Callable[[], None]) -> None:
        """Call `listener` when the drain begins (at once if it has)."""
        with self._lock:
            if self._begun_at is None:
                self._listeners.append(listener)
                return
        listener()


def begin_in_background(drain: Drain) -> None:
    """Begin the drain from a signal handler: on a thread of its own, so that no lock the interrupted code holds is
    waited for."""
    threading.Thread(target=drain.begin, name="runwire-drain", daemon=True).start()


def stop_at_once(signum: int) -> None:
    """The second signal: stop now, leaving unfinished runs for the next executor (as after a crash)."""
    log.warning("second signal: stopping at once", extra={"signal": signal.Signals(signum).name})
    for handler in logging.getLogger("runwire").handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(128 + signum)


def handle_signals(drain: Drain, stopping: threading.Event) -> None:
    """SIGTERM and SIGINT of a process without an HTTP server (`runwire worker`): the first begins the drain and sets
    `stopping`, a second stops the process at once."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            stop_at_once(signum)
        stopping.set()
        begin_in_background(drain)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)
