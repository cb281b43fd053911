"""Core statements sent straight to the database driver, for paths so hot that SQLAlchemy's execution of a statement
(its cache look-up, execution context and result) costs several times what the database does for it: about 20 of 25
us for a point read on SQLite. A statement is compiled once per dialect and set of parameter names; each parameter
goes through its type's bind processor, and each column of a row through its result processor, as in SQLAlchemy's
own execution. No SQLAlchemy event sees these statements."""

import uuid
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

# The values whose driver form may be remembered: a mutable one (a dict) could have changed since.
_IMMUTABLE = (str, bytes, int, float, uuid.UUID, datetime)


class DriverStatement:
    """A statement compiled for a dialect: its SQL, and its parameters and rows in the driver's form. An UPDATE or
    INSERT sets the columns named by `column_keys` (as SQLAlchemy sets those its parameters name)."""

    def __init__(self, statement: sa.ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=None if column_keys is None else list(column_keys))
        assert isinstance(compiled, SQLCompiler), "a statement, not DDL"
        assert not compiled.post_compile_params, "every parameter is bound when the statement is sent, not rendered"
        self.sql = str(compiled)
        self._positions = compiled.positiontup  # None when the driver takes named parameters
        self._processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect) for bind, name in compiled.bind_names.items()
        }
        # The values the statement itself holds (a literal in a SET or a WHERE), by bind name.
        self._fixed = {name: bind.effective_value for bind, name in compiled.bind_names.items() if not bind.required}
        self._last: dict[str, tuple[object, Any]] = {}  # by bind name: the last value given and what it became
        columns = list(statement.selected_columns) if isinstance(statement, sa.Select) else []
        self._row: Callable[..., Any] = namedtuple("Row", [str(column.key) for column in columns], rename=True)  # type: ignore[misc]
        self._columns = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]

    def parameters(self, values: Mapping[str, object]) -> Sequence[Any] | dict[str, Any]:
        """`values` (by bind name) in the driver's form, in the driver's order when it takes them by position."""
        processed = {
            name: self._processed(name, values[name] if name in values else self._fixed[name])
            for name in self._processors
        }
        return processed if self._positions is None else tuple(processed[name] for name in self._positions)

    def _processed(self, name: str, value: object) -> Any:
        """A value in the driver's form; an immutable value that is the very object given last time is not processed
        again."""
        processor = self._processors[name]
        if processor is None:
            return value
        last = self._last.get(name)
        if last is not None and last[0] is value:
            return last[1]
        driver_value = processor(value)
        if isinstance(value, _IMMUTABLE):
            self._last[name] = (value, driver_value)
        return driver_value

    def row(self, values: Sequence[Any]) -> Any:
        """A row as the driver gives it, with each column as SQLAlchemy gives it, by name."""
        return self._row(
            *(value if load is None else load(value) for load, value in zip(self._columns, values, strict=True))
        )

    def first(self, driver_connection: Any, values: Mapping[str, object]) -> Any:
        """The first row the statement answers, as the driver gives it (on SQLite a UUID as its 32 stored hex
        digits), or None."""
        cursor = driver_connection.cursor()
        try:
            cursor.execute(self.sql, self.parameters(values))
            return cursor.fetchone()
        finally:
            cursor.close()

    async def first_async(self, connection: psycopg.AsyncConnection[Any], values: Mapping[str, object]) -> Any:
        """The first row the statement answers on an asynchronous psycopg connection, or None."""
        async with connection.cursor() as cursor:
            await cursor.execute(self.sql, self.parameters(values))
            return await cursor.fetchone()


class DriverTransaction:
    """The transaction of a SQLAlchemy connection, spoken to through its driver connection: for a writer's hot
    transaction, a handful of statements each compiled once (`DriverStatement`)."""

    # By the statement's identity, the dialect's name and the names of the parameters: the statement and its form.
    _compiled: ClassVar[dict[tuple[int, str, tuple[str, ...]], tuple[sa.ClauseElement, DriverStatement]]] = {}

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._driver: Any = connection.connection.driver_connection
        self._dialect = connection.dialect

    def _statement(self, statement: sa.ClauseElement, names: tuple[str, ...]) -> DriverStatement:
        key = (id(statement), self._dialect.name, names)
        found = self._compiled.get(key)
        if found is None or found[0] is not statement:
            found = self._compiled[key] = (statement, DriverStatement(statement, self._dialect, names))
        return found[1]

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """Statements sent within are sent on PostgreSQL without waiting for each one's answer (psycopg's pipeline
        mode), and their errors are raised once the block ends, or at the first read; on SQLite, as elsewhere."""
        if self._dialect.name != "postgresql":
            yield
            return
        with self._as_sqlalchemy_raises("(the statements of a pipeline)"), self._driver.pipeline():
            yield

    @contextmanager
    def _as_sqlalchemy_raises(self, sql: str) -> Iterator[None]:
        """A driver's error raised as SQLAlchemy's own execution raises it (a `sa.exc.DBAPIError` of the matching
        kind, its values hidden), with a lost connection invalidated: callers tell a transient error by that."""
        dbapi_error = self._dialect.loaded_dbapi.Error
        try:
            yield
        except dbapi_error as exc:
            lost = self._dialect.is_disconnect(exc, self._driver, None)
            if lost:
                self._connection.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                sql, None, exc, dbapi_error, hide_parameters=True, connection_invalidated=lost, dialect=self._dialect
            ) from exc

    @contextmanager
    def _cursor(self, sql: str) -> Iterator[Any]:
        """A cursor of the driver's connection for `sql`, closed after the block, its errors raised as SQLAlchemy's."""
        cursor = self._driver.cursor()
        try:
            with self._as_sqlalchemy_raises(sql):
                yield cursor
        finally:
            cursor.close()

    def execute(self, statement: sa.ClauseElement, values: Mapping[str, object]) -> None:
        """Run a statement whose answer is not read."""
        compiled = self._statement(statement, tuple(values))
        with self._cursor(compiled.sql) as cursor:
            cursor.execute(compiled.sql, compiled.parameters(values))

    def execute_many(self, statement: sa.ClauseElement, rows: Sequence[Mapping[str, object]]) -> None:
        """Run a statement once for each of `rows`, which all name the same parameters."""
        compiled = self._statement(statement, tuple(rows[0]))
        with self._cursor(compiled.sql) as cursor:
            cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])

    def all(self, statement: sa.ClauseElement, values: Mapping[str, object]) -> list[Any]:
        """The rows the statement answers, each with its columns by name."""
        compiled = self._statement(statement, tuple(values))
        with self._cursor(compiled.sql) as cursor:
            cursor.execute(compiled.sql, compiled.parameters(values))
            return [compiled.row(row) for row in cursor.fetchall()]

    def one_or_none(self, statement: sa.ClauseElement, values: Mapping[str, object]) -> Any:
        """The one row the statement answers, or None; more than one is an error."""
        rows = self.all(statement, values)
        if len(rows) > 1:
            raise sa.exc.MultipleResultsFound("Multiple rows were found when one or none was required")
        return rows[0] if rows else None
