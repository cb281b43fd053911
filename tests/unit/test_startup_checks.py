"""The start-up checks, one failure at a time: each names the problem and what to do, in a line or two."""

import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from runwire import startup_checks
from runwire.config import Settings
from runwire.db import create_db_engine
from runwire.migrate import upgrade
from runwire.startup_checks import Check, Problem, Problems
from tests.factories import POSTGRES_ADMIN_URL, fresh_postgres_database

CLOSED_PORT_URL = "postgresql://postgres:hunter2-secret@127.0.0.1:1/runwire"


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", **values)  # type: ignore[arg-type]


def only_problem(check: Check) -> Problem:
    assert check.problem is not None, check
    assert "\n" not in check.problem.what and "\n" not in check.problem.fix
    return check.problem


def test_every_bad_setting_is_named_with_what_it_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWIRE_PORT", "eighty")
    monkeypatch.setenv("RUNWIRE_DATABASE_POOL_SIZE", "1")
    monkeypatch.setenv("RUNWIRE_LOG_LEVEL", "loud")
    monkeypatch.setenv("RUNWIRE_SECURE_COOKIES", "perhaps")
    monkeypatch.setenv("RUNWIRE_TRUSTED_PROXIES", "not-an-address")
    with pytest.raises(Problems) as raised:
        startup_checks.load_settings()
    found = {problem.what.split("=")[0]: problem for problem in raised.value.problems}
    assert set(found) == {
        "RUNWIRE_PORT",
        "RUNWIRE_DATABASE_POOL_SIZE",
        "RUNWIRE_LOG_LEVEL",
        "RUNWIRE_SECURE_COOKIES",
        "RUNWIRE_TRUSTED_PROXIES",
    }
    assert found["RUNWIRE_PORT"].what.startswith("RUNWIRE_PORT='eighty' is not allowed")
    assert found["RUNWIRE_PORT"].fix == "Allowed: a whole number at least 0 and at most 65535."
    assert found["RUNWIRE_DATABASE_POOL_SIZE"].fix == "Allowed: a whole number at least 3."
    assert found["RUNWIRE_LOG_LEVEL"].fix == "Allowed: one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
    assert found["RUNWIRE_SECURE_COOKIES"].fix == "Allowed: true or false."
    assert "CIDR" in found["RUNWIRE_TRUSTED_PROXIES"].fix


def test_a_bad_secret_setting_is_named_but_its_value_never_shown() -> None:
    with pytest.raises(Problems) as raised:
        startup_checks.load_settings(metrics_token=["hunter2-secret"])
    (problem,) = raised.value.problems
    assert problem.what.startswith("RUNWIRE_METRICS_TOKEN is not allowed")
    assert "hunter2" not in " ".join(problem.lines())


def test_the_log_level_is_taken_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWIRE_LOG_LEVEL", "debug")
    assert startup_checks.load_settings().log_level == "DEBUG"


def test_a_missing_data_dir_is_created_or_reported_by_check(tmp_path: Path) -> None:
    config = settings(tmp_path)
    checked = startup_checks.check_data_dir(config, create=False)
    assert checked.ok and "created at start" in checked.note and not config.data_dir.exists()
    assert startup_checks.check_data_dir(config, create=True).ok and config.data_dir.is_dir()


@pytest.mark.parametrize("make", ["file", "uncreatable"])
def test_an_unusable_data_dir_is_named(tmp_path: Path, make: str) -> None:
    if make == "file":
        data_dir = tmp_path / "data"
        data_dir.write_text("not a folder")
    else:
        data_dir = Path("/proc/runwire-test/data")  # not even root can create it
    config = Settings(data_dir=data_dir)
    for create in (False, True):
        problem = only_problem(startup_checks.check_data_dir(config, create=create))
        assert str(data_dir) in problem.what
        assert "RUNWIRE_DATA_DIR" in problem.fix


def test_a_data_dir_is_not_needed_on_postgresql(tmp_path: Path) -> None:
    config = Settings(data_dir=Path("/proc/runwire-test"), database_url=CLOSED_PORT_URL)
    assert startup_checks.check_data_dir(config, create=True).ok


