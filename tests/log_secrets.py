"""Every log line of the test suite, in-process and from `runwire` subprocesses (their `*.log` files under the
session's temporary directory), is searched at the end of the session for the secrets the tests use. A hit fails
the session's last test, naming the file and the secret."""

import logging
from collections.abc import Iterator

import pytest

from runwire.logs import JsonFormatter
from tests.helpers import PASSWORD

KNOWN_SECRETS = (
    PASSWORD,  # every test account's password
    "sk-test-7f3c9a1e5b2d4c6e8a0b",  # the llm tests' API key (tests/integration/messages)
    "sk-crash-test-0123456789",  # tests/system/test_llm_crash.py
    "metrics-token-5d1e0c",  # tests/integration/test_metrics.py
    "drain-metrics-token",  # tests/system/test_drain.py
    "hunter2-secret",  # the database password of the start-up tests
    "rendered-3f9a61",  # a template's output (tests/integration/test_run_logs.py)
    "$argon2",  # a password hash
)


@pytest.fixture(scope="session", autouse=True)
def suite_log_secrets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    base = tmp_path_factory.getbasetemp()
    handler = logging.FileHandler(base / "runwire-suite.log", encoding="utf-8")
    handler.setFormatter(JsonFormatter(traceback=True))
    logger = logging.getLogger("runwire")
    logger.addHandler(handler)
    yield
    logger.removeHandler(handler)
    handler.close()
    found = [
        f"{file}: {secret!r}"
        for file in sorted(base.rglob("*.log"))
        for secret in KNOWN_SECRETS
        if secret in file.read_text(encoding="utf-8", errors="replace")
    ]
    assert not found, "secrets in the suite's logs:\n" + "\n".join(found)
