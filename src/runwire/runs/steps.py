"""The step runner: one DAG step from start to end, with its inputs rendered, its timeout (and the run's deadline),
retries and cancellation, and its result checked against the output limits. Every write is one retried transaction
(`StepRunner.write`). A tool a model calls within a step runs through the same guards (`StepRunner.call`)."""

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeVar

import orjson
import sqlalchemy as sa
from dbos import DBOS

from runwire.config import Settings
from runwire.db import Database
from runwire.jsonlimits import json_problems
from runwire.logs import set_log_context
from runwire.runs import decisions, lifecycle
from runwire.runs.cancellation import RunningTasks
from runwire.runs.deltas import OutputDeltas
from runwire.runs.states import Status
from runwire.schemas import ErrorInfo
from runwire.templating.renderer import TemplateRenderer
from runwire.templating.sandbox import INVALID_TEMPLATE, TEMPLATE_LIMIT, TemplateError
from runwire.tools import registry
from runwire.tools.base import Tool, ToolError, ToolOffer

log = logging.getLogger("runwire.steps")

T = TypeVar("T")

PROGRESS_INTERVAL_SECONDS = 0.1
TRANSIENT_ERROR_WAITS = (0.1, 0.5, 1.0, 2.0, 5.0)
# A step waits for its decision in waits of at most this long (DBOS's waits take a finite timeout).
DECISION_WAIT_SECONDS = 3600.0
# Failures that come out the same on every attempt.
NOT_RETRIED = frozenset({"invalid_inputs", INVALID_TEMPLATE, TEMPLATE_LIMIT})
# On PostgreSQL an output at most this large (as JSON) is checkpointed by DBOS with its step, so that the transaction
# completing the step runs while DBOS records the checkpoint, their round trips overlapping; a larger one is recorded
# first, and only the status checkpointed. So is every output on SQLite: there both writes are mostly Python work
# under the one interpreter lock, and side by side they take longer than one after the other.
CHECKPOINTED_OUTPUT_BYTES = 64 * 1024


class Completed(TypedDict):
    """What the DBOS step of a step that completed returns (and DBOS checkpoints) when its output is still being
    recorded: see `StepRunner.settled`."""

    output: Any


def _is_transient(exc: sa.exc.DBAPIError) -> bool:
    """A lost or refused connection, or a lock that outlasted the busy timeout: worth trying again."""
    return isinstance(exc, sa.exc.OperationalError) or exc.connection_invalidated


