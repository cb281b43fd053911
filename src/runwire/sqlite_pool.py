"""SQLite connections that come back to the pool with no read left open.

A SELECT whose rows were not all fetched, and whose cursor is still alive (a result dropped half-read but still
referenced, from a traceback say), keeps the read snapshot SQLite took for it. Until that cursor goes, every later
statement on the connection sees the database as it was then: a rollback does not end that read, a new BEGIN reads
inside it, and a writer's BEGIN IMMEDIATE waits for a lock it can never take. A pooled connection serves everyone
after, so one such read made some of the process's reads stale and some of its writes fail, at random.

The connection keeps its cursors; when it is returned to the pool, any that is still open is closed, which ends its
read, and one that still had rows to give is logged, so that the code which left it can be found."""

import logging
import sqlite3
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger("runwire.db")


class TrackedConnection(sqlite3.Connection):
    """A sqlite3 connection that keeps a weak reference to each cursor made on it (`sqlite3.connect`'s factory)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cursors: weakref.WeakSet[sqlite3.Cursor] = weakref.WeakSet()

    # One signature for typeshed's two overloads (with and without a cursor factory).
    def cursor(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:  # type: ignore[override]
        cursor: sqlite3.Cursor = super().cursor(*args, **kwargs)
        self.cursors.add(cursor)
        return cursor

    def close_cursors(self) -> int:
        """Close every cursor still open; returns how many had rows left unread."""
        unfinished = 0
        for cursor in list(self.cursors):
            try:
                unfinished += cursor.fetchone() is not None
            except sqlite3.ProgrammingError:
                continue  # already closed
            cursor.close()
        self.cursors.clear()
        return unfinished


CONNECT_ARGS = {"factory": TrackedConnection}


def close_cursors_on_checkin(engine: Engine) -> None:
    """Close what a returned connection left open (see the module's docstring)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, TrackedConnection) and (unfinished := dbapi_connection.close_cursors()):
            log.warning("a read was left unfinished on a pooled connection; closed", extra={"reads": unfinished})
