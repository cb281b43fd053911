"""One `grep` of a run's id finds its whole story in the log: its creation with the request id that made it, its start
and end, and each step's, every executor line as JSON with the run id, step id, tool id, attempt and executor id.
No password, session cookie or template output appears in any line."""

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runwire.logs import JsonFormatter
from tests.helpers import PASSWORD, create_workflow, new_chat, sign_up, step, wait_for, wait_for_run

TEMPLATE_OUTPUT = "rendered-" + "3f9a61"  # what the template renders; its source never holds it whole


@pytest.fixture
def log_lines(client: TestClient) -> Iterator[list[str]]:
    """The lines the app's "runwire" logger writes, as written (tracebacks included, as at DEBUG level)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter(traceback=True))
    logger = logging.getLogger("runwire")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def run_story(client: TestClient, lines: list[str], request_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start a two-step run with `request_id`; the run, and every log line naming it once it has ended."""
    chat = new_chat(client)
    flow = create_workflow(
        client,
        [
            step("wait", "delay", {"seconds": 0.05}),
            step("show", "template", {"template": "{{ 'rendered-' ~ input.code }}"}, dependsOn=["wait"]),
        ],
    )
    response = client.post(
        f"/api/chats/{chat['id']}/workflow-runs",
        json={"workflowId": flow["id"], "input": {"code": "3f9a61"}},
        headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 202 and response.headers["x-request-id"] == request_id
    run: dict[str, Any] = response.json()["data"]
    done = wait_for_run(client, chat["id"], run["id"])
    assert done["steps"][1]["output"] == {"text": TEMPLATE_OUTPUT}

    def story() -> list[dict[str, Any]]:
        found = [json.loads(line) for line in lines if run["id"] in line]
        return found if any(line["message"] == "run ended" for line in found) else []

    return done, wait_for(story)


def test_one_grep_of_a_run_id_tells_its_story(client: TestClient, user: dict[str, Any], log_lines: list[str]) -> None:
    run, story = run_story(client, log_lines, "follow-me-1")
    messages = [line["message"] for line in story]
    assert messages[0] == "run created" and messages[-1] == "run ended"
    for expected in ("run started", "step started", "step ended"):
        assert expected in messages, messages
    created = story[0]
    assert created["request_id"] == "follow-me-1" and created["chat_id"] == run["chatId"]
    assert created["workflow_id"] == run["workflowId"]
    assert story[-1]["status"] == "completed"

    executor_lines = [line for line in story if line["logger"] != "runwire.access" and line is not created]
    assert executor_lines
    for line in executor_lines:
        assert line["run_id"] == run["id"] and line["executor_id"] == "local", line
    step_lines = [line for line in story if line["message"].startswith("step ")]
    assert len(step_lines) == 4
    for line in step_lines:
        assert {"step_id", "tool_id", "attempt"} <= set(line), line
    assert {(line["step_id"], line["tool_id"]) for line in step_lines} == {("wait", "delay"), ("show", "template")}
    ended = [line for line in step_lines if line["message"] == "step ended"]
    assert all(line["status"] == "completed" and line["attempt"] == 1 for line in ended)


def test_no_line_holds_a_password_a_session_cookie_or_a_template_output(
    client: TestClient, log_lines: list[str]
) -> None:
    sign_up(client, "logs@example.com", "Logs")
    signed_in = client.post("/api/auth/sign-in/email", json={"email": "logs@example.com", "password": PASSWORD})
    assert signed_in.status_code == 200
    cookie = client.cookies["runwire_session"]
    client.post("/api/auth/sign-in/email", json={"email": "logs@example.com", "password": PASSWORD + "wrong"})
    run_story(client, log_lines, "secret-check")
    assert log_lines
    for line in log_lines:
        for secret in (PASSWORD, cookie, TEMPLATE_OUTPUT, "$argon2"):
            assert secret not in line, line
