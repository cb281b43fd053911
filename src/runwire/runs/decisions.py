"""Decisions on approval steps, and how they reach the waiting run.

An approval step waits, running, for one decision. Its wait is a small DBOS workflow of its own (the step's
*waiter*, queued by the run's workflow under an id derived from the run and the step), which receives the decision as
a DBOS message and publishes it as a DBOS event that the step waits for. Both are durable: a decision posted while
no executor runs, or before a crash, is still there after the restart, and recovery hands a dead executor's waiters to
live executors as it does its runs.

A decision is recorded exactly once. `decide` ends the step in the transaction that checks it is waiting, with the
run's row locked, so of two decisions posted at once the second finds the step ended. The message is sent inside that
transaction, before it commits: if the commit is lost, the step receives the decision and records it itself (the
step's result is the same either way), and a decision is never committed without its message.
"""

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from runwire.db import utcnow
from runwire.errors import Conflict, NotFound
from runwire.runs import transitions
from runwire.runs.schemas import DecisionCreate
from runwire.runs.states import Outcome, Status
from runwire.schemas import ErrorInfo, format_timestamp

# What a step waits for when it waits for a decision (`step.waitingFor`).
DECISION = "decision"
# The DBOS message topic decisions travel on to a waiter, and the DBOS event under which it publishes the one it took.
TOPIC = "decision"
EVENT = "decision"
# A message that ends a waiter whose step ended without a decision (timed out, or its run stopped).
CLOSED: dict[str, Any] = {"closed": True}

# Sends a message to a step's waiter: (waiter's workflow id, message). Both kinds of executor provide it.
SendToWaiter = Callable[[str, dict[str, Any]], None]


_WAITER_MARK = ".decision."


def waiter_id(run_id: uuid.UUID | str, step_id: str) -> str:
    """The DBOS workflow id of the step's waiter."""
    return f"{run_id}{_WAITER_MARK}{step_id}"


def is_waiter_id(workflow_id: str) -> bool:
    return _WAITER_MARK in workflow_id


def is_decision(message: object) -> bool:
    return isinstance(message, dict) and isinstance(message.get("approved"), bool)


def step_result(decision: dict[str, Any]) -> tuple[dict[str, Any] | None, ErrorInfo | None]:
    """What a decision makes of its step: an approval's output, or a rejection's error."""
    if decision["approved"]:
        return {"approved": True, "comment": decision["comment"], "decidedAt": decision["decidedAt"]}, None
    reason = f": {decision['comment']}" if decision["comment"] else "."
    return None, ErrorInfo(code="rejected", message=f"The step was rejected{reason}")


def decide(run_id: uuid.UUID, step_id: str, data: DecisionCreate, *, send: SendToWaiter, session: Session) -> None:
    """Record a decision on a waiting step and send it to the step's waiter."""
    decision = {"approved": data.approved, "comment": data.comment, "decidedAt": format_timestamp(utcnow())}
    output, error = step_result(decision)
    target = Status.COMPLETED if error is None else Status.FAILED
    moved = transitions.transition_step(
        run_id, step_id, target, output=output, error=error, waiting_for=DECISION, session=session
    )
    if moved.outcome is Outcome.MISSING:
        raise NotFound("Step not found.")
    if not moved.applied:
        raise Conflict(f"The step is not waiting for a decision (it is {moved.status}).")
    send(waiter_id(run_id, step_id), decision)
