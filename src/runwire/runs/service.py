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

# The statuses a run can be re-run from its failed step in.
RERUN_FROM_FAILED = (Status.FAILED, Status.CANCELLED)


@dataclass(frozen=True)
class Rerun:
    """A re-run of `source` (a run of the same chat): its workflow version and input, and with `from_failed` the
    steps it completed, reused as they are."""

    source: WorkflowRun
    from_failed: bool = False


def create_run(
    chat: Chat,
    data: RunCreate,
    *,
    user_id: uuid.UUID,
    enqueue: Enqueue,
    session: Session,
    rerun: Rerun | None = None,
) -> WorkflowRun:
    """Write the run and its steps as pending and queue it, in the chat's request order. A re-run is pinned to its
    source's version (even of a workflow changed or deleted since) and takes its input; `data` names them both."""
    if rerun is None:
        workflow = workflows_service.get_owned_workflow(data.workflow_id, user_id=user_id, session=session)
        version = workflows_service.current_version(workflow, session=session)
    else:
        version = workflows_service.get_version(
            rerun.source.workflow_id, rerun.source.workflow_version, session=session
        )
    steps = [StepDef.model_validate(s) for s in version.steps]
    # Under the chat's lock, chat_seq (the execution order) follows request order, and whether the chat is busy
    # cannot change before this run is written (nor, for a re-run, whether its source has ended: every move of a
    # run locks its chat first).
    chats_service.lock_chat(chat, session=session)
    reused = _reused_steps(rerun, session=session) if rerun is not None else {}
    if data.if_busy != "enqueue":
        active = _active_run_ids(chat, session=session)
        if active and data.if_busy == "reject":
            raise Conflict("The chat is busy: a run of it is pending or running.")
        for run_id in active:
            transitions.transition_run(run_id, Status.CANCELLED, session=session)
    chats_service.bump_version(chat, session=session)
    last_seq = session.scalar(sa.select(sa.func.max(WorkflowRun.chat_seq)).where(WorkflowRun.chat_id == chat.id))
    now = utcnow()
    run = WorkflowRun(
        chat_id=chat.id,
        workflow_id=version.workflow_id,
        workflow_version=version.version,
        chat_seq=(last_seq or 0) + 1,
        status=Status.PENDING,
        input=data.input,
        rerun_of=rerun.source.id if rerun is not None else None,
        created_at=now,
    )
    session.add(run)
    session.flush()
    by_id = {step.id: step for step in steps}
    for position, step_id in enumerate(dag.dependency_order(steps)):
        step = by_id[step_id]
        step_run = StepRun(
            run_id=run.id,
            step_id=step.id,
            position=position,
            name=step.name,
            tool_id=step.tool_id,
            status=Status.PENDING,
            logs=[],
        )
        source_step = reused.get(step.id)
        if source_step is not None:
            # Completed at once, at the run's creation, with the source's inputs and output as stored; its
            # step_completed event is written when the run starts (transitions), after run_started.
            step_run.status = Status.COMPLETED
            step_run.inputs, step_run.output = source_step.inputs, source_step.output
            step_run.reused_from = source_step.run_id
            step_run.started_at = step_run.completed_at = now
        session.add(step_run)
    session.flush()
    enqueue(Enqueued(run_id=run.id, chat_id=chat.id, chat_seq=run.chat_seq))
    telemetry.run_created(run.id, chat.id, version.workflow_id, session=session)
    raise_signal(Signal.QUEUE_CHANGED, run.id, session=session)
    return run


def rerun(
    run: WorkflowRun, *, from_failed: bool, user_id: uuid.UUID, enqueue: Enqueue, session: Session
) -> WorkflowRun:
    """A new run of `run`'s workflow version with its input, queued in its chat (see `create_run`)."""
    chat = session.get(Chat, run.chat_id)
    assert chat is not None, "a run's chat outlives it"
    data = RunCreate(workflow_id=run.workflow_id, input=run.input)
    return create_run(
        chat, data, user_id=user_id, enqueue=enqueue, session=session, rerun=Rerun(run, from_failed=from_failed)
    )


def _reused_steps(rerun: Rerun, *, session: Session) -> dict[str, StepRun]:
    """Check, under the chat's lock, that the source has ended (and for `from_failed`, that it did not complete);
    return the source's completed steps to reuse, by step id."""
    status = session.scalar(sa.select(WorkflowRun.status).where(WorkflowRun.id == rerun.source.id))
    if status in (Status.PENDING, Status.RUNNING):
        raise Conflict(f"The run has not ended yet ({status}): it can be re-run once it has.")
    if not rerun.from_failed:
        return {}
    if status not in RERUN_FROM_FAILED:
        raise Conflict(f"Only a failed or cancelled run can be re-run from its failed step; this one is {status}.")
    completed = session.scalars(
        sa.select(StepRun).where(StepRun.run_id == rerun.source.id, StepRun.status == Status.COMPLETED)
    )
    return {step.step_id: step for step in completed}


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
