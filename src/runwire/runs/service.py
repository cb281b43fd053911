"""Runs: creation in a chat's request order, and cancellation. Every state change goes through `transitions`."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.chats import service as chats_service
from runwire.chats.models import Chat
from runwire.db import utcnow
from runwire.errors import Conflict, NotFound
from runwire.runs import telemetry, transitions
from runwire.runs.models import StepRun, WorkflowRun
from runwire.runs.schemas import RunCreate
from runwire.runs.signals import Signal, raise_signal
from runwire.runs.states import Status
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


def create_run(chat: Chat, data: RunCreate, *, user_id: uuid.UUID, enqueue: Enqueue, session: Session) -> WorkflowRun:
    """Write the run and its steps as pending and queue it, in the chat's request order."""
    workflow = workflows_service.get_owned_workflow(data.workflow_id, user_id=user_id, session=session)
    steps = [StepDef.model_validate(s) for s in workflows_service.current_steps(workflow, session=session)]
    # Under the chat's lock, chat_seq (the execution order) follows request order, and whether the chat is busy
    # cannot change before this run is written.
    chats_service.lock_chat(chat, session=session)
    if data.if_busy != "enqueue":
        active = _active_run_ids(chat, session=session)
        if active and data.if_busy == "reject":
            raise Conflict("The chat is busy: a run of it is pending or running.")
        for run_id in active:
            transitions.transition_run(run_id, Status.CANCELLED, session=session)
    chats_service.bump_version(chat, session=session)
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
    telemetry.run_created(run.id, chat.id, workflow.id, session=session)
    raise_signal(Signal.QUEUE_CHANGED, run.id, session=session)
    return run


def get_run_in_chat(chat: Chat, run_id: uuid.UUID, *, session: Session) -> WorkflowRun:
    run = session.get(WorkflowRun, run_id)
    if run is None or run.chat_id != chat.id:
        raise NotFound("Workflow run not found.")
    return run


def cancel_run(run: WorkflowRun, *, session: Session) -> None:
    moved = transitions.transition_run(run.id, Status.CANCELLED, session=session)
    if not moved.applied:
        raise Conflict(f"The run has already ended ({moved.status}).")


def _active_run_ids(chat: Chat, *, session: Session) -> list[uuid.UUID]:
    return list(
        session.scalars(
            sa.select(WorkflowRun.id).where(
                WorkflowRun.chat_id == chat.id, WorkflowRun.status.in_([Status.PENDING, Status.RUNNING])
            )
        )
    )


def cancel_active_runs(chat: Chat, *, session: Session) -> None:
    """Cancel the chat's pending and running runs, with the chat locked so that no run is added meanwhile."""
    chats_service.lock_chat(chat, session=session)
    for run_id in _active_run_ids(chat, session=session):
        transitions.transition_run(run_id, Status.CANCELLED, session=session)
