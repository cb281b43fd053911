"""The one door for state: every status change of a run or step, and every event in a run's log, goes through here.

A transition locks the run's row itself (which serialises every writer to the run and its steps), consults the move
table in `states`, writes the new status, its time and the matching events in the caller's transaction, and says what
happened as a `Moved`, so that callers never re-decide it. The rules that tie runs and steps together live here too:
a failed step fails its run, and a run that fails or is cancelled ends its unfinished steps (fail-fast). A run that a
message started leaves its reply (an assistant message) in the transaction that ends it, whichever way it ends, at the
next place of the chat's sequence.

This is the executor's hot path (one or two transitions per step), so it speaks SQL straight to the driver of the
session's connection (`driver.DriverTransaction`), a handful of statements each, rather than loading ORM objects.
"""

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.chats.models import Chat
from runwire.db import utcnow
from runwire.driver import DriverTransaction
from runwire.messages import service as messages_service
from runwire.runs import replies, telemetry
from runwire.runs.models import RunEvent, StepRun, WorkflowRun
from runwire.runs.signals import Signal, raise_signal
from runwire.runs.states import FINAL, RUN_MOVES, STEP_MOVES, Outcome, Status, judge
from runwire.schemas import ErrorInfo

_CHATS = cast(sa.Table, Chat.__table__)
_RUNS = cast(sa.Table, WorkflowRun.__table__)
_STEPS = cast(sa.Table, StepRun.__table__)
_EVENTS = cast(sa.Table, RunEvent.__table__)
_LIVE = (Status.PENDING.value, Status.RUNNING.value)

# Built once: constructing a statement costs about as much as running it on SQLite. Executed with a parameter
# dict, an UPDATE sets exactly the columns the dict names besides the keys of its WHERE.
# Every writer to a chat's runs locks the chat's row first, then the run's (as run creation and chat deletion lock
# the chat): one order, so no two writers can wait on each other. One statement takes both: PostgreSQL locks the
# rows of a join in the order of its FROM list, the chat's first.
_LOCK_RUN_AND_CHAT = (
    sa.select(
        _CHATS.c.id.label("chat_id"),
        _CHATS.c.last_event_seq.label("chat_last_event_seq"),
        _RUNS.c.status,
        _RUNS.c.workflow_id,
        _RUNS.c.last_event_seq,
    )
    .select_from(_CHATS.join(_RUNS, _RUNS.c.chat_id == _CHATS.c.id))
    .where(_RUNS.c.id == sa.bindparam("run_key"))
    .with_for_update()
)
_UPDATE_CHAT_SEQ = sa.update(_CHATS).where(_CHATS.c.id == sa.bindparam("chat_key"))
_STEP_COLUMNS = (_STEPS.c.status, _STEPS.c.tool_id, _STEPS.c.started_at, _STEPS.c.attempts, _STEPS.c.waiting_for)
_READ_STEP = sa.select(*_STEP_COLUMNS).where(
    _STEPS.c.run_id == sa.bindparam("run_key"), _STEPS.c.step_id == sa.bindparam("step_key")
)
_UPDATE_RUN = sa.update(_RUNS).where(_RUNS.c.id == sa.bindparam("run_key"))
_UPDATE_STEP = sa.update(_STEPS).where(
    _STEPS.c.run_id == sa.bindparam("run_key"), _STEPS.c.step_id == sa.bindparam("step_key")
)
_HALT_STEPS = (
    sa.update(_STEPS)
    .where(_STEPS.c.run_id == sa.bindparam("run_key"), sa.or_(*(_STEPS.c.status == status for status in _LIVE)))
    .values(status=Status.CANCELLED.value, completed_at=sa.bindparam("now"), waiting_for=None)
)
_INSERT_EVENTS = sa.insert(_EVENTS)
_LAST_OUTPUT = (
    sa.select(_STEPS.c.output)
    .where(_STEPS.c.run_id == sa.bindparam("run_key"))
    .order_by(_STEPS.c.position.desc())
    .limit(1)
)
_REUSED_STEPS = (
    sa.select(_STEPS.c.step_id, _STEPS.c.output)
    .where(_STEPS.c.run_id == sa.bindparam("run_key"), _STEPS.c.reused_from.is_not(None))
    .order_by(_STEPS.c.position)
)
_RUN_STEPS = (
    sa.select(_STEPS.c.step_id, _STEPS.c.status)
    .where(_STEPS.c.run_id == sa.bindparam("run_key"))
    .order_by(_STEPS.c.position)
)


