"""Runs and steps: creation, every state change (the one door), and cancellation.

Every status change goes through `transition_run` or `transition_step`, which check the move, stamp the time and
append the matching event to the run's log in the caller's transaction.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.chats.models import Chat
from runwire.db import utcnow
from runwire.errors import Conflict, NotFound
from runwire.ownership import lock_owned
from runwire.runs.models import RunEvent, StepRun, WorkflowRun
from runwire.runs.schemas import RunCreate
from runwire.runs.signals import Signal, raise_signal
from runwire.runs.states import RUN_MOVES, STEP_MOVES, Status, check_move, is_final
from runwire.workflows import dag
from runwire.workflows import service as workflows_service
from runwire.workflows.schemas import StepDef


@dataclass(frozen=True)
class Enqueued:
    """What the executor needs to queue a new run."""

    run_id: uuid.UUID
    chat_id: uuid.UUID
    chat_seq: int


Enqueue = Callable[[Enqueued], None]


def error_info(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def append_event(run: WorkflowRun, event_type: str, data: dict[str, Any], *, session: Session) -> None:
    run.last_event_seq += 1
    session.add(RunEvent(run_id=run.id, seq=run.last_event_seq, type=event_type, data=data, created_at=utcnow()))
    raise_signal(Signal.EVENTS, run.id, session=session)


def transition_run(run: WorkflowRun, target: Status, *, error: dict[str, str] | None = None, session: Session) -> None:
    check_move("run", RUN_MOVES, run.status, target)
    now = utcnow()
    run.status = target
    if target is Status.RUNNING:
        run.started_at = now
        append_event(run, "run_started", {"runId": str(run.id), "workflowId": str(run.workflow_id)}, session=session)
        return
    run.completed_at = now
    run.error = error
    if target is Status.FAILED:
        append_event(run, "run_failed", {"runId": str(run.id), "error": error}, session=session)
    else:
        append_event(run, "run_completed", {"runId": str(run.id), "status": target.value}, session=session)


def transition_step(
    run: WorkflowRun,
    step: StepRun,
    target: Status,
    *,
    output: Any = None,
    error: dict[str, str] | None = None,
    session: Session,
) -> None:
    check_move("step", STEP_MOVES, step.status, target)
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
        step.error = error
        append_event(run, "step_failed", {"stepId": step.step_id, "error": error}, session=session)


def lock_run(run_id: uuid.UUID, *, session: Session) -> WorkflowRun | None:
    """The run, locked for this transaction and re-read: a copy loaded before the lock may be out of date."""
    query = sa.select(WorkflowRun).where(WorkflowRun.id == run_id).with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).one_or_none()


def run_steps(run_id: uuid.UUID, *, session: Session) -> list[StepRun]:
    """The run's steps as committed now (call it after `lock_run`, which serialises writers to the run)."""
    query = sa.select(StepRun).where(StepRun.run_id == run_id).order_by(StepRun.position)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def create_run(chat: Chat, data: RunCreate, *, user_id: uuid.UUID, enqueue: Enqueue, session: Session) -> WorkflowRun:
    """Write the run and its steps as pending and queue it, in the chat's request order."""
    workflow = workflows_service.get_owned_workflow(data.workflow_id, user_id=user_id, session=session)
    steps = [StepDef.model_validate(s) for s in workflows_service.current_steps(workflow, session=session)]
    # Serialises run creation (and deletion) per chat, so that chat_seq (the execution order) follows request
    # order and no run is added to a chat being deleted.
    lock_owned(chat, noun="chat", session=session)
    last_seq = session.scalar(sa.select(sa.func.max(WorkflowRun.chat_seq)).where(WorkflowRun.chat_id == chat.id))
    run = WorkflowRun(
        chat_id=chat.id,
        workflow_id=workflow.id,
        workflow_version=workflow.current_version,
        chat_seq=(last_seq or 0) + 1,
        status=Status.PENDING,
        input=data.input,
        created_at=utcnow(),
    )
    session.add(run)
    session.flush()
    by_id = {step.id: step for step in steps}
    for position, step_id in enumerate(dag.dependency_order(steps)):
        step = by_id[step_id]
        session.add(
            StepRun(
                run_id=run.id,
                step_id=step.id,
                position=position,
                name=step.name,
                tool_id=step.tool_id,
                status=Status.PENDING,
                logs=[],
            )
        )
    session.flush()
    enqueue(Enqueued(run_id=run.id, chat_id=chat.id, chat_seq=run.chat_seq))
    return run


def get_run_in_chat(chat: Chat, run_id: uuid.UUID, *, session: Session) -> WorkflowRun:
    run = session.get(WorkflowRun, run_id)
    if run is None or run.chat_id != chat.id:
        raise NotFound("Workflow run not found.")
    return run


def _end_unfinished_steps(run: WorkflowRun, *, session: Session) -> None:
    for step in run_steps(run.id, session=session):
        if not is_final(step.status):
            transition_step(run, step, Status.CANCELLED, session=session)
    raise_signal(Signal.CANCELLED, run.id, session=session)


def cancel_run(run: WorkflowRun, *, session: Session) -> WorkflowRun:
    locked = lock_run(run.id, session=session)
    assert locked is not None
    if is_final(locked.status):
        raise Conflict(f"The run has already ended ({locked.status}).")
    _end_unfinished_steps(locked, session=session)
    transition_run(locked, Status.CANCELLED, session=session)
    return locked


def cancel_active_runs(chat_id: uuid.UUID, *, session: Session) -> list[uuid.UUID]:
    active = session.scalars(
        sa.select(WorkflowRun.id).where(
            WorkflowRun.chat_id == chat_id, WorkflowRun.status.in_([Status.PENDING, Status.RUNNING])
        )
    ).all()
    cancelled = []
    for run_id in active:
        run = lock_run(run_id, session=session)
        if run is not None and not is_final(run.status):
            cancel_run(run, session=session)
            cancelled.append(run_id)
    return cancelled


def fail_run(run: WorkflowRun, error: dict[str, str], *, session: Session) -> None:
    """End a run as failed: its unfinished steps are cancelled (fail-fast)."""
    _end_unfinished_steps(run, session=session)
    transition_run(run, Status.FAILED, error=error, session=session)
