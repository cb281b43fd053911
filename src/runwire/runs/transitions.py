"""The one door for state: every status change of a run or step, and every event in a run's log, goes through here.

A transition locks the run's row itself (which serialises every writer to the run and its steps), consults the move
table in `states`, writes the new status, its time and the matching event in the caller's transaction, and says what
happened as an `Outcome`, so that callers never re-decide it. The rules that tie runs and steps together live here
too: a failed step fails its run, and a run that fails or is cancelled ends its unfinished steps (fail-fast).
"""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.db import utcnow
from runwire.runs.models import RunEvent, StepRun, WorkflowRun
from runwire.runs.schemas import ErrorInfo
from runwire.runs.signals import Signal, raise_signal
from runwire.runs.states import FINAL, RUN_MOVES, STEP_MOVES, Outcome, Status, judge


def lock_run(run_id: uuid.UUID, *, session: Session) -> WorkflowRun | None:
    """The run, locked for this transaction and re-read: a copy loaded before the lock may be out of date."""
    query = sa.select(WorkflowRun).where(WorkflowRun.id == run_id).with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).one_or_none()


def run_steps(run_id: uuid.UUID, *, session: Session) -> list[StepRun]:
    """The run's steps as committed now, in dependency order (call it with the run locked)."""
    query = sa.select(StepRun).where(StepRun.run_id == run_id).order_by(StepRun.position)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def step_row(run_id: uuid.UUID, step_id: str, *, session: Session) -> StepRun:
    """The step as committed now (call it with the run locked)."""
    step = session.get(StepRun, (run_id, step_id), populate_existing=True)
    assert step is not None, f"run {run_id} has no step {step_id}"
    return step


def append_event(run: WorkflowRun, event_type: str, data: dict[str, Any], *, session: Session) -> None:
    """Add an event to the run's log (the run must be locked): the next sequence number, and a signal on commit."""
    run.last_event_seq += 1
    session.add(RunEvent(run_id=run.id, seq=run.last_event_seq, type=event_type, data=data, created_at=utcnow()))
    raise_signal(Signal.EVENTS, run.id, session=session)


def transition_run(run_id: uuid.UUID, target: Status, *, error: ErrorInfo | None = None, session: Session) -> Outcome:
    run = lock_run(run_id, session=session)
    if run is None:
        return Outcome.MISSING
    refused = judge(RUN_MOVES, run.status, target)
    if refused is not None:
        return refused
    _move_run(run, target, error, session=session)
    return Outcome.APPLIED


def transition_step(
    run_id: uuid.UUID,
    step_id: str,
    target: Status,
    *,
    output: Any = None,
    error: ErrorInfo | None = None,
    session: Session,
) -> Outcome:
    """Move a step; a step cannot start or end but as cancelled once its run has ended."""
    run = lock_run(run_id, session=session)
    if run is None:
        return Outcome.MISSING
    if run.status in FINAL and target is not Status.CANCELLED:
        return Outcome.ALREADY_FINAL
    step = step_row(run_id, step_id, session=session)
    refused = judge(STEP_MOVES, step.status, target)
    if refused is not None:
        return refused
    _move_step(run, step, target, output=output, error=error, session=session)
    if target is Status.FAILED:
        assert error is not None, "a step fails with an error"
        failure = ErrorInfo(code="step_failed", message=f"Step '{step_id}' failed: {error.message}")
        _move_run(run, Status.FAILED, failure, session=session)
    return Outcome.APPLIED


def _move_run(run: WorkflowRun, target: Status, error: ErrorInfo | None, *, session: Session) -> None:
    now = utcnow()
    if target is Status.RUNNING:
        run.status, run.started_at = target, now
        append_event(run, "run_started", {"runId": str(run.id), "workflowId": str(run.workflow_id)}, session=session)
        return
    if target is not Status.COMPLETED:
        _halt_steps(run, session=session)
    run.status, run.completed_at = target, now
    run.error = error.model_dump() if error is not None else None
    if target is Status.FAILED:
        append_event(run, "run_failed", {"runId": str(run.id), "error": run.error}, session=session)
    else:
        append_event(run, "run_completed", {"runId": str(run.id), "status": target.value}, session=session)


def _halt_steps(run: WorkflowRun, *, session: Session) -> None:
    """Cancel the run's unfinished steps, and have their tool calls stopped once this commits."""
    for step in run_steps(run.id, session=session):
        if step.status not in FINAL:
            _move_step(run, step, Status.CANCELLED, session=session)
    raise_signal(Signal.HALTED, run.id, session=session)


def _move_step(
    run: WorkflowRun,
    step: StepRun,
    target: Status,
    *,
    output: Any = None,
    error: ErrorInfo | None = None,
    session: Session,
) -> None:
    now = utcnow()
    step.status = target
    if target is Status.RUNNING:
        step.started_at = now
        append_event(run, "step_started", {"stepId": step.step_id, "toolId": step.tool_id}, session=session)
        return
    step.completed_at = now
    if target is Status.COMPLETED:
        step.output = output
        append_event(run, "step_completed", {"stepId": step.step_id, "result": output}, session=session)
    elif target is Status.FAILED:
        assert error is not None
        step.error = error.model_dump()
        append_event(run, "step_failed", {"stepId": step.step_id, "error": step.error}, session=session)
