"""What the executor asks of the record: each function is one transaction, run inside a DBOS step (or, for a step's
completion, beside the DBOS checkpoint of its output), and each moves state only through the door in `transitions`.

Each is idempotent, because a DBOS step can run again after a crash that came between our commit and DBOS's
checkpoint, and a run resumed from a checkpointed output records it again: a step already started is not started
twice, a step already ended is reported as it ended.
"""

import uuid
from typing import Any, NotRequired, TypedDict, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.db import utcnow
from runwire.messages import service as messages_service
from runwire.runs import transitions
from runwire.runs.decisions import DECISION
from runwire.runs.models import StepRun, WorkflowRun
from runwire.runs.states import Outcome, Status, is_final
from runwire.schemas import ErrorInfo
from runwire.templating.sandbox import contains_template
from runwire.tools import registry
from runwire.workflows import dag
from runwire.workflows import service as workflows_service
from runwire.workflows.models import WorkflowVersion
from runwire.workflows.schemas import StepDef

MAX_LOG_ENTRIES = 200

_STEPS = cast(sa.Table, StepRun.__table__)
_THE_STEP = sa.and_(_STEPS.c.run_id == sa.bindparam("run_key"), _STEPS.c.step_id == sa.bindparam("step_key"))
# Built once, executed with a parameter dict.
_COUNT_ATTEMPT = sa.update(_STEPS).where(_THE_STEP).values(attempts=_STEPS.c.attempts + 1)
_STEP_INPUTS = sa.select(_STEPS.c.inputs).where(_THE_STEP)


class PlannedStep(TypedDict):
    """A step as the executor runs it: read once when the run starts, so that no step re-reads the definition."""

    id: str
    dependsOn: list[str]
    status: str
    toolId: str
    inputs: dict[str, Any]
    timeoutSeconds: float | None
    retries: int
    upstream: list[str]
    # Whether any input holds a template (the tool's own raw inputs included): the step then needs its context.
    templated: bool
    # Whether the engine renders inputs before the call (templates outside the tool's raw inputs).
    renders: bool
    # The run's deadline (epoch seconds: its start plus its version's timeout), or None: kept in the plan so that a
    # recovered run keeps the deadline it started with.
    deadline: float | None
    runTimeoutSeconds: int | None
    # Whether the step's tool waits for a person's decision (`approval`): the run then waits for it durably. Absent
    # from the plans of runs started before approval steps existed (their start is replayed from its checkpoint).
    waitsForDecision: NotRequired[bool]


class ReplyTemplate(TypedDict):
    """A workflow's reply template and what it is rendered over: the run's input and every step's output."""

    template: str
    context: dict[str, Any]


class RenderedReply(TypedDict):
    text: str | None
    error: dict[str, Any] | None


class StepStart(TypedDict):
    # The rendered inputs, or None while the step's templates are still to be rendered.
    inputs: dict[str, Any] | None
    templateContext: dict[str, Any]


def start_run(run_id: uuid.UUID, *, session: Session) -> list[PlannedStep] | Outcome:
    """Mark the run running and return its steps in dependency order; MISSING when no committed run has that id,
    ALREADY_FINAL when it has ended. A run already running (recovered after a crash) is planned again."""
    moved = transitions.transition_run(run_id, Status.RUNNING, session=session)
    if moved.outcome in (Outcome.MISSING, Outcome.ALREADY_FINAL):
        return moved.outcome
    version, started_at = _pinned_version(run_id, session=session)
    definitions = {step.id: step for step in map(StepDef.model_validate, version.steps)}
    upstream = dag.ancestors(list(definitions.values()))
    deadline = None
    if version.timeout_seconds is not None and started_at is not None:
        deadline = started_at.timestamp() + version.timeout_seconds
    return [
        _planned(definitions[step_id], status, sorted(upstream[step_id]), deadline, version.timeout_seconds)
        for step_id, status in transitions.run_steps(run_id, session=session)
    ]


def _pinned_version(run_id: uuid.UUID, *, session: Session) -> tuple[WorkflowVersion, Any]:
    """The version the run is pinned to, and the run's start time."""
    workflow_id, version_number, started_at = session.execute(
        sa.select(WorkflowRun.workflow_id, WorkflowRun.workflow_version, WorkflowRun.started_at).where(
            WorkflowRun.id == run_id
        )
    ).one()
    return workflows_service.get_version(workflow_id, version_number, session=session), started_at


