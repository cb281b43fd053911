"""create_app(): routers, error handlers, and the lifespan that opens storage and the executor."""

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from runwire.auth.passwords import Passwords
from runwire.auth.router import router as auth_router
from runwire.chats.router import router as chats_router
from runwire.config import Settings
from runwire.db import request_slots
from runwire.deps import request_is_authorised
from runwire.drain import Drain
from runwire.errors import install_error_handlers
from runwire.fastlane import FastLane, route_to
from runwire.health import liveness
from runwire.health import router as health_router
from runwire.logs import configure_logging
from runwire.messages.router import router as messages_router
from runwire.middleware import RequestMiddleware
from runwire.openapi import install_openapi
from runwire.ratelimits.service import Rules
from runwire.runs.chat_list import ChatListReader
from runwire.runs.list_cache import ListCache
from runwire.runs.router import get_run, list_runs
from runwire.runs.router import router as runs_router
from runwire.runs.router import users_router as user_runs_router
from runwire.runtime import Runtime
from runwire.tools.router import router as tools_router
from runwire.web.router import router as web_router
from runwire.workflows.router import router as workflows_router

# Runwire's metrics are its own (`metrics.py`): FastAPI's OpenTelemetry is off, which spares every request a look at
# the global providers.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
# Liveness for the orchestrators' probes; the seed endpoint and a run's detail, what chat clients poll.
_FAST_LANE = ((health_router, liveness), (runs_router, list_runs), (runs_router, get_run))


class RunwireApp(FastAPI):
    """FastAPI with Runwire's request layer (`request_layer`, a `RequestMiddleware`) around FastAPI's own layers (its
    last-resort 500, body limit and telemetry) instead of inside them: the request id, access log and last-resort 500
    still cover every request, and a request the fast lane answers passes none of FastAPI's layers. FastAPI's
    last-resort 500 answers in the contract's shape (`install_error_handlers`), then the request layer logs it."""

    request_layer: Callable[[ASGIApp], ASGIApp]

    def build_middleware_stack(self) -> ASGIApp:
        return self.request_layer(super().build_middleware_stack())


def create_app(settings: Settings | None = None, *, run_executor: bool = True) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    # Begun by `runwire serve` on SIGTERM (cli.py); the lifespan's end then lets running steps finish first.
    drain = Drain(settings.shutdown_grace_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings, execute=run_executor)
        try:
            await run_in_threadpool(runtime.start)
        except Exception as exc:
            app.state.startup_failure = exc  # explained by `runwire serve` (startup_checks.explain)
            raise
        drain.on_begin(runtime.begin_drain)
        app.state.settings, app.state.database, app.state.executor = settings, runtime.database, runtime.executor
        app.state.hub = runtime.hub
        app.state.database_slots = asyncio.Semaphore(request_slots(runtime.database.pool_size))
        cache = ListCache(settings.list_cache_bytes)
        reader = ChatListReader(runtime.database, cache, app.state.rate_limits, app.state.database_slots)
        app.state.chat_list = reader
        try:
            yield
        finally:
            await reader.close()
            await run_in_threadpool(runtime.stop, drain.deadline if drain.begun else None)

    app = RunwireApp(
        title="Runwire",
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        telemetry=NO_TELEMETRY,
    )
    app.state.rate_limits = Rules.from_settings(settings)
    app.state.passwords = Passwords(
        memory_kib=settings.password_hash_memory_kib, time_cost=settings.password_hash_time_cost
    )
    app.state.drain = drain
    # Routes are matched in order: the health checks and the seed endpoint first, since they are the hottest.
    for router in (
        health_router,
        runs_router,
        auth_router,
        chats_router,
        tools_router,
        workflows_router,
        messages_router,
        user_runs_router,
    ):
        app.include_router(router)
    app.include_router(web_router)  # last: it answers every GET outside /api/ that no API route took
    install_error_handlers(app, request_is_authorised=request_is_authorised)
    install_openapi(app)
    # The hottest reads skip FastAPI's layers, routing and parameter parsing (see fastlane.py).
    lane = FastLane([route_to(router, endpoint) for router, endpoint in _FAST_LANE])
    app.request_layer = functools.partial(
        RequestMiddleware, allowed_origins=settings.origins, max_body_bytes=settings.max_body_bytes, lane=lane
    )
    return app


def create_worker_app(settings: Settings, runtime: Runtime, drain: Drain) -> FastAPI:
    """What `runwire worker` serves on RUNWIRE_METRICS_PORT: its liveness, readiness and metrics, nothing else. The
    worker starts and stops `runtime` itself."""
    app = RunwireApp(title="Runwire worker", openapi_url=None, docs_url=None, redoc_url=None, telemetry=NO_TELEMETRY)
    app.state.settings, app.state.database, app.state.executor = settings, runtime.database, runtime.executor
    app.state.drain = drain
    app.include_router(health_router)
    install_error_handlers(app, request_is_authorised=request_is_authorised)
    app.request_layer = functools.partial(
        RequestMiddleware, allowed_origins=settings.origins, max_body_bytes=settings.max_body_bytes
    )
    return app
