"""The executor: a run is a DBOS workflow on a queue partitioned by chat; each step's tool call is a DBOS step.

The workflow function only decides what to start next from the pinned DAG; every tool call and every write to
Runwire's tables happens inside a DBOS step (see `lifecycle`). Concurrent steps draw their DBOS step ids in the
workflow's own order (`DBOS.reserve_step`) and `DBOS.asyncio_wait` checkpoints which finished first, so a
recovered run replays the same decisions.
"""

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from dbos import DBOS, DBOSClient, DBOSConfig, EnqueueOptions, SetEnqueueOptions, SetWorkflowID
from sqlalchemy.orm import Session

from runwire.config import Settings
from runwire.db import Database, create_dbos_sqlite_engine
from runwire.jsonlimits import json_problems
from runwire.runs import lifecycle
from runwire.runs.cancellation import running_tasks
from runwire.runs.models import WorkflowRun
from runwire.runs.service import Enqueued, error_info
from runwire.runs.states import Status
from runwire.templating.renderer import TemplateRenderer
from runwire.templating.sandbox import INVALID_TEMPLATE, TEMPLATE_LIMIT, TemplateError
from runwire.tools import registry
from runwire.tools.base import Tool, ToolError

log = logging.getLogger("runwire.engine")

APP_NAME = "runwire"
QUEUE_NAME = "runwire-runs"
WORKFLOW_NAME = "runwire.execute_run"
MAX_DBOS_PRIORITY = 2**31 - 1
PROGRESS_INTERVAL_SECONDS = 0.1
TRANSIENT_ERROR_WAITS = (0.1, 0.5, 1.0, 2.0, 5.0)
VISIBILITY_WAITS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
# Failures that come out the same on every attempt.
NOT_RETRIED = frozenset({"invalid_inputs", INVALID_TEMPLATE, TEMPLATE_LIMIT})
ENDED_DBOS_STATUSES = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})

T = TypeVar("T")


@dataclass
class _Runtime:
    settings: Settings
    database: Database
    renderer: TemplateRenderer


_runtime: _Runtime | None = None


def _current() -> _Runtime:
    if _runtime is None:
        raise RuntimeError("the executor is not started")
    return _runtime


