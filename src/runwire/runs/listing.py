"""Reads runs with their steps and shapes them as the contract's JSON.

The chat's list is the seed endpoint's hot path: one statement reads the page of runs, their steps and the chat's
version together (so the body and the version it is cached under come from one snapshot), and rows go straight to
dicts, with no per-object validation on the way out (the shapes are pinned by `schemas.RunRead` / `RunDetail` and
by the tests).
"""

import functools
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.chats.models import Chat
from runwire.errors import Invalid
from runwire.pagination import encode_newest_first, encode_sequence
from runwire.runs.models import StepRun, WorkflowRun
from runwire.runs.states import Status
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
    _raw(WorkflowRun.rerun_of, "rerun_of"),
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
    _raw(StepRun.reused_from, "reused_from"),
    StepRun.waiting_for,
)
# Where chat_seq stands in a row of the list's statement: after the version and the other run columns.
_CHAT_SEQ = len(_RUN_COLUMNS)
_STEP_DETAIL_COLUMNS = (StepRun.inputs, StepRun.output, StepRun.attempts, StepRun.logs)
_RUN_IDS: sa.BindParameter[Any] = sa.bindparam("run_ids", expanding=True)
# Built once (constructing the statement on every list cost as much as running it), keyed by (detail, text keys):
# run ids read as stored are text on SQLite, matched against the column as text; on PostgreSQL they are UUIDs.
_STEPS_OF_RUNS = {
    (detail, text_keys): sa.select(*columns)
    .where((sa.type_coerce(StepRun.run_id, sa.String) if text_keys else StepRun.run_id).in_(_RUN_IDS))
    .order_by(StepRun.position)
    for detail, columns in ((False, _STEP_COLUMNS), (True, _STEP_COLUMNS + _STEP_DETAIL_COLUMNS))
    for text_keys in (False, True)
}
_STORED_TIMESTAMP_LENGTH = len("2024-02-04 12:00:00.000000")  # SQLAlchemy's SQLite storage format


@dataclass(frozen=True)
class RunFilter:
    statuses: frozenset[str] | None = None
    workflow_id: uuid.UUID | None = None
    descending: bool = False
    limit: int | None = None
    # The place of the last run of the page before, from its cursor.
    after: int | None = None

    @functools.cached_property
    def key(self) -> str:
        """What tells this filter's pages apart from another's, as a short text."""
        statuses = ",".join(sorted(self.statuses)) if self.statuses is not None else "*"
        return f"{statuses}|{self.workflow_id or '*'}|{'d' if self.descending else 'a'}|{self.limit}|{self.after}"


@dataclass(frozen=True)
class Page:
    runs: list[dict[str, Any]]
    next_cursor: str | None
    # The chat's version when the page was read.
    version: int


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


def _run_dict(row: Sequence[Any]) -> dict[str, Any]:
    # Unpacked by position (the order of _RUN_COLUMNS): cheaper than a Row's attribute lookups, row after row.
    run_id, chat_id, workflow_id, version, status, created_at, started_at, completed_at, error, rerun_of = row[:10]
    return {
        "id": _uuid(run_id),
        "chatId": _uuid(chat_id),
        "workflowId": _uuid(workflow_id),
        "status": status,
        "startedAt": _ts(started_at),
        "completedAt": _ts(completed_at),
        "steps": [],
        "createdAt": _ts(created_at),
        "workflowVersion": version,
        "error": error,
        "rerunOf": _uuid(rerun_of) if rerun_of is not None else None,
    }


def _step_dict(row: Sequence[Any], detail: bool) -> dict[str, Any]:
    _run_id, step_id, name, tool_id, status, started_at, completed_at, error, reused_from, waiting_for = row[:10]
    step = {
        "id": step_id,
        "status": status,
        "startedAt": _ts(started_at),
        "completedAt": _ts(completed_at),
        "name": name,
        "toolId": tool_id,
        "error": error,
        "reusedFrom": _uuid(reused_from) if reused_from is not None else None,
        "waitingFor": waiting_for,
    }
    if detail:
        inputs, output, attempts, logs = row[10:14]  # _STEP_DETAIL_COLUMNS
        step.update(inputs=inputs, output=output, attempts=attempts, logs=logs)
    return step


def _with_steps(session: Session, run_rows: list[sa.Row[Any]], *, detail: bool) -> list[dict[str, Any]]:
    if not run_rows:
        return []
    # Core, not ORM, execution: the rows are plain tuples either way, and the ORM's result machinery costs more.
    run_ids = [row[0] for row in run_rows]
    query = _STEPS_OF_RUNS[detail, isinstance(run_ids[0], str)]
    step_rows = session.connection().execute(query, {"run_ids": run_ids}).all()
    steps_by_run: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for step_row in step_rows:
        steps_by_run[step_row[0]].append(_step_dict(step_row, detail))
    runs = []
    for row in run_rows:
        run = _run_dict(row)
        run["steps"] = steps_by_run[row[0]]
        runs.append(run)
    return runs


