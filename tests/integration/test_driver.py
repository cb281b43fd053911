"""The door's statements sent straight to the driver (`driver.DriverTransaction`) send the SQL and the values
SQLAlchemy's own execution sends, and read the rows it reads, on both databases."""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from psycopg.types.json import Jsonb

from runwire import migrate
from runwire.db import Database, utcnow
from runwire.driver import DriverStatement, DriverTransaction
from runwire.runs import transitions
from runwire.runs.states import Status
from tests.factories import delay_steps, fresh_postgres_database, make_chat, make_run, make_user, migrated_sqlite


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        with migrated_sqlite(tmp_path) as database:
            yield database
        return
    with fresh_postgres_database() as url:
        database = Database(url)
        migrate.upgrade(database.engine)
        yield database
        database.dispose()


@pytest.fixture
def run(database: Database) -> tuple[Any, Any]:
    """A run of two steps, its first completed with an output: (run id, chat id)."""
    with database.writing() as session:
        user = make_user(session)
        chat = make_chat(session, user)
        run = make_run(session, user, chat, delay_steps("a", "b"))
        run_id, chat_id = run.id, chat.id
    with database.writing() as session:
        transitions.transition_step(run_id, "a", Status.RUNNING, session=session)
    with database.writing() as session:
        output = {"sleptSeconds": 0, "text": "é ✓", "list": [1, 2.5, None, True]}
        transitions.transition_step(run_id, "a", Status.COMPLETED, output=output, session=session)
    return run_id, chat_id


def sent_by_sqlalchemy(connection: sa.Connection, statement: sa.Executable, values: Any) -> list[tuple[str, Any]]:
    sent: list[tuple[str, Any]] = []

    def record(*args: Any) -> None:
        sent.append((args[2], args[3]))

    sa.event.listen(connection, "before_cursor_execute", record)
    try:
        connection.execute(statement, values)
    finally:
        sa.event.remove(connection, "before_cursor_execute", record)
    return sent


def comparable(parameters: Any) -> Any:
    """The parameters with psycopg's JSON wrappers (which compare by identity) as what they wrap."""
    if isinstance(parameters, dict):
        return {name: comparable(value) for name, value in parameters.items()}
    if isinstance(parameters, tuple | list):
        return [comparable(value) for value in parameters]
    return ("json", parameters.obj) if isinstance(parameters, Jsonb) else parameters


def assert_sends_as_sqlalchemy(connection: sa.Connection, statement: Any, values: Mapping[str, Any]) -> None:
    driver = DriverStatement(statement, connection.dialect, tuple(values))
    [(sql, parameters)] = sent_by_sqlalchemy(connection, statement, values)
    assert sql == driver.sql
    assert comparable(parameters) == comparable(driver.parameters(values))


def test_the_reads_answer_the_rows_sqlalchemy_answers(database: Database, run: tuple[Any, Any]) -> None:
    run_id, _ = run
    reads = [
        (transitions._LOCK_RUN_AND_CHAT, {"run_key": run_id}),
        (transitions._READ_STEP, {"run_key": run_id, "step_key": "a"}),
        (transitions._READ_STEP, {"run_key": run_id, "step_key": "b"}),
        (transitions._LAST_OUTPUT, {"run_key": run_id}),
        (transitions._RUN_STEPS, {"run_key": run_id}),
    ]
    with database.writing() as session:
        connection = session.connection()
        sql = DriverTransaction(connection)
        for statement, values in reads:
            assert_sends_as_sqlalchemy(connection, statement, values)
            expected = connection.execute(statement, values).all()
            rows = sql.all(statement, values)
            assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
            assert [row._asdict() for row in rows] == [row._asdict() for row in expected]
        assert sql.one_or_none(transitions._READ_STEP, {"run_key": run_id, "step_key": "missing"}) is None
        with pytest.raises(sa.exc.MultipleResultsFound):
            sql.one_or_none(transitions._RUN_STEPS, {"run_key": run_id})


def test_the_writes_send_what_sqlalchemy_sends_and_change_the_same_rows(
    database: Database, run: tuple[Any, Any]
) -> None:
    run_id, chat_id = run
    now = utcnow()
    event = {"run_id": run_id, "chat_id": chat_id, "type": "note", "data": {"a": [1, "ü"]}, "created_at": now}
    writes: list[tuple[Any, dict[str, Any]]] = [
        (transitions._UPDATE_STEP, {"run_key": run_id, "step_key": "b", "status": "running", "started_at": now}),
        (
            transitions._UPDATE_STEP,
            {"run_key": run_id, "step_key": "b", "output": {"x": [1, None]}, "waiting_for": None},
        ),
        (transitions._UPDATE_CHAT_SEQ, {"chat_key": chat_id, "last_event_seq": 40}),
        (transitions._UPDATE_RUN, {"run_key": run_id, "last_event_seq": 40, "error": {"code": "c", "message": "m"}}),
        (transitions._INSERT_EVENTS, {**event, "seq": 41, "chat_seq": 41}),
        (transitions._HALT_STEPS, {"run_key": run_id, "now": now}),
    ]
    for statement, values in writes:
        with database.writing() as session:
            assert_sends_as_sqlalchemy(session.connection(), statement, values)
            session.rollback()
    with database.writing() as session:
        sql = DriverTransaction(session.connection())
        with sql.pipeline():
            sql.execute(transitions._UPDATE_STEP, writes[0][1])
            # A read within the pipeline answers after the writes sent before it.
            assert sql.one_or_none(transitions._READ_STEP, {"run_key": run_id, "step_key": "b"}).status == "running"
            sql.execute(transitions._UPDATE_STEP, {**writes[0][1], "step_key": "missing"})
            events = [{**event, "seq": 50, "chat_seq": 50}, {**event, "seq": 51, "chat_seq": 51}]
            sql.execute_many(transitions._INSERT_EVENTS, events)
            sql.execute(transitions._HALT_STEPS, {"run_key": run_id, "now": now})
    with database.reading() as session:
        steps = dict(
            session.execute(
                sa.select(transitions._STEPS.c.step_id, transitions._STEPS.c.status).where(
                    transitions._STEPS.c.run_id == run_id
                )
            ).all()
        )
        assert steps == {"a": "completed", "b": "cancelled"}
        data = session.execute(
            sa.select(transitions._EVENTS.c.seq, transitions._EVENTS.c.data).where(
                transitions._EVENTS.c.run_id == run_id, transitions._EVENTS.c.seq >= 50
            )
        ).all()
        assert [tuple(row) for row in data] == [(50, {"a": [1, "ü"]}), (51, {"a": [1, "ü"]})]


def test_a_failed_statement_raises_as_sqlalchemy_raises_and_its_transaction_writes_nothing(
    database: Database, run: tuple[Any, Any]
) -> None:
    run_id, chat_id = run
    event = {"run_id": run_id, "chat_id": chat_id, "type": "note", "data": {}, "created_at": utcnow()}
    update = {"run_key": run_id, "step_key": "b", "status": "running", "started_at": utcnow()}
    with pytest.raises(sa.exc.IntegrityError) as raised, database.writing() as session:
        sql = DriverTransaction(session.connection())
        with sql.pipeline():
            sql.execute(transitions._UPDATE_STEP, update)
            sql.execute_many(transitions._INSERT_EVENTS, [{**event, "seq": 60, "chat_seq": 60}] * 2)
    assert not raised.value.connection_invalidated
    with database.reading() as session:
        status = session.scalar(
            sa.select(transitions._STEPS.c.status).where(
                transitions._STEPS.c.run_id == run_id, transitions._STEPS.c.step_id == "b"
            )
        )
        assert status == "pending"
