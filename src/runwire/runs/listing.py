"""Reads runs with their steps in two set-based queries and shapes them as the contract's JSON.

This is the hot path of the seed endpoint: rows go straight to dicts and then to bytes, with no per-object
validation on the way out (the shapes are pinned by `schemas.RunRead` / `RunDetail` and by the tests).
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.pagination import decode_cursor, encode_cursor
from runwire.runs.models import StepRun, WorkflowRun
from runwire.schemas import format_timestamp


def _raw(column: Any, name: str) -> sa.Label[Any]:
    """The column as the driver returns it, skipping SQLAlchemy's result processing: on SQLite a UUID arrives as its
    32 stored hex digits and a timestamp as its stored text, which `_uuid` and `_ts` shape with string slicing
    (parsing them into objects only to format them again was most of a list's cost). The SQL is unchanged."""
    return sa.type_coerce(column, sa.String).label(name)


_RUN_COLUMNS = (
    _raw(WorkflowRun.id, "id"),
    _raw(WorkflowRun.chat_id, "chat_id"),
    _raw(WorkflowRun.workflow_id, "workflow_id"),
    WorkflowRun.workflow_version,
    WorkflowRun.status,
    _raw(WorkflowRun.created_at, "created_at"),
    _raw(WorkflowRun.started_at, "started_at"),
    _raw(WorkflowRun.completed_at, "completed_at"),
    WorkflowRun.error,
    WorkflowRun.chat_seq,
)
_STEP_COLUMNS = (
    _raw(StepRun.run_id, "run_id"),
    StepRun.step_id,
    StepRun.name,
    StepRun.tool_id,
    StepRun.status,
    _raw(StepRun.started_at, "started_at"),
    _raw(StepRun.completed_at, "completed_at"),
    StepRun.error,
)
_STEP_DETAIL_COLUMNS = (StepRun.inputs, StepRun.output, StepRun.attempts, StepRun.logs)
_RAW_RUN_ID = sa.type_coerce(StepRun.run_id, sa.String)
_STORED_TIMESTAMP_LENGTH = len("2024-02-04 12:00:00.000000")  # SQLAlchemy's SQLite storage format


@dataclass(frozen=True)
class RunFilter:
    statuses: frozenset[str] | None = None
    workflow_id: uuid.UUID | None = None
    descending: bool = False
    limit: int | None = None
    cursor: str | None = None


def _ts(value: str | datetime | None) -> str | None:
    """A stored timestamp as the contract's `2024-02-04T12:00:00.000Z` (milliseconds floored, as `format_timestamp`)."""
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) == _STORED_TIMESTAMP_LENGTH and value[10] == " ":
            return f"{value[:10]}T{value[11:23]}Z"
        value = datetime.fromisoformat(value)
    return format_timestamp(value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC))


def _uuid(value: str | uuid.UUID) -> str:
    """A stored UUID in canonical form: SQLite keeps 32 hex digits, PostgreSQL's driver gives a `uuid.UUID`."""
    if isinstance(value, str) and len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value)


def _run_dict(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": _uuid(row.id),
        "chatId": _uuid(row.chat_id),
        "workflowId": _uuid(row.workflow_id),
        "status": row.status,
        "startedAt": _ts(row.started_at),
        "completedAt": _ts(row.completed_at),
        "steps": [],
        "createdAt": _ts(row.created_at),
        "workflowVersion": row.workflow_version,
        "error": row.error,
    }


def _step_dict(row: sa.Row[Any], detail: bool) -> dict[str, Any]:
    step = {
        "id": row.step_id,
        "status": row.status,
        "startedAt": _ts(row.started_at),
        "completedAt": _ts(row.completed_at),
        "name": row.name,
        "toolId": row.tool_id,
        "error": row.error,
    }
    if detail:
        step.update(inputs=row.inputs, output=row.output, attempts=row.attempts, logs=row.logs)
    return step


def _with_steps(session: Session, run_rows: list[sa.Row[Any]], *, detail: bool) -> list[dict[str, Any]]:
    runs = [_run_dict(row) for row in run_rows]
    if not runs:
        return runs
    columns = _STEP_COLUMNS + _STEP_DETAIL_COLUMNS if detail else _STEP_COLUMNS
    # Core, not ORM, execution: the rows are plain tuples either way, and the ORM's result machinery costs more.
    step_rows = (
        session.connection()
        .execute(sa.select(*columns).where(_RAW_RUN_ID.in_([row.id for row in run_rows])).order_by(StepRun.position))
        .all()
    )
    steps_by_run: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for step_row in step_rows:
        steps_by_run[step_row.run_id].append(_step_dict(step_row, detail))
    for run, row in zip(runs, run_rows, strict=True):
        run["steps"] = steps_by_run[row.id]
    return runs


def list_chat_runs(
    chat_id: uuid.UUID, run_filter: RunFilter, *, session: Session
) -> tuple[list[dict[str, Any]], str | None]:
    """The chat's runs in request order (or its reverse), filtered and paged; the cursor is the last run's place."""
    query = sa.select(*_RUN_COLUMNS).where(WorkflowRun.chat_id == chat_id)
    if run_filter.statuses is not None:
        query = query.where(WorkflowRun.status.in_(sorted(run_filter.statuses)))
    if run_filter.workflow_id is not None:
        query = query.where(WorkflowRun.workflow_id == run_filter.workflow_id)
    if run_filter.cursor is not None:
        (after,) = decode_cursor(run_filter.cursor, (int,))
        query = query.where(WorkflowRun.chat_seq < after if run_filter.descending else WorkflowRun.chat_seq > after)
    query = query.order_by(WorkflowRun.chat_seq.desc() if run_filter.descending else WorkflowRun.chat_seq)
    if run_filter.limit is not None:
        query = query.limit(run_filter.limit + 1)
    rows = list(session.connection().execute(query).all())
    next_cursor = None
    if run_filter.limit is not None and len(rows) > run_filter.limit:
        rows = rows[: run_filter.limit]
        next_cursor = encode_cursor([rows[-1].chat_seq])
    return _with_steps(session, rows, detail=False), next_cursor


def get_run(run_id: uuid.UUID, *, detail: bool, session: Session) -> dict[str, Any]:
    columns = (*_RUN_COLUMNS, WorkflowRun.input) if detail else _RUN_COLUMNS
    row = session.connection().execute(sa.select(*columns).where(WorkflowRun.id == run_id)).one()
    (run,) = _with_steps(session, [row], detail=detail)
    if detail:
        run["input"] = row.input
    return run
