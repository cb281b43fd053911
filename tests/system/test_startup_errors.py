"""Start-up as a new operator meets it: each setting broken in turn, `runwire serve` and `runwire worker` say what is
wrong and what to do in two lines, exit non-zero within seconds, and show a traceback only at DEBUG level;
`runwire check` prints every check with ok or its problem."""

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runwire.db import create_db_engine
from runwire.migrate import upgrade
from tests.helpers import TEST_ENV, free_port

pytestmark = pytest.mark.slow  # starts `runwire` subprocesses

RUNWIRE = str(Path(sys.executable).parent / "runwire")
CLOSED = "postgresql://postgres:hunter2-secret@127.0.0.1:1/runwire"
SECONDS = 15


def runwire(*arguments: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [RUNWIRE, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **TEST_ENV, **(env or {})},
    )
    return result, time.monotonic() - started


def stamped_newer(data_dir: Path) -> None:
    data_dir.mkdir()
    engine = create_db_engine(f"sqlite:///{data_dir / 'runwire.db'}")
    upgrade(engine)
    engine.dispose()
    with sqlite3.connect(data_dir / "runwire.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")


@pytest.mark.parametrize(
    ("case", "env", "expected"),
    [
        ("database", {"RUNWIRE_DATABASE_URL": CLOSED}, "Nothing answers as a database at 127.0.0.1:1"),
        ("dbos", {"RUNWIRE_DBOS_SYSTEM_DATABASE_URL": CLOSED}, "RUNWIRE_DBOS_SYSTEM_DATABASE_URL"),
        ("setting", {"RUNWIRE_MAX_PARALLEL_STEPS": "0"}, "RUNWIRE_MAX_PARALLEL_STEPS='0' is not allowed"),
        ("data dir", {}, "is not a folder"),
        ("migrations", {}, "newer than this release knows"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "worker"])
def test_each_broken_start_says_what_to_do_in_two_lines(
    tmp_path: Path, command: str, case: str, env: dict[str, str], expected: str
) -> None:
    data_dir = tmp_path / "data"
    if case == "data dir":
        data_dir.write_text("a file, not a folder")
    if case == "migrations":
        stamped_newer(data_dir)
    result, seconds = runwire(command, "--data-dir", str(data_dir), env=env)
    assert result.returncode == 2, result.stderr
    assert seconds < SECONDS
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(f"runwire {command}: ") and expected in result.stderr
    assert lines[1].startswith("  ")
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_debug_level_adds_the_traceback(tmp_path: Path) -> None:
    env = {"RUNWIRE_DATABASE_URL": CLOSED, "RUNWIRE_LOG_LEVEL": "DEBUG"}
    result, _ = runwire("serve", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("runwire serve: Nothing answers")
    assert "Traceback (most recent call last)" in result.stderr


def test_a_port_in_use_is_named_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result, seconds = runwire("serve", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2 and seconds < SECONDS
    assert result.stderr.splitlines() == [
        f"runwire serve: Port {port} on 127.0.0.1 is already in use by another process.",
        "  Stop the process that holds it, or choose another port with --port or RUNWIRE_PORT.",
    ]
    assert not (tmp_path / "data" / "runwire.db").exists()


def test_check_prints_every_check_with_ok_or_its_problem(tmp_path: Path) -> None:
    result, _ = runwire("check", "--no-port", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "ok    settings",
        "ok    data dir",
        "ok    database",
        "ok    DBOS system database",
    ]
    assert not (tmp_path / "data").exists(), "check creates nothing"

    result, _ = runwire("check", "--data-dir", str(tmp_path), env={"RUNWIRE_DATABASE_URL": CLOSED})
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok    settings") and any(line.startswith("ok    port") for line in lines)
    failed = lines.index(next(line for line in lines if line.startswith("FAIL  database: Nothing answers")))
    assert lines[failed + 1].strip().startswith("Start PostgreSQL there")

    result, _ = runwire("check", env={"RUNWIRE_SHUTDOWN_GRACE_SECONDS": "soon"})
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL  settings: RUNWIRE_SHUTDOWN_GRACE_SECONDS='soon' is not allowed")


BROKEN_START = """
import sys
from runwire import cli, runtime

def start(self):
    raise RuntimeError("the executor could not start at 0x7f3a2b1c0d90")

runtime.Runtime.start = start
cli.main(sys.argv[1:])
"""


def test_a_failure_the_checks_cannot_foresee_is_one_line_too(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-c", BROKEN_START, "serve", "--port", str(port), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **TEST_ENV},
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "runwire serve: Start-up failed: RuntimeError: the executor could not start at 0x[address]",
        "  Run `runwire check`; RUNWIRE_LOG_LEVEL=DEBUG prints the traceback.",
    ]
