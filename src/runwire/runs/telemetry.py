"""What a run's life leaves in the log and the metrics: its creation, start and end, and each step's start and end.

Each is recorded once its transaction commits (never for one that rolls back or is retried), on the thread that
commits, so that the line carries the log context of the request or step that made the change (`logs.log_context`).
A line names ids, statuses and tool ids only; never inputs, outputs or anything else a user wrote.
"""

import logging
import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from runwire import metrics
from runwire.db import call_after_commit
from runwire.runs.states import FINAL, Status
from runwire.tools import registry

log = logging.getLogger("runwire.runs")


def run_created(run_id: uuid.UUID, chat_id: uuid.UUID, workflow_id: uuid.UUID, *, session: Session) -> None:
    ids = {"run_id": str(run_id), "chat_id": str(chat_id), "workflow_id": str(workflow_id)}

    def record() -> None:
        metrics.RUNS_CREATED.inc()
        log.info("run created", extra=ids)

    call_after_commit(session, ("runwire.telemetry.run", run_id, Status.PENDING), record)


def run_moved(run_id: uuid.UUID, target: Status, *, session: Session) -> None:
    if target is Status.RUNNING:

        def record() -> None:
            metrics.RUNS_STARTED.inc()
            log.info("run started", extra={"run_id": str(run_id)})

    elif target in FINAL:

        def record() -> None:
            metrics.RUNS_ENDED.labels(target.value).inc()
            log.info("run ended", extra={"run_id": str(run_id), "status": target.value})

    else:
        return
    call_after_commit(session, ("runwire.telemetry.run", run_id, target), record)


def step_moved(
    run_id: uuid.UUID,
    step_id: str,
    tool_id: str,
    target: Status,
    *,
    started_at: datetime | None,
    now: datetime,
    attempts: int,
    session: Session,
) -> None:
    fields: dict[str, object] = {"run_id": str(run_id), "step_id": step_id, "tool_id": tool_id}
    if target is Status.RUNNING:

        def record() -> None:
            log.info("step started", extra=fields)

    else:
        seconds = (now - started_at).total_seconds() if started_at is not None else 0.0
        known = tool_id if registry.get_tool(tool_id) is not None else metrics.UNKNOWN_TOOL

        def record() -> None:
            if started_at is not None:
                metrics.observe_step(known, target.value, seconds)
            log.info(
                "step ended",
                extra={**fields, "status": target.value, "attempt": attempts, "duration_ms": round(seconds * 1000)},
            )

    call_after_commit(session, ("runwire.telemetry.step", run_id, step_id), record)