def list_chat_runs(chat_id: uuid.UUID, run_filter: RunFilter, *, connection: sa.Connection) -> Page:
    """The chat's runs in request order (or its reverse), filtered and paged, with their steps and the chat's
    version, in one statement; the cursor is the last run's place."""
    runs = sa.select(*_RUN_COLUMNS).where(WorkflowRun.chat_id == chat_id)
    if run_filter.statuses is not None:
        runs = runs.where(WorkflowRun.status.in_(sorted(run_filter.statuses)))
    if run_filter.workflow_id is not None:
        runs = runs.where(WorkflowRun.workflow_id == run_filter.workflow_id)
    if run_filter.after is not None:
        after = run_filter.after
        runs = runs.where(WorkflowRun.chat_seq < after if run_filter.descending else WorkflowRun.chat_seq > after)
    if run_filter.limit is not None:
        runs = runs.order_by(WorkflowRun.chat_seq.desc() if run_filter.descending else WorkflowRun.chat_seq)
        runs = runs.limit(run_filter.limit + 1)
    page = runs.cte("page")
    # No ORDER BY here: the runs come from the (chat_id, chat_seq) index and the steps from (run_id, step_id), and
    # the few rows of a page are put in order below, rather than sorted by the database in a temporary tree.
    query = (
        sa.select(Chat.last_event_seq, *page.c, *_STEP_COLUMNS[1:], StepRun.position)
        .select_from(Chat)
        .outerjoin(page, sa.true())
        .outerjoin(StepRun, StepRun.run_id == page.c.id)
        .where(Chat.id == chat_id)
    )
    rows = connection.execute(query).all()
    version: int = rows[0][0] if rows else 0
    # Row by position: the version, the run's columns (_RUN_COLUMNS, chat_seq last), the step's (no run id), and
    # the step's position.
    by_run: dict[Any, tuple[dict[str, Any], int, list[tuple[int, dict[str, Any]]]]] = {}
    for row in rows:
        run_id = row[1]
        if run_id is None:
            continue
        entry = by_run.get(run_id)
        if entry is None:
            entry = by_run[run_id] = (_run_dict(row[1:]), row[_CHAT_SEQ], [])
        if row[_CHAT_SEQ + 1] is not None:
            entry[2].append((row[-1], _step_dict((run_id, *row[_CHAT_SEQ + 1 : -1]), detail=False)))
    listed = sorted(by_run.values(), key=lambda entry: entry[1], reverse=run_filter.descending)
    for run, _, steps in listed:
        run["steps"] = [step for _, step in sorted(steps, key=lambda item: item[0])]
    next_cursor = None
    if run_filter.limit is not None and len(listed) > run_filter.limit:
        listed = listed[: run_filter.limit]
        next_cursor = encode_sequence(listed[-1][1])
    return Page([run for run, _, _ in listed], next_cursor, version)


def get_run(run_id: uuid.UUID, *, detail: bool, session: Session) -> dict[str, Any]:
    columns = (*_RUN_COLUMNS, WorkflowRun.input) if detail else _RUN_COLUMNS
    row = session.connection().execute(sa.select(*columns).where(WorkflowRun.id == run_id)).one()
    (run,) = _with_steps(session, [row], detail=detail)
    if detail:
        run["input"] = row.input
    return run


def parse_statuses(value: str | None) -> frozenset[str] | None:
    """The `status` query parameter: a comma list of statuses, or None without it; anything else is a 400."""
    if value is None:
        return None
    wanted = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(wanted - set(Status))
    if unknown or not wanted:
        allowed = ", ".join(Status)
        details = [("status", f"unknown: {', '.join(unknown)}")]
        raise Invalid(f"status takes a comma list of: {allowed}.", details=details)
    return wanted


@dataclass(frozen=True)
class UserRunFilter:
    statuses: frozenset[str] | None
    workflow_id: uuid.UUID | None
    chat_id: uuid.UUID | None
    created_after: datetime | None
    created_before: datetime | None
    descending: bool
    limit: int
    # (createdAt, id) of the last run of the page before, from its cursor.
    after: tuple[datetime, uuid.UUID] | None


def list_user_runs(
    user_id: uuid.UUID, run_filter: UserRunFilter, *, session: Session
) -> tuple[list[dict[str, Any]], str | None]:
    """The user's runs across their chats (deleted chats' runs are gone), newest first unless ascending, filtered
    and paged by (createdAt, id).

    The runs are read in page order from the (created_at, id) index (with a chatId, from (chat_id, created_at, id)),
    each kept if its chat, found by primary key, is the user's and not deleted, until the page is full: no sort, and
    no read of the user's other runs. The chat is an EXISTS rather than a join so that SQLite, which evaluates it run
    by run, plans this walk whether or not it has statistics; PostgreSQL turns it into a join and may read a user
    with few chats through them instead."""
    key = sa.tuple_(WorkflowRun.created_at, WorkflowRun.id)
    users_chat = sa.exists().where(Chat.id == WorkflowRun.chat_id, Chat.user_id == user_id, Chat.deleted_at.is_(None))
    query = sa.select(*_RUN_COLUMNS, WorkflowRun.created_at, WorkflowRun.id).where(users_chat)
    if run_filter.statuses is not None:
        query = query.where(WorkflowRun.status.in_(sorted(run_filter.statuses)))
    if run_filter.workflow_id is not None:
        query = query.where(WorkflowRun.workflow_id == run_filter.workflow_id)
    if run_filter.chat_id is not None:
        query = query.where(WorkflowRun.chat_id == run_filter.chat_id)
    if run_filter.created_after is not None:
        query = query.where(WorkflowRun.created_at > run_filter.created_after)
    if run_filter.created_before is not None:
        query = query.where(WorkflowRun.created_at < run_filter.created_before)
    if run_filter.after is not None:
        after = sa.tuple_(*run_filter.after)
        query = query.where(key < after if run_filter.descending else key > after)
    if run_filter.descending:
        query = query.order_by(WorkflowRun.created_at.desc(), WorkflowRun.id.desc())
    else:
        query = query.order_by(WorkflowRun.created_at, WorkflowRun.id)
    rows = session.connection().execute(query.limit(run_filter.limit + 1)).all()
    page = list(rows[: run_filter.limit])
    next_cursor = None
    if len(rows) > run_filter.limit:
        created_at, run_id = page[-1][-2:]
        next_cursor = encode_newest_first(created_at, run_id)
    return _with_steps(session, page, detail=False), next_cursor