def _planned(
    definition: StepDef, status: str, upstream: list[str], deadline: float | None, run_timeout: int | None
) -> PlannedStep:
    tool = registry.get_tool(definition.tool_id)
    raw = tool.raw_inputs if tool is not None else frozenset()
    templated = {name for name, value in definition.inputs.items() if contains_template(value)}
    return PlannedStep(
        id=definition.id,
        dependsOn=definition.depends_on,
        status=status,
        toolId=definition.tool_id,
        inputs=definition.inputs,
        timeoutSeconds=definition.timeout_seconds,
        retries=definition.retries or 0,
        upstream=upstream,
        templated=bool(templated),
        renders=bool(templated - raw),
        deadline=deadline,
        runTimeoutSeconds=run_timeout,
        waitsForDecision=tool is not None and tool.waits_for_decision,
    )


def _step_where(run_id: uuid.UUID, step_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(StepRun.run_id == run_id, StepRun.step_id == step_id)


def begin_step(run_id: uuid.UUID, step: PlannedStep, *, session: Session) -> StepStart | Status:
    """Start a step and count its first attempt; return what the attempt needs, or the status the step ended with.
    A step found running was interrupted by a crash: its attempt is counted again."""
    moved = transitions.transition_step(run_id, step["id"], Status.RUNNING, inputs=_known_inputs(step), session=session)
    if moved.status is None:
        return Status.CANCELLED
    if is_final(moved.status):
        return moved.status
    if moved.outcome is Outcome.ALREADY_FINAL:
        return Status.CANCELLED
    if moved.applied:
        return _started(run_id, step, session=session)
    # A step found running: its new attempt is counted, and made no event.
    keys = {"run_key": run_id, "step_key": step["id"]}
    connection = session.connection()
    connection.execute(_COUNT_ATTEMPT, keys)
    inputs = connection.execute(_STEP_INPUTS, keys).scalar_one()
    run = _running_step(run_id, step["id"], session=session)
    if run is not None:
        _touched(run, session=session)
    return StepStart(inputs=inputs, templateContext=_step_context(run_id, step, session=session))


def _known_inputs(step: PlannedStep) -> dict[str, Any] | None:
    """The inputs a step starts with, or None when they are rendered after it has started."""
    return None if step["renders"] else step["inputs"]


def _started(run_id: uuid.UUID, step: PlannedStep, *, session: Session) -> StepStart:
    """What the first attempt of a step that has just started needs."""
    return StepStart(inputs=_known_inputs(step), templateContext=_step_context(run_id, step, session=session))


def _step_context(run_id: uuid.UUID, step: PlannedStep, *, session: Session) -> dict[str, Any]:
    return _template_context(run_id, step["upstream"], session=session) if step["templated"] else {}


def _template_context(run_id: uuid.UUID, upstream: list[str], *, session: Session) -> dict[str, Any]:
    run_input = session.scalar(sa.select(WorkflowRun.input).where(WorkflowRun.id == run_id))
    outputs = session.execute(
        sa.select(StepRun.step_id, StepRun.output).where(
            StepRun.run_id == run_id, StepRun.step_id.in_(upstream), StepRun.status == Status.COMPLETED
        )
    ).all()
    return {"input": run_input, "steps": {step_id: {"output": output} for step_id, output in outputs}}


def _running_step(run_id: uuid.UUID, step_id: str, *, session: Session) -> transitions.LockedRun | None:
    """The run, locked, when it is live and the step is running; else None."""
    run = transitions.lock_run(run_id, session=session)
    if run is None or is_final(run.status):
        return None
    status = session.scalar(sa.select(StepRun.status).where(_step_where(run_id, step_id)))
    return run if status == Status.RUNNING else None


def record_inputs(run_id: uuid.UUID, step_id: str, inputs: dict[str, Any], *, session: Session) -> None:
    """Store a running step's rendered inputs (rendered outside any transaction); kept if already stored."""
    run = _running_step(run_id, step_id, session=session)
    if run is not None:
        where = sa.and_(_step_where(run_id, step_id), StepRun.inputs.is_(None))
        if session.connection().execute(sa.update(StepRun).where(where).values(inputs=inputs)).rowcount:
            _touched(run, session=session)


def start_retry(run_id: uuid.UUID, step_id: str, *, session: Session) -> bool:
    """Count a further attempt; False when the step is no longer running (so the attempt must not happen)."""
    run = _running_step(run_id, step_id, session=session)
    if run is None:
        return False
    session.execute(sa.update(StepRun).where(_step_where(run_id, step_id)).values(attempts=StepRun.attempts + 1))
    _touched(run, session=session)
    return True


def log_step(run_id: uuid.UUID, step_id: str, message: str, *, session: Session) -> None:
    run = _running_step(run_id, step_id, session=session)
    if run is not None and _append_log(run_id, step_id, message, session=session):
        _touched(run, session=session)


def _touched(run: transitions.LockedRun, *, session: Session) -> None:
    run.touch()
    transitions.save(run, session=session)


def report_progress(run_id: uuid.UUID, step_id: str, progress: int, message: str, *, session: Session) -> None:
    run = _running_step(run_id, step_id, session=session)
    if run is None:
        return
    _append_log(run_id, step_id, f"{progress}% {message}", session=session)
    run.emit("step_progress", {"stepId": step_id, "progress": progress, "message": message})
    transitions.save(run, session=session)


def _append_log(run_id: uuid.UUID, step_id: str, message: str, *, session: Session) -> bool:
    """Add the entry to the step's log unless the log is full; whether it was added."""
    where = _step_where(run_id, step_id)
    logs: list[Any] = session.scalar(sa.select(StepRun.logs).where(where)) or []
    if len(logs) >= MAX_LOG_ENTRIES:
        return False
    entry = {"at": utcnow().isoformat(), "message": message}
    session.execute(sa.update(StepRun).where(where).values(logs=[*logs, entry]))
    return True


def await_decision(run_id: uuid.UUID, step_id: str, prompt: str, *, session: Session) -> float | None:
    """Mark a running step as waiting for a decision and say so in the run's log (once: a recovered step that
    waits again adds nothing). Returns when the step started (epoch seconds: its wait is timed from then), or None
    when the step is no longer running."""
    run = _running_step(run_id, step_id, session=session)
    if run is None:
        return None
    where = _step_where(run_id, step_id)
    waiting_for, started_at = session.execute(sa.select(StepRun.waiting_for, StepRun.started_at).where(where)).one()
    if waiting_for is None:
        session.execute(sa.update(StepRun).where(where).values(waiting_for=DECISION))
        run.emit("step_waiting", {"stepId": step_id, "prompt": prompt})
        transitions.save(run, session=session)
    assert started_at is not None, "a running step has started"
    return float(started_at.timestamp())


def step_is_live(run_id: uuid.UUID, step_id: str, *, session: Session) -> bool:
    """Whether the step has yet to end."""
    status = session.scalar(sa.select(StepRun.status).where(_step_where(run_id, step_id)))
    return status is not None and not is_final(status)


def ended_status(run_id: uuid.UUID, step_id: str, *, session: Session) -> Status:
    """The status a step ended with while its attempt was under way (ended by a decision, or by its run's end):
    cancelled unless it has another final one."""
    return _reported(session.scalar(sa.select(StepRun.status).where(_step_where(run_id, step_id))))


def finish_step(
    run_id: uuid.UUID, step_id: str, *, output: Any = None, error: ErrorInfo | None = None, session: Session
) -> Status:
    """Record a step's result; a failure fails the run. Returns the step's final status."""
    target = Status.COMPLETED if error is None else Status.FAILED
    moved = transitions.transition_step(run_id, step_id, target, output=output, error=error, session=session)
    return _reported(moved.status)


def _reported(status: str | None) -> Status:
    """A step's status as its runner reports it: the final one it has, else cancelled."""
    return Status(status) if status is not None and is_final(status) else Status.CANCELLED


def finish_step_and_begin(
    run_id: uuid.UUID, step_id: str, output: Any, following: list[PlannedStep], *, session: Session
) -> tuple[Status, dict[str, StepStart]]:
    """Complete a step and, once it has completed, begin the steps its completion lets the run launch next, in the
    same transaction (a step and its successors cost one transaction, not two). Returns the step's final status and
    what the first attempt of each successor that began needs; a successor that did not begin is left to its own
    `begin_step`."""
    inputs = {successor["id"]: _known_inputs(successor) for successor in following}
    moved, started = transitions.complete_step_and_start(run_id, step_id, output, inputs, session=session)
    begun = {
        successor["id"]: _started(run_id, successor, session=session)
        for successor in following
        if successor["id"] in started
    }
    return _reported(moved.status), begun


def time_out_run(run_id: uuid.UUID, timeout_seconds: int | None, *, session: Session) -> None:
    """Fail a run past its deadline (its unfinished steps are cancelled); a run already ended is left as it is."""
    message = f"The run did not finish within its timeout of {timeout_seconds} seconds."
    transitions.transition_run(
        run_id, Status.FAILED, error=ErrorInfo(code="run_timeout", message=message), session=session
    )


def reply_template(run_id: uuid.UUID, *, session: Session) -> ReplyTemplate | None:
    """The reply template to render before a run a message started completes, with its context; None when there is
    nothing to render (no message started the run, the workflow has no `reply`, or the run cannot complete)."""
    if messages_service.user_message_seq(run_id, session=session) is None:
        return None
    version, _ = _pinned_version(run_id, session=session)
    if version.reply is None:
        return None
    outputs = session.execute(
        sa.select(StepRun.step_id, StepRun.output, StepRun.status).where(StepRun.run_id == run_id)
    ).all()
    if any(status != Status.COMPLETED for _, _, status in outputs):
        return None
    run_input = session.scalar(sa.select(WorkflowRun.input).where(WorkflowRun.id == run_id))
    steps = {step_id: {"output": output} for step_id, output, _ in outputs}
    return ReplyTemplate(template=version.reply, context={"input": run_input, "steps": steps})


def chat_history(run_id: uuid.UUID, *, session: Session) -> list[dict[str, str]]:
    """The turns of the run's chat before the message that started the run (before the run, for a run no message
    started), oldest first, as `{role, content}`."""
    chat_id, created_at = session.execute(
        sa.select(WorkflowRun.chat_id, WorkflowRun.created_at).where(WorkflowRun.id == run_id)
    ).one()
    before_seq = messages_service.user_message_seq(run_id, session=session)
    until = created_at if before_seq is None else None
    turns = messages_service.history(chat_id, before_seq=before_seq, until=until, session=session)
    return [{"role": message.role, "content": message.content} for message in turns]


def append_output_delta(run_id: uuid.UUID, step_id: str, text: str, *, session: Session) -> None:
    """A chunk of a running step's streamed output, as a `step_output_delta` event."""
    run = _running_step(run_id, step_id, session=session)
    if run is None:
        return
    run.emit("step_output_delta", {"stepId": step_id, "text": text})
    transitions.save(run, session=session)


def finish_run(run_id: uuid.UUID, reply: RenderedReply | None = None, *, session: Session) -> Status | None:
    """End a run whose steps have all ended; a run already ended is left as it is. None for a missing run.
    `reply` is the run's reply template, rendered: its text, or why it could not be (which fails the run)."""
    run = transitions.lock_run(run_id, session=session)
    if run is None:
        return None
    if is_final(run.status):
        return Status(run.status)
    unfinished = [
        step_id for step_id, status in transitions.run_steps(run_id, session=session) if status != Status.COMPLETED
    ]
    if reply is not None and reply["error"] is not None:
        error = ErrorInfo.model_validate(reply["error"])
        return transitions.transition_run(run_id, Status.FAILED, error=error, session=session).status
    if not unfinished:
        text = reply["text"] if reply is not None else None
        return transitions.transition_run(run_id, Status.COMPLETED, reply=text, session=session).status
    error = ErrorInfo(code="executor_error", message=f"The run ended with unfinished steps: {', '.join(unfinished)}.")
    return transitions.transition_run(run_id, Status.FAILED, error=error, session=session).status


def abandon_run(run_id: uuid.UUID, message: str, *, session: Session) -> None:
    """Fail a run that can no longer be executed (its durable workflow failed or vanished)."""
    error = ErrorInfo(code="executor_error", message=message)
    transitions.transition_run(run_id, Status.FAILED, error=error, session=session)
