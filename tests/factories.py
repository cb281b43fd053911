"""Databases, settings and rows for tests: fresh PostgreSQL databases, migrated SQLite files, the settings test apps
start with, and rows made straight through the services for tests that need a database but no app, HTTP or
executor."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire import migrate
from runwire.auth.models import User
from runwire.chats import service as chats_service
from runwire.chats.models import Chat
from runwire.chats.schemas import ChatCreate
from runwire.config import Settings
from runwire.db import Database, utcnow
from runwire.runs import service as runs_service
from runwire.runs.models import RunEvent, StepRun, WorkflowRun
from runwire.runs.schemas import RunCreate
from runwire.workflows import service as workflows_service
from runwire.workflows.schemas import StepDef, WorkflowCreate

POSTGRES_ADMIN_URL = os.environ.get("RUNWIRE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# Tests sign up and act as many users from one address, quickly: limits far above that, still counted. Tests of the
# limits set their own.
# What every test app and test server runs with unless a test says otherwise: generous rate limits, and small
# connection pools, so that the suite's parallel workers stay within PostgreSQL's 100 connections.
TEST_DEFAULTS = {
    "rate_limit_sign_in_per_email": 10_000,
    "rate_limit_sign_in_per_address": 100_000,
    "rate_limit_sign_ups_per_address": 100_000,
    "rate_limit_starts_per_minute": 100_000,
    "rate_limit_writes_per_minute": 100_000,
    "database_pool_size": 4,
    "dbos_pool_size": 3,
    # A test server stopped mid-step drains for a few seconds at most (tests of the drain set their own).
    "shutdown_grace_seconds": 5,
    # argon2's least cost: at its default, each sign-up or sign-in takes a fifth of a second of CPU, together about a
    # seventh of the suite's. Tests of that cost set REAL_PASSWORD_COST.
    "password_hash_memory_kib": 32,
    "password_hash_time_cost": 1,
}
# What a server runs with unless configured otherwise.
REAL_PASSWORD_COST = {
    name: Settings.model_fields[name].default for name in ("password_hash_memory_kib", "password_hash_time_cost")
}


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """The settings of a test app: quick retries, TEST_DEFAULTS, and `overrides`."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "retry_backoff_seconds": 0.05,
        **TEST_DEFAULTS,
    }
    values.update(overrides)
    return Settings(**values)


def _postgres_or_skip() -> None:
    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("RUNWIRE_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here but not reachable at {POSTGRES_ADMIN_URL}: {exc}")
        pytest.skip(f"no PostgreSQL reachable at {POSTGRES_ADMIN_URL}: {exc}")


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a PostgreSQL database made for the caller alone, dropped afterwards."""
    _postgres_or_skip()
    name = f"runwire_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


def recorded_state(database: Database, run_id: Any) -> tuple[Any, ...]:
    """A run as recorded: its status and error, its steps (id, status, inputs, output, error, start, end), and its
    events' types in order."""
    with database.reading() as session:
        run = session.get(WorkflowRun, run_id)
        assert run is not None
        steps = session.execute(sa.select(StepRun).where(StepRun.run_id == run_id)).scalars().all()
        events = session.scalars(sa.select(RunEvent.type).where(RunEvent.run_id == run_id).order_by(RunEvent.seq))
        return (
            run.status,
            run.error,
            [(s.step_id, s.status, s.inputs, s.output, s.error, s.started_at, s.completed_at) for s in steps],
            list(events),
        )


def new_id() -> uuid.UUID:
    return uuid.uuid4()
