"""Reads runs with their steps in two set-based queries and shapes them as the contract's JSON.

This is the hot path of the seed endpoint: rows go straight to dicts and then to bytes, with no per-object
validation on the way out (the shapes are pinned by `schemas.RunRead` / `RunDetail` and by the tests).
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.pagination import decode_cursor, encode_cursor
from runwire.runs.models import StepRun, WorkflowRun
from runwire.schemas import format_timestamp

_RUN_COLUMNS = (
    WorkflowRun.id,
    WorkflowRun.chat_id,
    WorkflowRun.workflow_id,
    WorkflowRun.workflow_version,
    WorkflowRun.status,
    WorkflowRun.created_at,
    WorkflowRun.started_at,
    WorkflowRun.completed_at,
    WorkflowRun.error,
    WorkflowRun.chat_seq,
)
_STEP_COLUMNS = (
    StepRun.run_id,
    StepRun.step_id,
    StepRun.name,
    StepRun.tool_id,
    StepRun.status,
    StepRun.started_at,
    StepRun.completed_at,
    StepRun.error,
)
_STEP_DETAIL_COLUMNS = (StepRun.inputs, StepRun.output, StepRun.attempts, StepRun.logs)


@dataclass(frozen=True)
class RunFilter:
    statuses: frozenset[str] | None = None
    workflow_id: uuid.UUID | None = None
    descending: bool = False
    limit: int | None = None
    cursor: str | None = None


def _ts(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _run_dict(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "chatId": str(row.chat_id),
        "workflowId": str(row.workflow_id),
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
    step_rows = session.execute(
        sa.select(*columns).where(StepRun.run_id.in_([row.id for row in run_rows])).order_by(StepRun.position)
    ).all()
    steps_by_run: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
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
    rows = list(session.execute(query).all())
    next_cursor = None
    if run_filter.limit is not None and len(rows) > run_filter.limit:
        rows = rows[: run_filter.limit]
        next_cursor = encode_cursor([rows[-1].chat_seq])
    return _with_steps(session, rows, detail=False), next_cursor


def get_run(run_id: uuid.UUID, *, detail: bool, session: Session) -> dict[str, Any]:
    columns = (*_RUN_COLUMNS, WorkflowRun.input) if detail else _RUN_COLUMNS
    row = session.execute(sa.select(*columns).where(WorkflowRun.id == run_id)).one()
    (run,) = _with_steps(session, [row], detail=detail)
    if detail:
        run["input"] = row.input
    return run
