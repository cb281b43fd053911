"""Rows made straight through the services, for tests that need a database but no app, HTTP or executor."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from runwire import migrate
from runwire.auth.models import User
from runwire.chats import service as chats_service
from runwire.chats.models import Chat
from runwire.chats.schemas import ChatCreate
from runwire.db import Database, utcnow
from runwire.runs import service as runs_service
from runwire.runs.models import WorkflowRun
from runwire.runs.schemas import RunCreate
from runwire.workflows import service as workflows_service
from runwire.workflows.schemas import StepDef, WorkflowCreate


@contextmanager
def migrated_sqlite(directory: Path) -> Iterator[Database]:
    """A Database on a fresh SQLite file at the newest schema."""
    database = Database(f"sqlite:///{directory / 'runwire.db'}")
    migrate.upgrade(database.engine)
    try:
        yield database
    finally:
        database.dispose()


def make_user(session: Session, email: str = "ada@example.com") -> User:
    user = User(email=email, name="Ada", password_hash="not a real hash", created_at=utcnow())
    session.add(user)
    session.flush()
    return user


def make_chat(session: Session, user: User) -> Chat:
    return chats_service.create_chat(ChatCreate(title="a chat"), user_id=user.id, session=session)


def make_run(session: Session, user: User, chat: Chat, steps: list[dict[str, Any]]) -> WorkflowRun:
    """A pending run of a new workflow with these steps (queued nowhere)."""
    definition = WorkflowCreate(name="wf", steps=[StepDef.model_validate(step) for step in steps])
    workflow, _ = workflows_service.create_workflow(definition, user_id=user.id, session=session)
    data = RunCreate(workflow_id=workflow.id)
    return runs_service.create_run(chat, data, user_id=user.id, enqueue=lambda _: None, session=session)


def delay_steps(*step_ids: str, chained: bool = True) -> list[dict[str, Any]]:
    """Delay steps of 0 s; each depends on the one before it when `chained`."""
    return [
        {
            "id": step_id,
            "toolId": "delay",
            "inputs": {"seconds": 0},
            "dependsOn": [step_ids[i - 1]] if chained and i else [],
        }
        for i, step_id in enumerate(step_ids)
    ]


def new_id() -> uuid.UUID:
    return uuid.uuid4()
