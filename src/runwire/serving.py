"""uvicorn as Runwire runs it: on a socket the start-up checks already hold, and with the drain of `drain.py` on
SIGTERM or Ctrl-C (a second one stops the process at once). uvicorn's own shutdown then closes the listening socket,
lets the requests under way finish (RUNWIRE_SHUTDOWN_GRACE_SECONDS at most) while sse-starlette ends every stream,
and runs the app's lifespan end, which lets running steps finish before the executor stops.

Unlike plain uvicorn, which re-raises the signal it caught once it is done (so that the process ends "killed by
SIGTERM"), a drained process exits with status 0."""

import contextlib
import gc
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn
from fastapi import FastAPI

from runwire.config import Settings
from runwire.drain import Drain, begin_in_background, stop_at_once

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _QuietStartupFailure(logging.Filter):
    """uvicorn logs a failed start-up as the whole traceback; `runwire serve` explains it in a line or two instead
    (the traceback is printed with RUNWIRE_LOG_LEVEL=DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Traceback") or message.startswith("Application startup failed"))


def _config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=max(int(settings.shutdown_grace_seconds), 1),
    )
    if settings.log_level != "DEBUG":
        logging.getLogger("uvicorn.error").addFilter(_QuietStartupFailure())
    return config


class DrainingServer(uvicorn.Server):
    def __init__(self, app: FastAPI, settings: Settings, drain: Drain) -> None:
        super().__init__(_config(app, settings))
        self.drain = drain

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # What start-up made (modules, routes, schemas, the app's state) lives as long as the process. Out of the
        # collector's sight, it is no longer walked by every full collection that requests' garbage sets off.
        gc.collect()
        gc.freeze()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self.handle_exit) for signum in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            stop_at_once(sig)
        super().handle_exit(sig, frame)  # uvicorn stops accepting; sse-starlette's patch ends the streams
        begin_in_background(self.drain)


class ThreadedServer:
    """A small uvicorn server on a thread of its own (a worker's liveness, readiness and metrics)."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.server, self.thread = server, thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def serve_in_thread(app: FastAPI, settings: Settings, sock: socket.socket) -> ThreadedServer:
    server = uvicorn.Server(_config(app, settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="runwire-endpoints", daemon=True)
    thread.start()
    return ThreadedServer(server, thread)
