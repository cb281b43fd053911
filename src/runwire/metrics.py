"""The process's Prometheus metrics, exposed at `GET /api/metrics` (see `health.py`); every process has its own.

No label carries a user's data: a request is labelled by its route's template (never its path), its method (one of
a fixed set) and status; a step by the id of a tool the process knows (anything else is `unknown`); runs by status;
the rest by names from fixed sets. Counting costs a dictionary look-up and an addition under a lock: cheap enough
for every request and every step.
"""

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

disable_created_metrics()  # type: ignore[no-untyped-call]  # the `_created` series of every counter: noise
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNKNOWN_TOOL = "unknown"

REQUESTS = Counter(
    "runwire_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "runwire_http_request_duration_seconds",
    "Time from a request's arrival to its answer's end, by route template and method (a stream: its whole life).",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
RUNS_CREATED = Counter("runwire_runs_created", "Runs created (queued) by this process.", registry=REGISTRY)
RUNS_STARTED = Counter("runwire_runs_started", "Runs this process's executor started.", registry=REGISTRY)
RUNS_ENDED = Counter(
    "runwire_runs_ended", "Runs that ended in this process, by final status.", ["status"], registry=REGISTRY
)
STEP_SECONDS = Histogram(
    "runwire_step_duration_seconds",
    "Time from a step's start to its end, by tool id and final status.",
    ["tool_id", "status"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0),
    registry=REGISTRY,
)
QUEUE_PENDING = Gauge(
    "runwire_queue_pending_runs", "Runs queued and not started yet (all processes; read at scrape).", registry=REGISTRY
)
QUEUE_OLDEST_PENDING = Gauge(
    "runwire_queue_oldest_pending_age_seconds",
    "Age of the oldest pending run, 0 when none (it may wait behind a long run of its own chat).",
    registry=REGISTRY,
)
QUEUE_OLDEST_READY = Gauge(
    "runwire_queue_oldest_ready_age_seconds",
    "Age of the oldest pending run whose chat has no run running, 0 when none: only the executors hold it up.",
    registry=REGISTRY,
)
RUNS_RUNNING = Gauge("runwire_runs_running", "Runs running (all processes; read at scrape).", registry=REGISTRY)
EXECUTOR_BUSY = Gauge(
    "runwire_executor_runs_in_progress", "Runs this process's executor is executing now.", registry=REGISTRY
)
OPEN_STREAMS = Gauge("runwire_open_streams", "Server-Sent Events streams open in this process.", registry=REGISTRY)
DB_POOL_IN_USE = Gauge(
    "runwire_db_pool_connections_in_use", "Connections to Runwire's database checked out now.", registry=REGISTRY
)
DB_POOL_SIZE = Gauge(
    "runwire_db_pool_size", "Connections the pool keeps to Runwire's database (it may open more).", registry=REGISTRY
)
TEMPLATE_RENDERS_LIMITED = Counter(
    "runwire_template_renders_limited",
    "Template renders refused by a limit (output size, memory) or killed (timeout, memory, cancelled).",
    ["outcome"],
    registry=REGISTRY,
)
MODEL_CALLS = Counter(
    "runwire_model_calls", "Calls to the language model, by outcome (ok, error).", ["outcome"], registry=REGISTRY
)
MODEL_TOKENS = Counter(
    "runwire_model_tokens", "Tokens the model reported, by kind (input, output).", ["kind"], registry=REGISTRY
)
DRAINING = Gauge("runwire_draining", "1 while this process drains before it stops.", registry=REGISTRY)

# Series of every fixed label value from the start, so that a rate over them needs no first event.
for _status in ("completed", "failed", "cancelled"):
    RUNS_ENDED.labels(_status)
for _outcome in ("refused", "killed_timeout", "killed_memory", "killed_cancelled"):
    TEMPLATE_RENDERS_LIMITED.labels(_outcome)
for _outcome in ("ok", "error"):
    MODEL_CALLS.labels(_outcome)
for _kind in ("input", "output"):
    MODEL_TOKENS.labels(_kind)

# The labelled children of each (route, method, status) seen, so that counting a request looks up one key.
_request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count an answered request. `route` must be a route template (or a fixed name), never a path."""
    if method not in _METHODS:
        method = "other"  # a client chooses the method: an unknown one must not add a series (or a key here)
    key = (route, method, status)
    children = _request_children.get(key)
    if children is None:
        children = (REQUESTS.labels(route, method, str(status)), REQUEST_SECONDS.labels(route, method))
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def observe_step(tool_id: str, status: str, seconds: float) -> None:
    """`tool_id` is a tool the process knows, or UNKNOWN_TOOL."""
    STEP_SECONDS.labels(tool_id, status).observe(max(seconds, 0.0))


CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def exposition() -> bytes:
    """Every metric in Prometheus's text format (CONTENT_TYPE)."""
    return generate_latest(REGISTRY)
