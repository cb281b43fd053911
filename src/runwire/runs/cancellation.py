"""The tool tasks this process is running, by run, so that a cancel can stop them at once."""

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class RunningTasks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, set[asyncio.Task[object]]] = defaultdict(set)

    @contextmanager
    def track(self, run_id: str, task: "asyncio.Task[object]") -> Iterator[None]:
        with self._lock:
            self._tasks[run_id].add(task)
        try:
            yield
        finally:
            with self._lock:
                tasks = self._tasks[run_id]
                tasks.discard(task)
                if not tasks:
                    del self._tasks[run_id]

    def cancel(self, run_id: str) -> None:
        """Cancel the run's tool tasks from any thread."""
        with self._lock:
            tasks = list(self._tasks.get(run_id, ()))
        for task in tasks:
            task.get_loop().call_soon_threadsafe(task.cancel)
