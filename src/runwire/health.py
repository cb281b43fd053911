"""Liveness (the process serves: no database work) and readiness (the database answers, the process is not draining
and, in a process that executes runs, the executor runs), for orchestrators and load balancers; neither needs a
session. Metrics, in Prometheus's text format, for a scraper holding RUNWIRE_METRICS_TOKEN."""

import hmac
from datetime import UTC, datetime

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from runwire import metrics
from runwire.db import Database
from runwire.deps import get_database, get_settings
from runwire.drain import Drain
from runwire.errors import error_response
from runwire.openapi import also_answers
from runwire.routing import api_router
from runwire.runs.executor import Executor
from runwire.runs.queue_stats import queue_stats
from runwire.schemas import Envelope

router = api_router("/api", "health")

_OK = b'{"data":{"status":"ok"}}'
_READY = b'{"data":{"status":"ready"}}'


@router.get("/liveness", response_model=Envelope[dict[str, str]])
async def liveness() -> Response:
    return Response(_OK, media_type="application/json")


@router.get(
    "/readiness",
    response_model=Envelope[dict[str, str]],
    responses=also_answers(503, "The database does not answer, or the executor is not running."),
)
async def readiness(request: Request) -> Response:
    try:
        await run_in_threadpool(get_database(request).ping)
    except Exception:
        return error_response(503, "Not ready: the database does not answer.")
    drain: Drain | None = getattr(request.app.state, "drain", None)
    if drain is not None and drain.begun:
        return error_response(503, "Not ready: the process is draining before it stops.")
    executor: Executor = request.app.state.executor
    problem = executor.not_ready()
    if problem is not None:
        return error_response(503, f"Not ready: {problem}.")
    return Response(_READY, media_type="application/json")


def _age(since: datetime | None, now: datetime) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0


def _scrape(database: Database) -> bytes:
    """The metrics, with the gauges read now: the queue (one short read) and the connection pool."""
    with database.statements() as connection:
        stats = queue_stats(connection)
    now = datetime.now(UTC)
    metrics.QUEUE_PENDING.set(stats.pending)
    metrics.RUNS_RUNNING.set(stats.running)
    metrics.QUEUE_OLDEST_PENDING.set(_age(stats.oldest_pending, now))
    metrics.QUEUE_OLDEST_READY.set(_age(stats.oldest_ready, now))
    pool = database.engine.pool
    metrics.DB_POOL_IN_USE.set(pool.checkedout())  # type: ignore[attr-defined]
    metrics.DB_POOL_SIZE.set(pool.size())  # type: ignore[attr-defined]
    return metrics.exposition()


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text format.", "content": {metrics.CONTENT_TYPE: {}}},
        **also_answers(401, "The Authorization header does not carry RUNWIRE_METRICS_TOKEN."),
        **also_answers(404, "RUNWIRE_METRICS_TOKEN is not set: there are no metrics to read."),
    },
)
async def read_metrics(request: Request) -> Response:
    token = get_settings(request).metrics_token
    if token is None:
        return error_response(404, "No such resource.")
    offered = request.headers.get("authorization", "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(offered, f"Bearer {token.get_secret_value()}".encode()):
        return error_response(401, "A valid metrics token is required.", headers={"WWW-Authenticate": "Bearer"})
    body = await run_in_threadpool(_scrape, get_database(request))
    return Response(body, media_type=metrics.CONTENT_TYPE)
