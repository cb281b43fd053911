"""A step's streamed output, coalesced: chunks become `step_output_delta` events at most once per interval.

The first chunk after a quiet interval is published at once; chunks that follow within the interval wait for it to
pass (a timer publishes them even if no further chunk comes), so that a fast model costs one event per interval.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

DELTA_INTERVAL_SECONDS = 0.1


class OutputDeltas:
    def __init__(self, publish: Callable[[str], Awaitable[None]], interval: float = DELTA_INTERVAL_SECONDS) -> None:
        self._publish = publish
        self._interval = interval
        self._pending: list[str] = []
        self._last = -interval
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def add(self, text: str) -> None:
        self._pending.append(text)
        if self._timer is not None:
            return
        wait = self._last + self._interval - time.monotonic()
        if wait <= 0:
            await self._flush()
        else:
            self._timer = asyncio.get_running_loop().create_task(self._flush_after(wait))

    async def _flush_after(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._timer = None
        await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            text = "".join(self._pending)
            self._pending.clear()
            self._last = time.monotonic()
            await self._publish(text)

    async def close(self) -> None:
        """Publish what is still pending (the step's tool has returned)."""
        self.drop_timer()
        await self._flush()

    def drop_timer(self) -> None:
        """Stop the timer (the step is cancelled or done): nothing more is published by it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
