"""The order in which a writer to a run takes its locks on PostgreSQL: the chat's row, then the run's, as run creation
and chat deletion do (they lock the chat first). `transitions.lock_run` takes both in one statement (which may read
steps of the run too, and locks no step); were the run's
row locked first, a writer waiting for the chat would hold the run against one holding the chat: a deadlock."""

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from runwire import migrate
from runwire.db import Database
from runwire.runs import transitions
from tests.factories import delay_steps, fresh_postgres_database, make_chat, make_run, make_user

WAIT_SECONDS = 10.0


@pytest.fixture
def database() -> Iterator[Database]:
    with fresh_postgres_database() as url:
        database = Database(url)
        migrate.upgrade(database.engine)
        yield database
        database.dispose()


def locked(conninfo: str, table: str, row_id: uuid.UUID, column: str = "id") -> bool:
    """Whether another transaction holds the lock of a row (of any row whose `column` is `row_id`) now."""
    with psycopg.connect(conninfo) as connection:
        try:
            connection.execute(f"SELECT 1 FROM {table} WHERE {column} = %s FOR UPDATE NOWAIT", (row_id,))
        except psycopg.errors.LockNotAvailable:
            return True
        return False


@pytest.mark.parametrize("steps", [(), ("a",)], ids=["run", "run-and-its-step"])
def test_a_writer_waiting_for_the_chat_holds_no_lock_on_the_run_then_holds_both(
    database: Database, steps: tuple[str, ...]
) -> None:
    """Whether or not it reads steps of the run in the same statement."""
    with database.writing() as session:
        user = make_user(session)
        chat = make_chat(session, user)
        run_id, chat_id = make_run(session, user, chat, delay_steps("a")).id, chat.id
    conninfo = database.engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    holder = psycopg.connect(conninfo)
    holder.execute("SELECT id FROM chat WHERE id = %s FOR UPDATE", (chat_id,))
    waiting, has_both, release = threading.Event(), threading.Event(), threading.Event()

    def writer() -> None:
        with database.writing() as session:
            waiting.set()
            run = transitions.lock_run(run_id, session=session, steps=steps)
            assert run is not None and set(run.read_steps) == set(steps)
            has_both.set()
            release.wait(WAIT_SECONDS)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert waiting.wait(WAIT_SECONDS)
        assert not has_both.wait(0.5), "the writer went past a chat another transaction holds"
        assert not locked(conninfo, "workflow_run", run_id)
        holder.rollback()
        assert has_both.wait(WAIT_SECONDS)
        assert locked(conninfo, "chat", chat_id) and locked(conninfo, "workflow_run", run_id)
        assert not locked(conninfo, "step_run", run_id, column="run_id")
    finally:
        holder.close()
        release.set()
        thread.join(WAIT_SECONDS)
