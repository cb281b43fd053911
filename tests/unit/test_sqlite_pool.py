"""A pooled SQLite connection comes back with no read left open: the next user of it sees the database as it is, and
can write."""

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from runwire.db import Database


def test_a_half_read_result_left_alive_does_not_leave_its_connection_stale(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'pool.db'}"
    database, other = Database(url, pool_size=1), Database(url, pool_size=1)
    try:
        with database.writing() as session:
            session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            session.execute(sa.text("INSERT INTO t VALUES (1), (2), (3)"))
        with database.reading() as session:
            half_read = session.execute(sa.text("SELECT x FROM t"))
            assert half_read.fetchone() == (1,)
        with other.writing() as session:
            session.execute(sa.text("INSERT INTO t VALUES (4)"))

        # The pool's one connection again, while the half-read result (a local here) is still referenced.
        with database.reading() as session:
            assert session.scalar(sa.text("SELECT count(*) FROM t")) == 4
        with database.writing() as session:
            session.execute(sa.text("INSERT INTO t VALUES (5)"))
        with other.reading() as session:
            assert session.scalar(sa.text("SELECT count(*) FROM t")) == 5
        warnings = [record.message for record in caplog.records if record.levelno == logging.WARNING]
        assert any("left unfinished" in message for message in warnings), warnings
    finally:
        database.dispose()
        other.dispose()
