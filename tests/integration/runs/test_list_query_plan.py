"""The run lists read through indexes at 100k runs: the exact statements `listing.list_chat_runs` and
`listing.list_user_runs` send are EXPLAINed on PostgreSQL and on SQLite.

The chat's list reads through the (chat_id, chat_seq) index (PostgreSQL may take (chat_id, created_at, id)). The
user's list (newest first across the user's chats) walks the (created_at, id) index in page order, from where its
filters and cursor put it, and keeps a run when its chat, probed by primary key, is the user's and not deleted, until
the page is full: no scan and no sort, however many runs the user has. With a chatId it walks (chat_id, created_at,
id) the same way. Both read their steps through step_run's primary key."""

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from runwire import migrate
from runwire.config import Settings
from runwire.db import create_db_engine
from runwire.pagination import decode_newest_first
from runwire.runs import listing
from tests.factories import fresh_postgres_database
from tests.list_exactness import NEWEST_FIRST

RUNS = 100_000
CHATS = 1_000
STEPS_PER_RUN = 3
RUNS_PER_CHAT = RUNS // CHATS
USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
WORKFLOW_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
OTHER_USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000003")
# Run n was created at T0 + n seconds.
T0_TIME = datetime(2026, 1, 1, tzinfo=UTC)

# Run n belongs to chat n % CHATS and is its (n // CHATS + 1)-th run; every tenth run of a chat failed, the others
# completed; every run has STEPS_PER_RUN steps. Chat c belongs to the user, except when c % 100 is 99: then to another
# user; and when c % 100 is 98 it was deleted.
POSTGRES_FILL = [
    """INSERT INTO "user" (id, email, name, password_hash, created_at)
       VALUES (:user_id, 'plan@example.com', 'Plan', 'x', now()),
              (:other_user_id, 'other@example.com', 'Other', 'x', now())""",
    """INSERT INTO workflow (id, user_id, name, current_version, created_at, updated_at)
       VALUES (:workflow_id, :user_id, 'plan', 1, now(), now())""",
    """INSERT INTO workflow_version (workflow_id, version, steps, created_at)
       VALUES (:workflow_id, 1, '[]'::jsonb, now())""",
    """INSERT INTO chat (id, user_id, title, created_at, updated_at, deleted_at)
       SELECT md5('chat' || c)::uuid, CASE WHEN c % 100 = 99 THEN :other_user_id ELSE :user_id END, 'chat ' || c,
              now(), now(), CASE WHEN c % 100 = 98 THEN now() END
       FROM generate_series(0, :chats - 1) c""",
    """INSERT INTO workflow_run (id, chat_id, workflow_id, workflow_version, chat_seq, status, input, error,
                                 last_event_seq, created_at, started_at, completed_at)
       SELECT md5('run' || n)::uuid, md5('chat' || (n % :chats))::uuid, :workflow_id, 1, n / :chats + 1,
              CASE WHEN (n / :chats) % 10 = 9 THEN 'failed' ELSE 'completed' END, '{}'::jsonb, NULL, 0,
              timestamptz '2026-01-01 00:00:00+00' + n * interval '1 second', now(), now()
       FROM generate_series(0, :runs - 1) n""",
    """INSERT INTO step_run (run_id, step_id, position, name, tool_id, status, inputs, output, error, attempts, logs,
                             started_at, completed_at)
       SELECT md5('run' || n)::uuid, 'step' || k, k, NULL, 'delay', 'completed', '{}'::jsonb, '{}'::jsonb, NULL, 1,
              '[]'::jsonb, now(), now()
       FROM generate_series(0, :runs - 1) n, generate_series(0, :steps - 1) k""",
]
# SQLite keeps a UUID as 32 hex digits: chats are numbered from 8 * 16**31 up, runs from 0 up, so none collide.
T0 = "'2026-01-01 00:00:00.000000'"
SQLITE_FILL = [
    f"""INSERT INTO "user" (id, email, name, password_hash, created_at)
        VALUES (:user_id, 'plan@example.com', 'Plan', 'x', {T0}),
               (:other_user_id, 'other@example.com', 'Other', 'x', {T0})""",
    f"""INSERT INTO workflow (id, user_id, name, current_version, created_at, updated_at)
        VALUES (:workflow_id, :user_id, 'plan', 1, {T0}, {T0})""",
    f"""INSERT INTO workflow_version (workflow_id, version, steps, created_at) VALUES (:workflow_id, 1, '[]', {T0})""",
    f"""WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < :chats)
        INSERT INTO chat (id, user_id, title, created_at, updated_at, deleted_at)
        SELECT printf('8%031x', i), CASE WHEN i % 100 = 99 THEN :other_user_id ELSE :user_id END, 'chat ' || i,
               {T0}, {T0}, CASE WHEN i % 100 = 98 THEN {T0} END
        FROM c""",
    f"""WITH RECURSIVE r(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n + 1 < :runs)
        INSERT INTO workflow_run (id, chat_id, workflow_id, workflow_version, chat_seq, status, input, error,
                                  last_event_seq, created_at, started_at, completed_at)
        SELECT printf('%032x', n), printf('8%031x', n % :chats), :workflow_id, 1, n / :chats + 1,
               CASE WHEN (n / :chats) % 10 = 9 THEN 'failed' ELSE 'completed' END, '{{}}', NULL, 0,
               datetime('2026-01-01', '+' || n || ' seconds') || '.000000', {T0}, {T0}
        FROM r""",
    f"""WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < :steps)
        INSERT INTO step_run (run_id, step_id, position, name, tool_id, status, inputs, output, error, attempts, logs,
                              started_at, completed_at)
        SELECT workflow_run.id, 'step' || k.i, k.i, NULL, 'delay', 'completed', '{{}}', '{{}}', NULL, 1, '[]',
               {T0}, {T0}
        FROM workflow_run, k""",
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An engine on a database at the newest schema holding RUNS runs across CHATS chats, analysed."""
    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path_factory.mktemp('plan') / 'plan.db'}")
        try:
            _fill(engine, SQLITE_FILL)
            yield engine
        finally:
            engine.dispose()
        return
    with fresh_postgres_database() as url:
        engine = create_db_engine(Settings(database_url=url).resolved_database_url)
        try:
            _fill(engine, POSTGRES_FILL)
            yield engine
        finally:
            engine.dispose()


def _fill(engine: Engine, statements: list[str]) -> None:
    migrate.upgrade(engine)
    native = engine.dialect.name == "postgresql"
    values: dict[str, Any] = {
        "user_id": USER_ID if native else USER_ID.hex,
        "other_user_id": OTHER_USER_ID if native else OTHER_USER_ID.hex,
        "workflow_id": WORKFLOW_ID if native else WORKFLOW_ID.hex,
        "chats": CHATS,
        "runs": RUNS,
        "steps": STEPS_PER_RUN,
    }
    with engine.begin() as connection:
        for statement in statements:
            query = sa.text(statement)
            connection.execute(query, {name: values[name] for name in query.compile().params})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")
        assert connection.scalar(sa.text("SELECT count(*) FROM workflow_run")) == RUNS
        assert connection.scalar(sa.text("SELECT count(*) FROM step_run")) == RUNS * STEPS_PER_RUN


def chat_id_of(engine: Engine, index: int) -> uuid.UUID:
    with engine.connect() as connection:
        value = connection.scalar(
            sa.text("SELECT chat_id FROM workflow_run WHERE chat_seq = 1 ORDER BY id LIMIT 1 OFFSET :index"),
            {"index": index},
        )
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value)


Runs = list[dict[str, Any]]
Statements = list[tuple[str, Any]]


def captured_statements(engine: Engine, read: Callable[[sa.Connection], Runs]) -> tuple[Statements, Runs]:
    """The statements that `read` (a list's read) sends, with their parameters, and the runs it listed, each with
    its steps."""
    statements: Statements = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as connection:
            runs = read(connection)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert all(len(run["steps"]) == STEPS_PER_RUN for run in runs)
    return statements, runs


def postgres_uses(plan: list[str], index: str, table: str) -> bool:
    pattern = re.compile(rf"Index (Only )?Scan (Backward )?using {index} on {table}\b|Bitmap Index Scan on {index}\b")
    return any(pattern.search(line) for line in plan)


def shown(plan: list[str]) -> str:
    return "\n  ".join(line if len(line) < 160 else line[:150] + " ..." for line in plan)


def explain(engine: Engine, statement: str, parameters: Any) -> list[str]:
    prefix = "EXPLAIN " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(prefix + statement, parameters).all()
    return [str(row[0]) for row in rows] if engine.dialect.name == "postgresql" else [str(row[-1]) for row in rows]


def sqlite_plan_unanalysed(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """The SQLite plan of the statement as on a database that was never analysed (Runwire runs no ANALYZE): its
    statistics deleted and reloaded in a transaction rolled back, on a connection then thrown away."""
    with engine.connect() as connection:
        connection.exec_driver_sql("DELETE FROM sqlite_stat1")
        connection.exec_driver_sql("ANALYZE sqlite_schema")
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        connection.rollback()
        connection.invalidate()
    return [str(row[-1]) for row in rows]


def index_on(engine: Engine, table: str, columns: list[str]) -> str:
    """The name of the index the database keeps on exactly these columns of the table, in this order."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.execute(
                sa.text("""SELECT i.relname, array_agg(a.attname ORDER BY k.n)
                           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                           JOIN pg_class t ON t.oid = x.indrelid
                           CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
                           JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                           WHERE t.relname = :table GROUP BY i.relname"""),
                {"table": table},
            ).all()
            found = {name: list(cols) for name, cols in rows}
        else:
            names = [row[1] for row in connection.exec_driver_sql(f"PRAGMA index_list('{table}')")]
            found = {
                name: [row[2] for row in connection.exec_driver_sql(f"PRAGMA index_info('{name}')")] for name in names
            }
    matches = [name for name, cols in found.items() if cols == columns]
    assert len(matches) == 1, found
    return str(matches[0])


FILTERS = {
    "all, oldest first": listing.RunFilter(),
    "newest first, a page after a cursor": listing.RunFilter(descending=True, limit=20, after=61),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(FILTERS))
def test_the_run_list_reads_through_indexes_at_100k_runs(filled_engine: Engine, case: str) -> None:
    engine = filled_engine
    postgres = engine.dialect.name == "postgresql"
    run_index = index_on(engine, "workflow_run", ["chat_id", "chat_seq"])
    step_index = index_on(engine, "step_run", ["run_id", "step_id"])
    if postgres:
        assert run_index == "uq_workflow_run_chat_id_chat_seq"

    run_filter, chat_id = FILTERS[case], chat_id_of(engine, 417)
    (statement,), runs = captured_statements(
        engine, lambda connection: listing.list_chat_runs(chat_id, run_filter, connection=connection).runs
    )
    assert len(runs) == (run_filter.limit or RUNS_PER_CHAT) and all(run["chatId"] == str(chat_id) for run in runs)
    # One statement reads the runs, their steps and the chat's version: its plan holds both reads.
    run_plan = step_plan = explain(engine, *statement)
    print(f"\n[{engine.dialect.name}, {case}] query plan:\n  " + shown(run_plan))

    assert "FROM workflow_run" in statement[0] and "step_run" in statement[0]
    if postgres:
        # At 100 runs a chat, PostgreSQL's planner may as well take the (chat_id, created_at, id) index and sort: the
        # costs are within a hair. Either reads only the chat's runs.
        chat_index = index_on(engine, "workflow_run", ["chat_id", "created_at", "id"])
        assert any(postgres_uses(run_plan, index, "workflow_run") for index in (run_index, chat_index)), run_plan
        assert not any("Seq Scan on workflow_run" in line for line in run_plan), run_plan
        assert postgres_uses(step_plan, step_index, "step_run"), step_plan
        assert not any("Seq Scan on step_run" in line for line in step_plan), step_plan
    else:
        assert any(line.startswith(f"SEARCH workflow_run USING INDEX {run_index} (chat_id=?") for line in run_plan)
        assert not any(line.startswith("SCAN workflow_run") for line in run_plan), run_plan
        # The index hands the runs over in chat_seq order: no sort.
        assert not any("TEMP B-TREE" in line for line in run_plan), run_plan
        assert any(line.startswith(f"SEARCH step_run USING INDEX {step_index} (run_id=?)") for line in step_plan)
        assert not any(line.startswith("SCAN step_run") for line in step_plan), step_plan


def user_list(engine: Engine, run_filter: listing.UserRunFilter) -> tuple[Runs, str | None]:
    with Session(engine) as session:
        return listing.list_user_runs(USER_ID, run_filter, session=session)


def after_the_first_page(engine: Engine) -> listing.UserRunFilter:
    _, cursor = user_list(engine, NEWEST_FIRST)
    assert cursor is not None
    return replace(NEWEST_FIRST, after=decode_newest_first(cursor))


def one_of_the_users_chats(engine: Engine) -> listing.UserRunFilter:
    return replace(NEWEST_FIRST, chat_id=sorted(live_chats(engine))[417])


def live_chats(engine: Engine) -> list[uuid.UUID]:
    """The user's chats that are not deleted."""
    native = engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        ids = connection.scalars(
            sa.text("SELECT id FROM chat WHERE user_id = :user_id AND deleted_at IS NULL"),
            {"user_id": USER_ID if native else USER_ID.hex},
        ).all()
    return [value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value) for value in ids]


