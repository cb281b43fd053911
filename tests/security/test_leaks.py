"""Nothing internal leaks: not into a response, not into a log line (SQL, its parameters, password hashes, memory
addresses)."""

import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runwire.logs import JsonFormatter, configure_logging
from tests.helpers import PASSWORD, StoredData, assert_refused

EMAIL = "leak@example.com"
NEVER_LOGGED = ("$argon2", PASSWORD, EMAIL, "INSERT", "[parameters", "0x7f")


@pytest.fixture(params=[False, True], ids=["info", "debug"])
def log_lines(request: pytest.FixtureRequest, client: TestClient) -> Iterator[list[str]]:
    """The lines the app's "runwire" logger writes, formatted as at INFO level or, with tracebacks, at DEBUG."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter(traceback=request.param))
    logger = logging.getLogger("runwire")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_a_failed_write_logs_no_parameters_and_no_password_hash(
    client: TestClient, stored: StoredData, log_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A naive time makes the user's INSERT fail inside SQLAlchemy, whose error carries the statement and its values.
    monkeypatch.setattr("runwire.auth.service.utcnow", lambda: datetime(2024, 2, 4, 12))
    stored.mark()
    response = client.post("/api/auth/sign-up/email", json={"email": EMAIL, "password": PASSWORD, "name": "Leak"})
    assert_refused(response, 500, "Internal Server Error")
    assert response.json()["message"] == "An unexpected error occurred; it has been logged."
    stored.assert_unchanged()
    errors = [json.loads(line) for line in log_lines if '"unhandled error"' in line]
    assert len(errors) == 1
    assert errors[0]["exception"]["type"] == "StatementError"
    assert "naive datetime" in errors[0]["exception"]["message"]
    for line in log_lines:
        for secret in NEVER_LOGGED:
            assert secret not in line, line


def test_a_500_carries_nothing_internal(
    client: TestClient, stored: StoredData, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"secret at {object()!r} with $argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")

    client.post("/api/auth/sign-up/email", json={"email": EMAIL, "password": PASSWORD, "name": "Leak"})
    monkeypatch.setattr("runwire.chats.service.create_chat", explode)
    stored.mark()
    response = client.post("/api/chats", json={"title": "x"})
    assert_refused(response, 500, "Internal Server Error")
    assert "secret" not in response.text and "argon2" not in response.text and "0x" not in response.text
    stored.assert_unchanged()


SQL_ERROR = (
    '(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "uq_user_email"\n'
    "DETAIL:  Key (email)=(ada@example.com) already exists.\n"
    '[SQL: INSERT INTO "user" (id, email, password_hash) VALUES (%(id)s::UUID, %(email)s, %(password_hash)s)]\n'
    "[parameters: {'id': UUID('0c7141b3-b3c8-49e1-8dcc-557f5cd64eb5'), 'email': 'ada@example.com', "
    "'password_hash': '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g'}]\n"
    "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
)


@pytest.mark.parametrize("traceback", [False, True])
def test_the_formatter_redacts_sql_parameters_hashes_and_addresses(traceback: bool) -> None:
    try:
        raise ValueError(SQL_ERROR + " in <Session object at 0x7f3a2b1c0d90>")
    except ValueError:
        record = logging.LogRecord("runwire.errors", logging.ERROR, __file__, 1, "failed: %s", (SQL_ERROR,), None)
        record.exc_info = sys.exc_info()
    line = JsonFormatter(traceback=traceback).format(record)
    for secret in ("ada@example.com", "$argon2", "INSERT", "password_hash", "0x7f3a2b1c0d90", "c2FsdHNhbHQ"):
        assert secret not in line
    parsed = json.loads(line)
    assert parsed["exception"]["type"] == "ValueError"
    assert "duplicate key value violates unique constraint" in parsed["exception"]["message"]
    assert ("traceback" in parsed) is traceback


@pytest.mark.parametrize(("level", "traceback"), [("INFO", False), ("WARNING", False), ("DEBUG", True)])
def test_tracebacks_are_logged_only_at_debug_level(level: str, traceback: bool) -> None:
    configure_logging(level)
    formatter = logging.getLogger("runwire").handlers[0].formatter
    assert isinstance(formatter, JsonFormatter) and formatter.traceback is traceback