@dataclass
class StepRunner:
    settings: Settings
    database: Database
    renderer: TemplateRenderer
    running_tasks: RunningTasks
    # How many steps of each run (by id) wait for a decision now.
    waiting: Counter[str] = field(default_factory=Counter)
    # The steps (by run id and step id) that began in the transaction that completed their predecessor, with what
    # their first attempt needs; held in memory only, so that only a step launched by this process skips its own
    # `begin_step` (after a restart, it begins as a step found running does).
    begun: dict[tuple[str, str], lifecycle.StepStart] = field(default_factory=dict)
    # Set when the executor drains: a step's completion then begins no further step.
    draining: bool = False
    # The transactions completing steps (by run id and step id) whose DBOS steps returned `Completed`.
    completing: dict[tuple[str, str], "asyncio.Future[Status]"] = field(default_factory=dict)

    def _in_transaction(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.database.writing() as session:
            return operation(*args, session=session, **kwargs)

    async def write(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a lifecycle operation in its own transaction, on a thread; they are idempotent, so a transient
        database error is retried rather than failing the run."""
        for wait in (*TRANSIENT_ERROR_WAITS, None):
            try:
                return await asyncio.to_thread(self._in_transaction, operation, *args, **kwargs)
            except sa.exc.DBAPIError as exc:
                if wait is None or not _is_transient(exc):
                    raise
                log.warning(
                    "database error in the executor; trying again",
                    extra={"operation": operation.__name__, "error": type(exc.orig).__name__, "retry_in_seconds": wait},
                )
                await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last try returns or raises")

    async def read(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a lifecycle read on a thread, in a session of its own that writes nothing."""

        def in_session() -> T:
            with self.database.reading() as session:
                return operation(*args, session=session, **kwargs)

        return await asyncio.to_thread(in_session)

    def has_begun(self, run_id: str, step_id: str) -> bool:
        """Whether the step began with its predecessor's completion, in this process."""
        return (run_id, step_id) in self.begun

    def forget_run(self, run_id: str) -> None:
        """Drop what is held for the run's steps that began but were not launched, and for its completions not
        settled (the run stopped here)."""
        for key in [key for key in self.begun if key[0] == run_id]:
            del self.begun[key]
        for key in [key for key in self.completing if key[0] == run_id]:
            del self.completing[key]

    async def run(
        self,
        run_id_text: str,
        step: lifecycle.PlannedStep,
        waiter: str | None = None,
        following: Sequence[lifecycle.PlannedStep] = (),
    ) -> "Status | Completed":
        """One DAG step, start to end: the body of the DBOS step drawn for it. Returns the step's final status, or
        the output of a step that completed while the transaction recording it runs (`settled` gives the status).
        A step that waits for a decision is handed its waiter's id (see `decisions`), which is closed once the step has
        ended without taking its decision (and only then: a step stopped with its process waits again after the
        restart). `following` are the steps the run launches next if this one completes: they begin in the
        transaction that completes it."""
        ctx = StepContext(run_id=run_id_text, step_id=step["id"], runner=self, waiter=waiter)
        status = await self._run(ctx, step, list(following))
        if waiter is not None and not ctx.decided:
            await DBOS.send_async(waiter, decisions.CLOSED, decisions.TOPIC)
        return status

    async def _run(
        self, ctx: "StepContext", step: lifecycle.PlannedStep, following: list[lifecycle.PlannedStep]
    ) -> "Status | Completed":
        run_id = uuid.UUID(ctx.run_id)
        set_log_context(step_id=step["id"], tool_id=step["toolId"], attempt=1)  # this step's task only
        loop = asyncio.get_running_loop()
        # The run's deadline, on the loop's clock (None: no run timeout).
        deadline = None if step["deadline"] is None else loop.time() + step["deadline"] - time.time()
        begun = self.begun.pop((ctx.run_id, step["id"]), None)
        if deadline is not None and deadline <= loop.time():
            await self.write(lifecycle.time_out_run, run_id, step["runTimeoutSeconds"])
            return Status.CANCELLED
        start = begun if begun is not None else await self.write(lifecycle.begin_step, run_id, step)
        if isinstance(start, Status):
            return start
        tool = registry.get_tool(step["toolId"])
        if tool is None:
            error = ErrorInfo(code="unknown_tool", message=f"The tool '{step['toolId']}' is not available.")
            return await self.write(lifecycle.finish_step, run_id, step["id"], error=error)
        reason = tool.unavailable_reason(self.settings)
        if reason is not None:
            error = ErrorInfo(code="tool_unavailable", message=reason)
            return await self.write(lifecycle.finish_step, run_id, step["id"], error=error)
        ctx.template_context = start["templateContext"]
        # A wait for a person has no default timeout: only the step's own, the approval's and the run's apply.
        default_timeout = None if step.get("waitsForDecision", False) else self.settings.default_step_timeout_seconds
        timeout = step["timeoutSeconds"] or default_timeout
        attempts = asyncio.ensure_future(self._attempts(run_id, step, tool, start["inputs"], ctx, timeout))
        run_deadline = asyncio.timeout_at(deadline)
        with self.running_tasks.track(ctx.run_id, attempts):
            try:
                async with run_deadline:
                    output = await attempts
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # this process is stopping: the step is left for recovery
                # The step ended meanwhile: a decision posted while a recovered step had yet to wait for it completes
                # (or fails) the step, and the run goes on from there.
                return await self.read(lifecycle.ended_status, run_id, step["id"])
            except Exception as exc:
                if run_deadline.expired():
                    await self.write(lifecycle.time_out_run, run_id, step["runTimeoutSeconds"])
                    return Status.CANCELLED
                return await self.write(lifecycle.finish_step, run_id, step["id"], error=_error_of(exc, timeout))
            finally:
                ctx.deltas.drop_timer()
        size, problem = _output_size(output, self.settings.max_step_output_bytes)
        if problem is not None:
            return await self.write(lifecycle.finish_step, run_id, step["id"], error=problem)
        completion = self._complete(ctx.run_id, step["id"], output, following)
        if ctx.waiter is not None or size > CHECKPOINTED_OUTPUT_BYTES or self.database.dialect != "postgresql":
            return await completion
        # DBOS checkpoints the output while the transaction that completes the step runs: `settled` awaits it.
        self.completing[(ctx.run_id, step["id"])] = asyncio.ensure_future(completion)
        return Completed(output=output)

    async def _complete(
        self, run_id: str, step_id: str, output: Any, following: Sequence[lifecycle.PlannedStep]
    ) -> Status:
        """Complete the step (in one transaction with the start of the steps that come next) and keep what those
        need to begin."""
        following = [] if self.draining else list(following)
        status, begun_next = await self.write(
            lifecycle.finish_step_and_begin, uuid.UUID(run_id), step_id, output, following
        )
        for next_id, start in begun_next.items():
            self.begun[(run_id, next_id)] = start
        return status

    async def settled(
        self,
        run_id: str,
        step_id: str,
        result: "Status | Completed",
        following: Sequence[lifecycle.PlannedStep],
    ) -> Status:
        """The final status of a step whose DBOS step returned `result`. A completed output is recorded by the
        transaction its step started; when that step ran in an earlier process (the result replayed from DBOS's
        checkpoint), it is recorded now, which changes nothing if that process recorded it."""
        if not isinstance(result, dict):
            return Status(result)
        completion = self.completing.pop((run_id, step_id), None)
        if completion is None:
            return await self._complete(run_id, step_id, result["output"], following)
        return await completion

    async def _attempts(
        self,
        run_id: uuid.UUID,
        step: lifecycle.PlannedStep,
        tool: Tool[Any],
        inputs: dict[str, Any] | None,
        ctx: "StepContext",
        timeout: float | None,
    ) -> Any:
        """Call the tool until it succeeds or its retries are spent; raise the last attempt's error. A decision is
        never asked for again."""
        retries = 0 if step.get("waitsForDecision", False) else step["retries"]
        for attempt in range(retries + 1):
            if attempt > 0 and not await self.write(lifecycle.start_retry, run_id, step["id"]):
                raise asyncio.CancelledError
            set_log_context(attempt=attempt + 1)
            try:
                # The step's timeout bounds rendering its inputs too.
                async with asyncio.timeout(timeout):
                    if inputs is None:
                        inputs = await self._rendered_inputs(run_id, step, ctx)
                    output = await tool.run(registry.parse_inputs(tool, inputs), ctx)
                    await ctx.deltas.close()
                    return output
            except Exception as exc:
                if (isinstance(exc, ToolError) and exc.code in NOT_RETRIED) or attempt == retries:
                    raise
                delay = self.settings.retry_backoff_seconds * 2**attempt
                message = f"attempt {attempt + 1} failed: {_error_of(exc, timeout).message}; retry in {delay:g}s"
                await self.write(lifecycle.log_step, run_id, step["id"], message)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def call(
        self, tool: Tool[Any], inputs: dict[str, Any], ctx: "StepContext", timeout: float
    ) -> dict[str, object]:
        """A tool called within a step (by a model): its inputs checked, bounded by `timeout`, its output checked
        against the limits, cancelled with the step; any failure is a ToolError."""
        reason = tool.unavailable_reason(self.settings)
        if reason is not None:
            raise ToolError("tool_unavailable", reason)
        try:
            async with asyncio.timeout(timeout):
                output = await tool.run(registry.parse_inputs(tool, inputs), ctx)
        except Exception as exc:
            error = _error_of(exc, timeout)
            raise ToolError(error.code, error.message) from None
        _, problem = _output_size(output, self.settings.max_step_output_bytes)
        if problem is not None:
            raise ToolError(problem.code, problem.message)
        return output

    async def rendered_reply(self, run_id: uuid.UUID) -> lifecycle.RenderedReply | None:
        """The run's reply template rendered by the template workers (never in a transaction), or None when the run
        has no template to render."""
        source = await self.read(lifecycle.reply_template, run_id)
        if source is None:
            return None
        try:
            text = await self.renderer.render_text(source["template"], source["context"])
        except TemplateError as error:
            message = f"The workflow's reply could not be rendered: {error.message}"
            return lifecycle.RenderedReply(text=None, error={"code": error.code, "message": message})
        return lifecycle.RenderedReply(text=text, error=None)

    async def _rendered_inputs(
        self, run_id: uuid.UUID, step: lifecycle.PlannedStep, ctx: "StepContext"
    ) -> dict[str, Any]:
        """The step's inputs with their templates rendered by the template workers, then stored with the step."""
        tool = registry.get_tool(step["toolId"])
        raw = tool.raw_inputs if tool is not None else frozenset()
        templated = {name: value for name, value in step["inputs"].items() if name not in raw}
        try:
            rendered = await self.renderer.render_value(templated, ctx.template_context)
        except TemplateError as error:
            raise ToolError(error.code, error.message) from None
        assert isinstance(rendered, dict)
        inputs = {name: rendered.get(name, value) for name, value in step["inputs"].items()}
        await self.write(lifecycle.record_inputs, run_id, step["id"], inputs)
        return inputs


@dataclass
class StepContext:
    """What a tool sees of the run: its template context, network limits, a progress channel, a renderer, and for
    an approval its waiter."""

    run_id: str
    step_id: str
    runner: StepRunner
    waiter: str | None = None
    template_context: dict[str, Any] = field(default_factory=dict)
    # Whether the step took a decision from its waiter.
    decided: bool = False
    _last_progress: float = field(default=0.0)
    deltas: OutputDeltas = field(init=False)

    def __post_init__(self) -> None:
        self.deltas = OutputDeltas(self._publish_delta)

    @property
    def settings(self) -> Settings:
        return self.runner.settings

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return self.settings.tool_hosts

    @property
    def max_response_bytes(self) -> int:
        return self.settings.tool_max_response_bytes

    async def await_decision(self, prompt: str, timeout_seconds: float | None) -> dict[str, object]:
        if self.waiter is None:
            raise ToolError("tool_error", "Only a tool that waits for decisions can wait for one.")
        started = await self.runner.write(lifecycle.await_decision, uuid.UUID(self.run_id), self.step_id, prompt)
        if started is None:
            raise asyncio.CancelledError  # the step has ended meanwhile
        deadline = None if timeout_seconds is None else started + timeout_seconds
        self.runner.waiting[self.run_id] += 1
        try:
            message = await self._published_decision(self.waiter, deadline)
        finally:
            self.runner.waiting[self.run_id] -= 1
            if not self.runner.waiting[self.run_id]:
                del self.runner.waiting[self.run_id]
        if message is None:
            assert timeout_seconds is not None
            raise ToolError("timeout", f"No decision came within {timeout_seconds:g} seconds.")
        self.decided = True
        output, error = decisions.step_result(message)
        if error is not None:
            raise ToolError(error.code, error.message)
        assert output is not None
        return output

    async def _publish_delta(self, text: str) -> None:
        await self.runner.write(lifecycle.append_output_delta, uuid.UUID(self.run_id), self.step_id, text)

    @staticmethod
    async def _published_decision(waiter: str, deadline: float | None) -> dict[str, Any] | None:
        """The decision the waiter publishes, or None once `deadline` (epoch seconds) has passed."""
        while True:
            wait = DECISION_WAIT_SECONDS if deadline is None else min(DECISION_WAIT_SECONDS, deadline - time.time())
            if wait <= 0:
                return None
            message = await DBOS.get_event_async(waiter, decisions.EVENT, timeout_seconds=wait)
            if decisions.is_decision(message):
                return dict(message)

    async def stream_output(self, text: str) -> None:
        await self.deltas.add(text)

    async def log(self, message: str) -> None:
        await self.runner.write(lifecycle.log_step, uuid.UUID(self.run_id), self.step_id, message)

    async def chat_history(self) -> list[dict[str, str]]:
        return await self.runner.read(lifecycle.chat_history, uuid.UUID(self.run_id))

    def offer_tools(self, tool_ids: Sequence[str]) -> list[ToolOffer]:
        return registry.offers(tool_ids)

    async def call_tool(self, tool_id: str, inputs: dict[str, Any]) -> dict[str, object]:
        tool = registry.get_tool(tool_id)
        if tool is None or not tool.offered_to_models:
            raise ToolError("unknown_tool", f"There is no tool '{tool_id}' a model can call.")
        return await self.runner.call(tool, inputs, self, self.runner.settings.default_step_timeout_seconds)

    async def report_progress(self, progress: int, message: str) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_progress = now
        progress = max(0, min(100, int(progress)))
        await self.runner.write(lifecycle.report_progress, uuid.UUID(self.run_id), self.step_id, progress, message)

    async def render_text(self, template: str) -> str:
        return await self.runner.renderer.render_text(template, self.template_context)


def _output_size(output: Any, max_bytes: int) -> tuple[int, ErrorInfo | None]:
    """The size of a step's output as JSON, and why it cannot be kept (data outside the contract's limits, or too
    large), or None."""
    problems = json_problems(output, "output")
    if problems:
        path, message = problems[0]
        return 0, ErrorInfo(code="invalid_output", message=f"The step's output cannot be stored: {path} {message}.")
    try:
        size = len(orjson.dumps(output))
    except TypeError:
        return 0, ErrorInfo(code="invalid_output", message="The step's output is not JSON data.")
    if size > max_bytes:
        message = f"The step's output is {size} bytes as JSON; at most {max_bytes} are kept."
        return size, ErrorInfo(code="output_too_large", message=message)
    return size, None


def _error_of(exc: BaseException, timeout: float | None) -> ErrorInfo:
    if isinstance(exc, ToolError):
        return ErrorInfo(code=exc.code, message=exc.message)
    if isinstance(exc, TimeoutError):
        within = f" within {timeout:g} seconds" if timeout is not None else ""
        return ErrorInfo(code="timeout", message=f"The step did not finish{within}.")
    return ErrorInfo(code="tool_error", message=f"The tool failed unexpectedly ({type(exc).__name__}).")
