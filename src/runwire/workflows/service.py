"""Workflows and their immutable versions: the steps, the run timeout and the reply template a run is pinned to."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.db import utcnow
from runwire.errors import Forbidden, Invalid
from runwire.ownership import lock_owned, require_owned
from runwire.pagination import decode_newest_first, encode_newest_first
from runwire.workflows.models import Workflow, WorkflowVersion
from runwire.workflows.schemas import StepDef, WorkflowCreate, WorkflowRead, WorkflowUpdate
from runwire.workflows.validation import reply_problems, step_problems

# The fields of a workflow that belong to its versions: changing one makes a new version.
VERSIONED = frozenset({"steps", "timeout_seconds", "reply"})


@dataclass(frozen=True)
class Definition:
    """What a version pins, checked."""

    steps: list[dict[str, Any]]
    timeout_seconds: int | None
    reply: str | None


def _checked(steps: list[StepDef], timeout_seconds: int | None, reply: str | None) -> Definition:
    problems = step_problems(steps) + reply_problems(reply, steps)
    if problems:
        raise Invalid(f"The workflow is invalid ({len(problems)} problems).", details=problems)
    dumped = [step.model_dump(mode="json", by_alias=True, exclude_none=True) for step in steps]
    return Definition(dumped, timeout_seconds, reply)


def _add_version(workflow: Workflow, definition: Definition, now: datetime, session: Session) -> WorkflowVersion:
    version = WorkflowVersion(
        workflow_id=workflow.id,
        version=workflow.current_version,
        steps=definition.steps,
        timeout_seconds=definition.timeout_seconds,
        reply=definition.reply,
        created_at=now,
    )
    session.add(version)
    return version


def create_workflow(data: WorkflowCreate, *, user_id: uuid.UUID, session: Session) -> tuple[Workflow, WorkflowVersion]:
    if data.user_id is not None and data.user_id != user_id:
        raise Forbidden("You cannot create a workflow for another user.")
    definition = _checked(data.steps, data.timeout_seconds, data.reply)
    now = utcnow()
    workflow = Workflow(
        user_id=user_id,
        name=data.name,
        description=data.description,
        current_version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(workflow)
    session.flush()
    version = _add_version(workflow, definition, now, session)
    session.flush()
    return workflow, version


def get_owned_workflow(workflow_id: uuid.UUID, *, user_id: uuid.UUID, session: Session) -> Workflow:
    return require_owned(session.get(Workflow, workflow_id), user_id=user_id, noun="workflow")


def current_version(workflow: Workflow, *, session: Session) -> WorkflowVersion:
    return get_version(workflow.id, workflow.current_version, session=session)


def get_version(workflow_id: uuid.UUID, number: int, *, session: Session) -> WorkflowVersion:
    """A version of a workflow, deleted or not: versions are never deleted (runs are pinned to them)."""
    version = session.get(WorkflowVersion, (workflow_id, number))
    assert version is not None, "a workflow's versions are never deleted"
    return version


def current_steps(workflow: Workflow, *, session: Session) -> list[dict[str, Any]]:
    return current_version(workflow, session=session).steps


def update_workflow(workflow: Workflow, data: WorkflowUpdate, *, session: Session) -> WorkflowVersion:
    given = data.model_fields_set
    if not given:
        raise Invalid(
            "Give at least one of name, description, steps, timeoutSeconds, reply.",
            details=[("body", "no field to change")],
        )
    for field, alias in (("name", "name"), ("steps", "steps")):
        if field in given and getattr(data, field) is None:
            raise Invalid(f"{alias} cannot be null.", details=[(alias, "cannot be null")])
    lock_owned(workflow, noun="workflow", session=session)
    if "name" in given and data.name is not None:
        workflow.name = data.name
    if "description" in given:
        workflow.description = data.description
    now = utcnow()
    workflow.updated_at = now
    version = current_version(workflow, session=session)
    if given & VERSIONED:
        steps = data.steps if data.steps is not None else [StepDef.model_validate(s) for s in version.steps]
        definition = _checked(
            steps,
            data.timeout_seconds if "timeout_seconds" in given else version.timeout_seconds,
            data.reply if "reply" in given else version.reply,
        )
        workflow.current_version += 1
        version = _add_version(workflow, definition, now, session)
    session.flush()
    return version


def delete_workflow(workflow: Workflow, *, session: Session) -> None:
    lock_owned(workflow, noun="workflow", session=session)
    workflow.deleted_at = workflow.updated_at = utcnow()


def list_workflows(
    user_id: uuid.UUID, *, limit: int, cursor: str | None, session: Session
) -> tuple[list[WorkflowRead], str | None]:
    """The user's live workflows, newest first, each with its current version, in one query."""
    query = (
        sa.select(Workflow, WorkflowVersion)
        .join(
            WorkflowVersion,
            sa.and_(
                WorkflowVersion.workflow_id == Workflow.id,
                WorkflowVersion.version == Workflow.current_version,
            ),
        )
        .where(Workflow.user_id == user_id, Workflow.deleted_at.is_(None))
    )
    if cursor is not None:
        created_at, workflow_id = decode_newest_first(cursor)
        query = query.where(sa.tuple_(Workflow.created_at, Workflow.id) < sa.tuple_(created_at, workflow_id))
    rows = session.execute(query.order_by(Workflow.created_at.desc(), Workflow.id.desc()).limit(limit + 1)).all()
    page = [to_read(workflow, version) for workflow, version in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    last = rows[limit - 1][0]
    return page, encode_newest_first(last.created_at, last.id)


def to_read(workflow: Workflow, version: WorkflowVersion) -> WorkflowRead:
    return WorkflowRead(
        id=workflow.id,
        user_id=workflow.user_id,
        name=workflow.name,
        description=workflow.description,
        version=workflow.current_version,
        steps=version.steps,
        timeout_seconds=version.timeout_seconds,
        reply=version.reply,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
    )
