"""Workflows and their immutable versions."""

import uuid
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
from runwire.workflows.validation import step_problems


def _checked_steps(steps: list[StepDef]) -> list[dict[str, Any]]:
    problems = step_problems(steps)
    if problems:
        raise Invalid(f"The workflow's steps are invalid ({len(problems)} problems).", details=problems)
    return [step.model_dump(mode="json", by_alias=True, exclude_none=True) for step in steps]


def _add_version(workflow: Workflow, steps: list[dict[str, Any]], now: datetime, session: Session) -> None:
    session.add(WorkflowVersion(workflow_id=workflow.id, version=workflow.current_version, steps=steps, created_at=now))


def create_workflow(
    data: WorkflowCreate, *, user_id: uuid.UUID, session: Session
) -> tuple[Workflow, list[dict[str, Any]]]:
    if data.user_id is not None and data.user_id != user_id:
        raise Forbidden("You cannot create a workflow for another user.")
    steps = _checked_steps(data.steps)
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
    _add_version(workflow, steps, now, session)
    session.flush()
    return workflow, steps


def get_owned_workflow(workflow_id: uuid.UUID, *, user_id: uuid.UUID, session: Session) -> Workflow:
    return require_owned(session.get(Workflow, workflow_id), user_id=user_id, noun="workflow")


def current_steps(workflow: Workflow, *, session: Session) -> list[dict[str, Any]]:
    version = session.get(WorkflowVersion, (workflow.id, workflow.current_version))
    assert version is not None, "every workflow has its current version"
    return version.steps


def update_workflow(workflow: Workflow, data: WorkflowUpdate, *, session: Session) -> list[dict[str, Any]]:
    if not data.model_fields_set:
        raise Invalid("Give at least one of name, description, steps.", details=[("body", "no field to change")])
    lock_owned(workflow, noun="workflow", session=session)
    if "name" in data.model_fields_set:
        if data.name is None:
            raise Invalid("name cannot be null.", details=[("name", "cannot be null")])
        workflow.name = data.name
    if "description" in data.model_fields_set:
        workflow.description = data.description
    now = utcnow()
    workflow.updated_at = now
    if "steps" in data.model_fields_set:
        if data.steps is None:
            raise Invalid("steps cannot be null.", details=[("steps", "cannot be null")])
        steps = _checked_steps(data.steps)
        workflow.current_version += 1
        _add_version(workflow, steps, now, session)
        session.flush()
        return steps
    session.flush()
    return current_steps(workflow, session=session)


def delete_workflow(workflow: Workflow, *, session: Session) -> None:
    lock_owned(workflow, noun="workflow", session=session)
    workflow.deleted_at = workflow.updated_at = utcnow()


def list_workflows(
    user_id: uuid.UUID, *, limit: int, cursor: str | None, session: Session
) -> tuple[list[WorkflowRead], str | None]:
    """The user's live workflows, newest first, each with its current steps, in two queries."""
    query = (
        sa.select(Workflow, WorkflowVersion.steps)
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
    page = [to_read(workflow, steps) for workflow, steps in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    last = rows[limit - 1][0]
    return page, encode_newest_first(last.created_at, last.id)


def to_read(workflow: Workflow, steps: list[dict[str, Any]]) -> WorkflowRead:
    return WorkflowRead(
        id=workflow.id,
        user_id=workflow.user_id,
        name=workflow.name,
        description=workflow.description,
        version=workflow.current_version,
        steps=steps,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
    )