def _in_transaction(operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with _current().database.writing() as session:
        return operation(*args, session=session, **kwargs)


def _is_transient(exc: sa.exc.DBAPIError) -> bool:
    """A lost or refused connection, or a lock that outlasted the busy timeout: worth trying again."""
    return isinstance(exc, sa.exc.OperationalError) or exc.connection_invalidated


async def _write(operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a lifecycle operation in its own transaction; they are idempotent, so a transient database error is
    retried rather than failing the run."""
    for wait in (*TRANSIENT_ERROR_WAITS, None):
        try:
            return await asyncio.to_thread(_in_transaction, operation, *args, **kwargs)
        except sa.exc.DBAPIError as exc:
            if wait is None or not _is_transient(exc):
                raise
            log.warning(
                "database error in the executor; trying again",
                extra={"operation": operation.__name__, "error": str(exc.orig), "retry_in_seconds": wait},
            )
            await asyncio.sleep(wait)
    raise AssertionError("unreachable: the last try returns or raises")


@dataclass
class StepContext:
    """What a tool sees of the run: its template context, network limits, and a progress channel."""

    run_id: str
    step_id: str
    template_context: dict[str, Any]
    allowed_hosts: frozenset[str]
    max_response_bytes: int
    _last_progress: float = field(default=0.0)

    async def report_progress(self, progress: int, message: str) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_progress = now
        progress = max(0, min(100, int(progress)))
        await _write(lifecycle.report_progress, uuid.UUID(self.run_id), self.step_id, progress, message)

    async def render_text(self, template: str) -> str:
        return await _current().renderer.render_text(template, self.template_context)


def _output_problem(output: Any, max_bytes: int) -> dict[str, str] | None:
    """Why a step's output cannot be kept (data outside the contract's limits, or too large), or None."""
    problems = json_problems(output, "output")
    if problems:
        path, message = problems[0]
        return error_info("invalid_output", f"The step's output cannot be stored: {path} {message}.")
    try:
        size = len(orjson.dumps(output))
    except TypeError:
        return error_info("invalid_output", "The step's output is not JSON data.")
    if size > max_bytes:
        message = f"The step's output is {size} bytes as JSON; at most {max_bytes} are kept."
        return error_info("output_too_large", message)
    return None


async def _rendered_inputs(run_id: uuid.UUID, step_id: str, start: lifecycle.StepStart, ctx: StepContext) -> Any:
    """The step's inputs with their templates rendered by the template workers, then stored with the step."""
    if start["inputs"] is not None:
        return start["inputs"]
    raw = lifecycle.raw_inputs(start["toolId"])
    templated = {name: value for name, value in start["templateInputs"].items() if name not in raw}
    try:
        rendered = await _current().renderer.render_value(templated, ctx.template_context)
    except TemplateError as error:
        raise ToolError(error.code, error.message) from None
    assert isinstance(rendered, dict)
    inputs = {name: rendered.get(name, value) for name, value in start["templateInputs"].items()}
    await _write(lifecycle.record_inputs, run_id, step_id, inputs)
    return inputs


def _error_of(exc: BaseException, timeout: float) -> dict[str, str]:
    if isinstance(exc, ToolError):
        return error_info(exc.code, exc.message)
    if isinstance(exc, TimeoutError):
        return error_info("timeout", f"The step did not finish within {timeout:g} seconds.")
    return error_info("tool_error", f"The tool failed unexpectedly ({type(exc).__name__}).")


async def _attempts(run_id: uuid.UUID, step_id: str, tool: Tool, start: lifecycle.StepStart, ctx: StepContext) -> Any:
    """Call the tool until it succeeds or its retries are spent; raise the last attempt's error."""
    settings = _current().settings
    timeout = start["timeoutSeconds"] or settings.default_step_timeout_seconds
    retries = start["retries"]
    inputs = start["inputs"]
    for attempt in range(retries + 1):
        if attempt > 0 and not await _write(lifecycle.start_retry, run_id, step_id):
            raise asyncio.CancelledError
        try:
            # The step's timeout bounds rendering its inputs too.
            async with asyncio.timeout(timeout):
                if inputs is None:
                    inputs = await _rendered_inputs(run_id, step_id, start, ctx)
                return await tool.run(registry.parse_inputs(tool, inputs), ctx)
        except Exception as exc:
            if (isinstance(exc, ToolError) and exc.code in NOT_RETRIED) or attempt == retries:
                raise
            delay = settings.retry_backoff_seconds * 2**attempt
            message = _error_of(exc, timeout)["message"]
            await _write(
                lifecycle.log_step,
                run_id,
                step_id,
                f"attempt {attempt + 1} failed: {message}; retry in {delay:g}s",
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def execute_step(run_id_text: str, step_id: str) -> str:
    """One DAG step, start to end: the body of the DBOS step drawn for it. Returns the step's final status."""
    run_id = uuid.UUID(run_id_text)
    start = await _write(lifecycle.begin_step, run_id, step_id)
    if isinstance(start, str):
        return start
    settings = _current().settings
    tool = registry.get_tool(start["toolId"])
    if tool is None:
        error = error_info("unknown_tool", f"The tool '{start['toolId']}' is not available.")
        return await _write(lifecycle.finish_step, run_id, step_id, error=error)
    ctx = StepContext(
        run_id=run_id_text,
        step_id=step_id,
        template_context=start["templateContext"],
        allowed_hosts=settings.tool_hosts,
        max_response_bytes=settings.tool_max_response_bytes,
    )
    timeout = start["timeoutSeconds"] or settings.default_step_timeout_seconds
    attempts = asyncio.ensure_future(_attempts(run_id, step_id, tool, start, ctx))
    with running_tasks.track(run_id_text, attempts):
        try:
            output = await attempts
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this process is stopping: the step is left for recovery
            return Status.CANCELLED
        except Exception as exc:
            return await _write(lifecycle.finish_step, run_id, step_id, error=_error_of(exc, timeout))
    problem = _output_problem(output, settings.max_step_output_bytes)
    if problem is not None:
        return await _write(lifecycle.finish_step, run_id, step_id, error=problem)
    return await _write(lifecycle.finish_step, run_id, step_id, output=output)


async def _start_run(run_id: str) -> dict[str, Any] | None:
    # A run is queued just before the transaction that writes it commits (so that no committed run is ever left
    # unqueued): an executor that dequeues it at once may not see it yet.
    for wait in (*VISIBILITY_WAITS, None):
        steps = await _write(lifecycle.start_run, uuid.UUID(run_id))
        if steps != lifecycle.RUN_NOT_FOUND or wait is None:
            break
        await asyncio.sleep(wait)
    if not isinstance(steps, list):
        return None
    return {"steps": steps, "maxParallel": _current().settings.max_parallel_steps}


async def _finish_run(run_id: str) -> str | None:
    return await _write(lifecycle.finish_run, uuid.UUID(run_id))


async def _abandon_run(run_id: str, message: str) -> None:
    await _write(lifecycle.abandon_run, uuid.UUID(run_id), message)


@DBOS.workflow(name=WORKFLOW_NAME)
async def execute_run(run_id: str) -> str | None:
    plan = await DBOS.run_step_async({"name": "start_run"}, _start_run, run_id)
    if plan is None:
        return None
    try:
        await _execute_dag(run_id, plan["steps"], plan["maxParallel"])
    except Exception as exc:
        log.exception("run failed in the executor", extra={"run_id": run_id})
        message = f"The executor failed unexpectedly ({type(exc).__name__}); the server's log has the details."
        await DBOS.run_step_async({"name": "abandon_run"}, _abandon_run, run_id, message)
        return Status.FAILED
    return await DBOS.run_step_async({"name": "finish_run"}, _finish_run, run_id)


async def _execute_dag(run_id: str, steps: list[lifecycle.PlannedStep], max_parallel: int) -> None:
    status = {step["id"]: step["status"] for step in steps}
    launched: set[str] = set()
    in_flight: dict[asyncio.Future[str], str] = {}
    halted = False
    try:
        while True:
            for step in steps:
                if halted or len(in_flight) >= max_parallel:
                    break
                ready = all(status[dep] == Status.COMPLETED for dep in step["dependsOn"])
                if step["id"] in launched or status[step["id"]] in (Status.FAILED, Status.CANCELLED) or not ready:
                    continue
                if status[step["id"]] == Status.COMPLETED:
                    launched.add(step["id"])
                    continue
                launched.add(step["id"])
                reservation = DBOS.reserve_step()
                future = asyncio.ensure_future(
                    reservation.run_async({"name": f"step:{step['id']}"}, execute_step, run_id, step["id"])
                )
                in_flight[future] = step["id"]
            if not in_flight:
                return
            done, _ = await DBOS.asyncio_wait(list(in_flight), return_when=asyncio.FIRST_COMPLETED)
            for finished in sorted(done, key=lambda f: in_flight[f]):
                step_id = in_flight.pop(finished)
                status[step_id] = finished.result()
                halted = halted or status[step_id] != Status.COMPLETED
    finally:
        for unfinished in in_flight:
            unfinished.cancel()


class Executor:
    """Owns DBOS in this process. Executing (`serve`, `worker`): launches DBOS, listens on the run queue, recovers
    this executor's unfinished runs and settles runs a crash left behind. API only (`serve --no-executor`): queues
    runs through a DBOS client and executes nothing."""

    def __init__(self, settings: Settings, database: Database, *, execute: bool = True) -> None:
        self.settings = settings
        self.database = database
        self.execute = execute
        self._client: DBOSClient | None = None
        self._sqlite_engine: sa.Engine | None = None
        self.renderer = TemplateRenderer(settings.render_limits, workers=settings.template_workers)

    def start(self) -> None:
        if not self.execute:
            DBOS.migrate(self.settings.resolved_dbos_url)
            self._client = DBOSClient(
                system_database_url=self.settings.resolved_dbos_url,
                system_database_engine=self._dbos_engine(),
                system_database_pool_size=self.settings.dbos_pool_size,
                application_name=APP_NAME,
            )
            return
        self.renderer.start()
        self._launch(listen=True)
        self._wait_until_listening()
        self._settle_leftover_runs()

    def _launch(self, *, listen: bool) -> None:
        global _runtime
        _runtime = _Runtime(self.settings, self.database, self.renderer)
        config: DBOSConfig = {
            "name": APP_NAME,
            "system_database_url": self.settings.resolved_dbos_url,
            "application_version": self.settings.application_version,
            "executor_id": self.settings.executor_id,
            "system_database_engine": self._dbos_engine(),
            "sys_db_pool_size": self.settings.dbos_pool_size,
            "log_level": "WARNING",
        }
        DBOS(config=config)
        if not listen:
            DBOS.listen_queues([])
        DBOS.launch()
        self.queue = DBOS.register_queue(
            QUEUE_NAME,
            partition_concurrency=1,
            polling_interval_sec=self.settings.queue_poll_seconds,
            on_conflict="always_update",
        )

    def _dbos_engine(self) -> sa.Engine | None:
        url = self.settings.resolved_dbos_url
        if not url.startswith("sqlite"):
            return None
        if self._sqlite_engine is None:
            self._sqlite_engine = create_dbos_sqlite_engine(url, self.settings.dbos_pool_size)
        return self._sqlite_engine

    def _wait_until_listening(self, timeout: float = 3.0) -> None:
        """DBOS notices a newly registered queue on its next check (up to a second later); without this wait the
        first run on a fresh data dir would sit in the queue until then."""
        worker_thread = f"queue-worker-{QUEUE_NAME}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not any(t.name == worker_thread for t in threading.enumerate()):
            time.sleep(0.01)

    def stop(self) -> None:
        global _runtime
        if self._client is not None:
            self._client.destroy()
            self._client = None
        else:
            DBOS.destroy()
            _runtime = None
        self.renderer.stop()
        if self._sqlite_engine is not None:
            self._sqlite_engine.dispose()
            self._sqlite_engine = None

    def enqueue(self, run: Enqueued) -> None:
        # Priority is the run's place in its chat: the partition runs them in request order even when two
        # runs were queued within the same millisecond.
        priority = min(run.chat_seq, MAX_DBOS_PRIORITY)
        if self._client is not None:
            options: EnqueueOptions = {
                "workflow_name": WORKFLOW_NAME,
                "queue_name": QUEUE_NAME,
                "workflow_id": str(run.run_id),
                "queue_partition_key": str(run.chat_id),
                "priority": priority,
                "app_version": self.settings.application_version,
            }
            self._client.enqueue(options, str(run.run_id))
            return
        with SetWorkflowID(str(run.run_id)), SetEnqueueOptions(queue_partition_key=str(run.chat_id), priority=priority):
            self.queue.enqueue(execute_run, str(run.run_id))

    def _settle_leftover_runs(self) -> None:
        """Queue runs whose workflow was never queued, and fail runs whose workflow ended without them."""
        with self.database.reading() as session:
            active = _active_runs(session)
        for run in active:
            dbos_status = DBOS.get_workflow_status(str(run.run_id))
            if dbos_status is None:
                log.warning("queueing a run that was never queued", extra={"run_id": str(run.run_id)})
                self.enqueue(run)
            elif dbos_status.status in ENDED_DBOS_STATUSES:
                message = f"The run's durable workflow ended ({dbos_status.status}) before the run did."
                _in_transaction(lifecycle.abandon_run, run.run_id, message)


def recover_executor(settings: Settings, database: Database, executor_id: str) -> list[str]:
    """Put the runs a dead executor left unfinished back on the run queue, where live executors take them on;
    return their ids. Completed steps are not run again: DBOS replays them from its checkpoints."""
    # Its own executor id, so that launching does not also recover the runs of a live process sharing ours.
    own_settings = settings.model_copy(update={"executor_id": f"runwire-recover-{uuid.uuid4().hex[:12]}"})
    executor = Executor(own_settings, database)
    executor._launch(listen=False)
    try:
        handles = DBOS._recover_pending_workflows([executor_id])
        return [handle.get_workflow_id() for handle in handles]
    finally:
        executor.stop()


def _active_runs(session: Session) -> list[Enqueued]:
    rows = session.execute(
        WorkflowRun.__table__.select()
        .with_only_columns(WorkflowRun.id, WorkflowRun.chat_id, WorkflowRun.chat_seq)
        .where(WorkflowRun.status.in_([Status.PENDING, Status.RUNNING]))
        .order_by(WorkflowRun.chat_id, WorkflowRun.chat_seq)
    ).all()
    return [Enqueued(run_id=row.id, chat_id=row.chat_id, chat_seq=row.chat_seq) for row in rows]