@functools.cache
def _read_steps(step_count: int) -> sa.Select[Any]:
    """`_READ_STEP` for `step_count` of the run's steps at once (`step_key_0`...): a row for each step found."""
    keys: list[sa.BindParameter[str]] = [sa.bindparam(f"step_key_{index}") for index in range(step_count)]
    return sa.select(_STEPS.c.step_id, *_STEP_COLUMNS).where(
        _STEPS.c.run_id == sa.bindparam("run_key"), _STEPS.c.step_id.in_(keys)
    )


@dataclass(frozen=True)
class Moved:
    """What a requested move came to, and the status of the row it was asked of once the call is done."""

    outcome: Outcome
    status: Status | None

    @property
    def applied(self) -> bool:
        return self.outcome is Outcome.APPLIED


@dataclass
class LockedRun:
    """A run whose row (and its chat's) this transaction has locked, and the writes to its steps and the events it
    adds before `save`."""

    # The transaction, spoken to through its driver: this is the executor's hot path.
    sql: DriverTransaction
    id: uuid.UUID
    status: str
    workflow_id: uuid.UUID
    last_event_seq: int
    chat_id: uuid.UUID
    chat_last_event_seq: int
    now: datetime = field(default_factory=utcnow)
    changes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    # The writes to the run's steps, in order: `save` sends them with the run's, all at once.
    step_writes: list[tuple[sa.ClauseElement, dict[str, Any]]] = field(default_factory=list)
    touched: bool = False
    # Steps read after the lock and not moved since (by id).
    read_steps: dict[str, Any] = field(default_factory=dict)

    def touch(self) -> None:
        """Move the chat's version on for a change to the run's steps that makes no event (a log line, an attempt,
        rendered inputs), in the same transaction: a list or detail kept at the old version is served no more."""
        self.chat_last_event_seq += 1
        self.touched = True

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        self.last_event_seq += 1
        self.chat_last_event_seq += 1
        self.events.append(
            {
                "run_id": self.id,
                "seq": self.last_event_seq,
                "chat_id": self.chat_id,
                "chat_seq": self.chat_last_event_seq,
                "type": event_type,
                "data": data,
                "created_at": self.now,
            }
        )


def lock_run(run_id: uuid.UUID, *, session: Session, steps: Sequence[str] = ()) -> LockedRun | None:
    """The run, locked for this transaction (and read after the lock: a copy read before it may be out of date),
    with the `steps` it is about to move read in one statement, after the lock too."""
    session.flush()
    sql = DriverTransaction(session.connection())
    row = sql.one_or_none(_LOCK_RUN_AND_CHAT, {"run_key": run_id})
    if row is None:
        return None
    run = LockedRun(sql, run_id, row.status, row.workflow_id, row.last_event_seq, row.chat_id, row.chat_last_event_seq)
    if steps:
        keys = {f"step_key_{index}": step_id for index, step_id in enumerate(steps)}
        run.read_steps = {step.step_id: step for step in sql.all(_read_steps(len(steps)), {"run_key": run_id, **keys})}
    return run


def save(run: LockedRun, *, session: Session) -> None:
    """Write the run's step writes, changes and new events (on PostgreSQL in one round trip), and signal the events
    once the transaction commits."""
    with run.sql.pipeline():
        for statement, values in run.step_writes:
            run.sql.execute(statement, values)
        if run.events:
            run.changes["last_event_seq"] = run.last_event_seq
            run.sql.execute_many(_INSERT_EVENTS, run.events)
            raise_signal(Signal.EVENTS, run.id, chat_id=run.chat_id, session=session)
        if run.events or run.touched:
            run.sql.execute(_UPDATE_CHAT_SEQ, {"chat_key": run.chat_id, "last_event_seq": run.chat_last_event_seq})
            run.touched = False
        if run.changes:
            run.sql.execute(_UPDATE_RUN, {"run_key": run.id, **run.changes})
    run.step_writes, run.events, run.changes = [], [], {}
    # ORM copies of this run or its steps loaded earlier in the session are stale now.
    session.expire_all()


