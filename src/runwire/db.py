"""Engine, sessions and the declarative base shared by every domain's models."""

import json
import time
import uuid
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from runwire.jsonlimits import MAX_SAFE_INTEGER

DEFAULT_POOL_SIZE = 8


def pool_overflow(pool_size: int) -> int:
    """Connections opened beyond the pool at peaks, closed again when returned."""
    return pool_size // 2


def request_slots(pool_size: int) -> int:
    """Requests that may hold a session at once: under the pool (the executor and the stream reads need
    connections too) and far under the 40 threads of the request threadpool."""
    return max(1, pool_size - 2)


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: sa.Uuid(), dict[str, Any]: JSONType}


def utcnow() -> datetime:
    """Now, truncated to the millisecond the API shows, so stored and shown times agree."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class MillisecondClock:
    """utcnow(), as one object throughout each millisecond: what is made of it (a statement's bound value, see
    DriverStatement) can be kept for that millisecond. Used by one thread at a time."""

    def __init__(self) -> None:
        self._millisecond = -1
        self._now = utcnow()

    def now(self) -> datetime:
        millisecond = time.time_ns() // 1_000_000
        if millisecond != self._millisecond:
            seconds, milliseconds = divmod(millisecond, 1000)
            self._now = datetime.fromtimestamp(seconds, UTC).replace(microsecond=milliseconds * 1000)
            self._millisecond = millisecond
        return self._now


def create_db_engine(url: str, pool_size: int = DEFAULT_POOL_SIZE) -> Engine:
    """Runwire's engine; `hide_parameters` keeps a failed statement's values (user data) out of its error."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_overflow(pool_size),
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_overflow(pool_size),
        pool_pre_ping=True,
        hide_parameters=True,
        json_deserializer=_json_from_postgresql,
    )


def _json_from_postgresql(text: str | bytes) -> Any:
    """JSON as jsonb gives it back. jsonb writes numbers without an exponent (1.5e300 comes back as 301 digits), and
    Runwire stores no integer beyond ±(2^53 - 1): such a long integer was a float."""
    return json.loads(text, parse_int=_int_or_float)


def _int_or_float(digits: str) -> int | float:
    value = float(digits)
    return int(digits) if abs(value) <= MAX_SAFE_INTEGER else value


def _set_sqlite_pragmas(dbapi_connection: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Own the transaction boundaries so that writers can take the lock up front (BEGIN IMMEDIATE):
        # a deferred transaction that later writes can fail at once with SQLITE_BUSY instead of waiting.
        dbapi_connection.isolation_level = None
        _set_sqlite_pragmas(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        options = connection.get_execution_options()
        begin = options.get("sqlite_begin", "DEFERRED")
        if begin is None or options.get("isolation_level") == "AUTOCOMMIT":
            return
        connection.exec_driver_sql(f"BEGIN {begin}")


def create_dbos_sqlite_engine(url: str, pool_size: int) -> Engine:
    """An engine for DBOS's SQLite system database in WAL mode with NORMAL sync, as Runwire's own: DBOS's default
    (a rollback journal, a full sync on every commit) costs milliseconds on each checkpoint of every step."""
    engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_overflow(pool_size), hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = "IMMEDIATE"  # what DBOS's own SQLite engine does: writers serialise
        _set_sqlite_pragmas(dbapi_connection)

    return engine


class Database:
    """One engine, two kinds of session: read-only ones and ones that write."""

    def __init__(
        self, url: str, pool_size: int = DEFAULT_POOL_SIZE, *, session_info: dict[str, Any] | None = None
    ) -> None:
        """`session_info` is put in every session's `info`: what code running inside a transaction may need of the
        process (its signal hub)."""
        self.pool_size = pool_size
        self.engine = create_db_engine(url, pool_size)
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False, info=session_info)
        self._write = sessionmaker(bind=writer, expire_on_commit=False, info=session_info)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A transaction that commits when the block ends without an exception. The block may commit earlier and
        go on in a new transaction, which commits at the end in turn."""
        with self._write() as session:
            yield session
            session.commit()

    @contextmanager
    def statements(self) -> Iterator[sa.Connection]:
        """A connection whose statements each run on their own, with no transaction around them: for reads whose
        every answer comes from one statement (a consistent snapshot), at no cost for BEGIN and COMMIT."""
        with self.connect_for_statements() as connection:
            yield connection

    def connect_for_statements(self) -> sa.Connection:
        """A connection as `statements()` gives, for the caller to close. A SQLite connection is in the driver's
        autocommit mode from the start (see `_configure_sqlite`): it is only told to send no BEGIN, whereas setting
        SQLAlchemy's AUTOCOMMIT level would have the pool send a PRAGMA to reset it on every return."""
        if self.dialect == "sqlite":
            return self.engine.connect().execution_options(sqlite_begin=None)
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        self.engine.dispose()


def call_after_commit(session: Session, key: Hashable, callback: Callable[[], None]) -> bool:
    """Run `callback` once the session's current transaction has committed (never if it rolls back). One callback
    per key and transaction: returns False, and drops `callback`, when one is already waiting under `key`."""
    pending: dict[Hashable, Callable[[], None]] = session.info.setdefault(_AFTER_COMMIT, {})
    if key in pending:
        return False
    pending[key] = callback
    return True


_AFTER_COMMIT = "runwire_after_commit"


@event.listens_for(Session, "after_commit")
def _run_after_commit_callbacks(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, {}).values():
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit_callbacks(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