# Per case: the filter (made on the filled database), the columns of the index the runs are read through, and the
# range SQLite reads of it (None: it walks it from an end).
USER_FILTERS: dict[str, tuple[Callable[[Engine], listing.UserRunFilter], list[str], str | None]] = {
    "newest first": (lambda _: NEWEST_FIRST, ["created_at", "id"], None),
    "oldest first": (lambda _: replace(NEWEST_FIRST, descending=False), ["created_at", "id"], None),
    "failed": (lambda _: replace(NEWEST_FIRST, statuses=frozenset({"failed"})), ["created_at", "id"], None),
    "created in a window": (
        lambda _: replace(
            NEWEST_FIRST, created_after=T0_TIME + timedelta(hours=10), created_before=T0_TIME + timedelta(hours=12)
        ),
        ["created_at", "id"],
        "created_at>? AND created_at<?",
    ),
    "a page after a cursor": (after_the_first_page, ["created_at", "id"], "(created_at,id)<(?,?)"),
    "one chat": (one_of_the_users_chats, ["chat_id", "created_at", "id"], "chat_id=?"),
}


def assert_listed_as_asked(runs: Runs, run_filter: listing.UserRunFilter, chats: list[uuid.UUID]) -> None:
    """A full page of the user's runs, in the order asked and within the filter."""
    created = [datetime.fromisoformat(run["createdAt"]) for run in runs]
    assert len(runs) == run_filter.limit
    assert created == sorted(set(created), reverse=run_filter.descending)
    assert {uuid.UUID(run["chatId"]) for run in runs} <= set(chats)
    if run_filter.statuses is not None:
        assert {run["status"] for run in runs} <= run_filter.statuses
    if run_filter.chat_id is not None:
        assert {run["chatId"] for run in runs} == {str(run_filter.chat_id)}
    if run_filter.created_after is not None and run_filter.created_before is not None:
        assert all(run_filter.created_after < moment < run_filter.created_before for moment in created)
    if run_filter.after is not None:
        assert created[0] <= run_filter.after[0]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(USER_FILTERS))