def append_event(run_id: uuid.UUID, event_type: str, data: dict[str, Any], *, session: Session) -> bool:
    """Add an event to a live run's log; False (and nothing added) when the run is missing or has ended."""
    run = lock_run(run_id, session=session)
    if run is None or run.status in FINAL:
        return False
    run.emit(event_type, data)
    save(run, session=session)
    return True


def transition_run(
    run_id: uuid.UUID,
    target: Status,
    *,
    error: ErrorInfo | None = None,
    reply: str | None = None,
    session: Session,
) -> Moved:
    """Move a run. `reply` is the rendered reply of a run that completes (rendered before this transaction); without
    it, a completing run started by a message replies with its last step's text."""
    run = lock_run(run_id, session=session)
    if run is None:
        return Moved(Outcome.MISSING, None)
    refused = judge(RUN_MOVES, run.status, target)
    if refused is not None:
        return Moved(refused, Status(run.status))
    _move_run(run, target, error, session=session, reply=reply)
    save(run, session=session)
    return Moved(Outcome.APPLIED, target)


def transition_step(
    run_id: uuid.UUID,
    step_id: str,
    target: Status,
    *,
    output: Any = None,
    error: ErrorInfo | None = None,
    waiting_for: str | None = None,
    inputs: dict[str, Any] | None = None,
    session: Session,
) -> Moved:
    """Move a step; a step cannot start or end but as cancelled once its run has ended. `status` is the step's.
    With `waiting_for`, only a running step that waits for that moves (a decision ends only a step waiting for one);
    MISSING for a step the run does not have. A step that starts counts its first attempt, and stores `inputs` when
    given (inputs that need no rendering)."""
    run = lock_run(run_id, session=session)
    if run is None:
        return Moved(Outcome.MISSING, None)
    moved = _move_locked_step(
        run, step_id, target, output=output, error=error, waiting_for=waiting_for, inputs=inputs, session=session
    )
    if moved.applied:
        save(run, session=session)
    return moved


def complete_step_and_start(
    run_id: uuid.UUID, step_id: str, output: Any, following: Mapping[str, dict[str, Any] | None], *, session: Session
) -> tuple[Moved, list[str]]:
    """Complete a step and, once it has completed, start the `following` steps (by id: the inputs each stores, as
    `transition_step` takes them), under one lock and in one write of the run. Returns the move of the step, and the
    ids of the following steps that started (each moves as `transition_step` would move it)."""
    run = lock_run(run_id, session=session, steps=[step_id, *following])
    if run is None:
        return Moved(Outcome.MISSING, None), []
    moved = _move_locked_step(run, step_id, Status.COMPLETED, output=output, session=session)
    if not moved.applied:
        return moved, []
    started = [
        next_id
        for next_id, inputs in following.items()
        if _move_locked_step(run, next_id, Status.RUNNING, inputs=inputs, session=session).applied
    ]
    save(run, session=session)
    return moved, started


def _move_locked_step(
    run: LockedRun,
    step_id: str,
    target: Status,
    *,
    output: Any = None,
    error: ErrorInfo | None = None,
    waiting_for: str | None = None,
    inputs: dict[str, Any] | None = None,
    session: Session,
) -> Moved:
    """`transition_step` on a run this transaction has locked, leaving its changes to be saved."""
    step = run.read_steps.pop(step_id, None) or run.sql.one_or_none(
        _READ_STEP, {"run_key": run.id, "step_key": step_id}
    )
    if step is None:
        return Moved(Outcome.MISSING, None)
    refused = judge(STEP_MOVES, step.status, target)
    if run.status in FINAL and target is not Status.CANCELLED:
        refused = Outcome.ALREADY_FINAL
    if refused is None and waiting_for is not None and step.waiting_for != waiting_for:
        refused = Outcome.STALE
    if refused is not None:
        return Moved(refused, Status(step.status))
    _move_step(
        run, step_id, step.tool_id, step.attempts, target, output=output, error=error, inputs=inputs, session=session
    )
    telemetry.step_moved(
        run.id,
        step_id,
        step.tool_id,
        target,
        started_at=step.started_at,
        now=run.now,
        attempts=step.attempts,
        session=session,
    )
    if target is Status.FAILED:
        assert error is not None, "a step fails with an error"
        failure = ErrorInfo(code="step_failed", message=f"Step '{step_id}' failed: {error.message}")
        _move_run(run, Status.FAILED, failure, session=session)
    return Moved(Outcome.APPLIED, target)


