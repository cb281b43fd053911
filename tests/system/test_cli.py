import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts `runwire` subprocesses


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    runwire = str(Path(sys.executable).parent / "runwire")
    result = subprocess.run(
        [runwire, "db", "upgrade", "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "runwire.db") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {
        "user",
        "auth_session",
        "chat",
        "workflow",
        "workflow_version",
        "workflow_run",
        "step_run",
        "run_event",
    } <= tables
    again = subprocess.run(
        [runwire, "db", "upgrade", "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