def test_the_user_run_list_reads_through_indexes_at_100k_runs(filled_engine: Engine, case: str) -> None:
    engine = filled_engine
    make_filter, columns, sqlite_range = USER_FILTERS[case]
    run_filter = make_filter(engine)
    run_index = index_on(engine, "workflow_run", columns)
    chat_index = index_on(engine, "chat", ["id"])
    step_index = index_on(engine, "step_run", ["run_id", "step_id"])

    (run_statement, step_statement), runs = captured_statements(
        engine, lambda connection: listing.list_user_runs(USER_ID, run_filter, session=Session(connection))[0]
    )
    assert_listed_as_asked(runs, run_filter, live_chats(engine))
    run_plan, step_plan = explain(engine, *run_statement), explain(engine, *step_statement)
    print(f"\n[{engine.dialect.name}, the user's runs, {case}] query plan:\n  " + shown(run_plan))

    if engine.dialect.name == "postgresql":
        direction = "Backward " if run_filter.descending else ""
        assert any(f"Index Scan {direction}using {run_index} on workflow_run " in line for line in run_plan), run_plan
        # Nothing read whole, nothing sorted: the walk stops once the page is full.
        assert not any("Seq Scan" in line or "Sort" in line for line in run_plan), run_plan
        assert postgres_uses(run_plan, chat_index, "chat"), run_plan
        assert postgres_uses(step_plan, step_index, "step_run"), step_plan
        assert not any("Seq Scan" in line for line in step_plan), step_plan
    else:
        # SQLite says SCAN of a walk over a whole index (in its order, stopped by the LIMIT), and SEARCH of a range.
        walk = f"SEARCH workflow_run USING INDEX {run_index} ({sqlite_range})" if sqlite_range else None
        assert run_plan[0] == (walk or f"SCAN workflow_run USING INDEX {run_index}"), run_plan
        assert not any("TEMP B-TREE" in line for line in run_plan), run_plan
        assert f"SEARCH chat USING INDEX {chat_index} (id=?)" in run_plan, run_plan
        # The chat is an EXISTS evaluated run by run: the walk does not hang on statistics SQLite may lack.
        assert sqlite_plan_unanalysed(engine, *run_statement) == run_plan
        assert any(line.startswith(f"SEARCH step_run USING INDEX {step_index} (run_id=?)") for line in step_plan)
        assert not any(line.startswith("SCAN step_run") for line in step_plan), step_plan