def test_a_port_in_use_is_named() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        problem = only_problem(startup_checks.check_port("127.0.0.1", port))
    assert problem.what == f"Port {port} on 127.0.0.1 is already in use by another process."
    assert "--port" in problem.fix and "RUNWIRE_PORT" in problem.fix
    assert startup_checks.check_port("127.0.0.1", port).ok


def test_an_address_not_of_this_machine_is_named() -> None:
    problem = only_problem(startup_checks.check_port("192.0.2.1", 3026))
    assert "RUNWIRE_HOST" in problem.what


def test_a_database_nobody_answers_for_is_named_without_its_password(tmp_path: Path) -> None:
    config = settings(tmp_path, database_url=CLOSED_PORT_URL)
    problem = only_problem(startup_checks.check_database(config))
    assert problem.what.startswith("Nothing answers as a database at 127.0.0.1:1")
    assert "connection refused" in problem.what
    assert "RUNWIRE_DATABASE_URL" in problem.fix
    assert "hunter2" not in problem.what + problem.fix
    dbos = startup_checks.run_checks(config, port=False, create_data_dir=False)
    assert [check.name for check in dbos if not check.ok] == ["database"], "the same failure is told once"


@pytest.fixture
def postgres() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def test_credentials_refused_and_a_missing_database_are_named(tmp_path: Path, postgres: str) -> None:
    host = POSTGRES_ADMIN_URL.split("@", 1)[1].rsplit("/", 1)[0]
    refused = only_problem(
        startup_checks.check_database(settings(tmp_path, database_url=f"postgresql://nobody-here@{host}/postgres"))
    )
    assert "refused the credentials of user 'nobody-here'" in refused.what
    missing = only_problem(
        startup_checks.check_database(settings(tmp_path, database_url=postgres.rsplit("/", 1)[0] + "/no_such_db"))
    )
    assert missing.what == f"The database 'no_such_db' does not exist on {host}."
    assert "createdb" in missing.fix
    dbos = only_problem(
        startup_checks.check_dbos_database(
            settings(tmp_path, database_url=postgres, dbos_system_database_url=CLOSED_PORT_URL)
        )
    )
    assert "RUNWIRE_DBOS_SYSTEM_DATABASE_URL" in dbos.fix
    assert startup_checks.check_database(settings(tmp_path, database_url=postgres)).ok


def test_a_schema_newer_than_the_code_is_named(tmp_path: Path) -> None:
    config = settings(tmp_path)
    config.data_dir.mkdir()
    engine = create_db_engine(config.resolved_database_url)
    try:
        upgrade(engine)
        assert "this release's newest" in startup_checks.check_database(config).note
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    problem = only_problem(startup_checks.check_database(config))
    assert "migration 9999, newer than this release knows" in problem.what


def test_a_dbos_system_database_newer_than_this_dbos_is_named(tmp_path: Path) -> None:
    config = settings(tmp_path)
    config.data_dir.mkdir()
    with sqlite3.connect(config.data_dir / "dbos.db") as connection:
        connection.execute("CREATE TABLE dbos_migrations (version BIGINT NOT NULL PRIMARY KEY)")
        connection.execute("INSERT INTO dbos_migrations VALUES (100000)")
    problem = only_problem(startup_checks.check_dbos_database(config))
    assert "DBOS migration 100000, newer than" in problem.what


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    config = settings(tmp_path)
    config.data_dir.mkdir()
    (config.data_dir / "runwire.db").write_bytes(b"this is not SQLite" * 100)
    problem = only_problem(startup_checks.check_database(config))
    assert "is not a SQLite database file" in problem.what


def test_any_other_failure_is_explained_in_a_line_without_secrets() -> None:
    (problem,) = startup_checks.explain(RuntimeError("boom at 0x7f3a2b1c0d90 $argon2id$v=19$abc"))
    assert problem.what == "Start-up failed: RuntimeError: boom at 0x[address] [password hash redacted]"
    assert "runwire check" in problem.fix and "RUNWIRE_LOG_LEVEL=DEBUG" in problem.fix
