"""Wakes whoever waits on a run (its open streams) when its event log grows."""

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class RunNotifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(set)

    @contextmanager
    def subscribe(self, run_id: str) -> Iterator[asyncio.Event]:
        """An event that is set whenever the run gets new events; the caller clears it after reading."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters[run_id].add(waiter)
        try:
            yield waiter[1]
        finally:
            with self._lock:
                waiters = self._waiters[run_id]
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[run_id]

    def notify(self, run_id: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(run_id, ()))
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def notify_all(self) -> None:
        with self._lock:
            run_ids = list(self._waiters)
        for run_id in run_ids:
            self.notify(run_id)

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(waiters) for waiters in self._waiters.values())