def _move_run(
    run: LockedRun, target: Status, error: ErrorInfo | None, *, session: Session, reply: str | None = None
) -> None:
    run.status = run.changes["status"] = target.value
    telemetry.run_moved(run.id, target, session=session)
    if target is Status.RUNNING:
        run.changes["started_at"] = run.now
        run.emit("run_started", {"runId": str(run.id), "workflowId": str(run.workflow_id)})
        # A re-run's reused steps were completed when it was created: its log tells so right after it starts.
        for step_id, output in run.sql.all(_REUSED_STEPS, {"run_key": run.id}):
            run.emit("step_completed", {"stepId": step_id, "result": output})
        return
    if target is not Status.COMPLETED:
        _halt_steps(run, session=session)
    raise_signal(Signal.QUEUE_CHANGED, run.id, session=session)
    stored_error = error.model_dump() if error is not None else None
    run.changes.update(completed_at=run.now, error=stored_error)
    if target is Status.FAILED:
        run.emit("run_failed", {"runId": str(run.id), "error": stored_error})
    else:
        run.emit("run_completed", {"runId": str(run.id), "status": target.value})
    _leave_reply(run, target, stored_error, reply, session=session)


def _leave_reply(
    run: LockedRun, target: Status, error: dict[str, Any] | None, reply: str | None, *, session: Session
) -> None:
    """The assistant message of a run a message started, after the run's final event."""
    if messages_service.user_message_seq(run.id, session=session) is None:
        return
    reply_error: dict[str, Any] | None = None
    if target is not Status.COMPLETED:
        reply, reply_error = replies.ended_reply(target, error)
    elif reply is None:
        last = run.sql.one_or_none(_LAST_OUTPUT, {"run_key": run.id})
        last_output = None if last is None else last.output
        reply = replies.default_reply(last_output)
    run.chat_last_event_seq += 1
    messages_service.insert_reply(
        chat_id=run.chat_id,
        chat_seq=run.chat_last_event_seq,
        run_id=run.id,
        content=reply,
        error=reply_error,
        created_at=run.now,
        session=session,
    )


def _halt_steps(run: LockedRun, *, session: Session) -> None:
    """Cancel the run's unfinished steps (never-started ones keep no start time) with the run's `save`, and have
    their tool calls stopped once this commits."""
    run.step_writes.append((_HALT_STEPS, {"run_key": run.id, "now": run.now}))
    raise_signal(Signal.HALTED, run.id, session=session)


def _move_step(
    run: LockedRun,
    step_id: str,
    tool_id: str,
    attempts: int,
    target: Status,
    *,
    output: Any,
    error: ErrorInfo | None,
    inputs: dict[str, Any] | None,
    session: Session,
) -> None:
    """The move of a step that has made `attempts` attempts so far, and its event, written with the run's `save`."""
    values: dict[str, Any] = {"status": target.value}
    if target is Status.RUNNING:
        values["started_at"] = run.now
        values["attempts"] = attempts + 1
        if inputs is not None:
            values["inputs"] = inputs
        run.emit("step_started", {"stepId": step_id, "toolId": tool_id})
    else:
        values["completed_at"] = run.now
        values["waiting_for"] = None
    if target is Status.COMPLETED:
        values["output"] = output
        run.emit("step_completed", {"stepId": step_id, "result": output})
    elif target is Status.FAILED:
        assert error is not None
        values["error"] = error.model_dump()
        run.emit("step_failed", {"stepId": step_id, "error": values["error"]})
    run.step_writes.append((_UPDATE_STEP, {"run_key": run.id, "step_key": step_id, **values}))


def run_steps(run_id: uuid.UUID, *, session: Session) -> list[tuple[str, str]]:
    """The run's steps as committed now, in dependency order: (step id, status)."""
    return [(row.step_id, row.status) for row in session.connection().execute(_RUN_STEPS, {"run_key": run_id})]
