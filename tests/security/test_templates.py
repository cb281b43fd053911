"""Templates are untrusted code: rendered in worker processes bounded in time, memory and output, never on the
event loop nor inside a transaction. A template past its bounds fails only its own step, with `template_limit`."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import (
    PASSWORD,
    StoredData,
    assert_refused,
    create_workflow,
    get_run,
    new_chat,
    sign_up,
    start_run,
    step,
    wait_for_first_step,
    wait_for_run,
)

SPIN = "{% for i in range(20000) %}{% for j in range(20000) %}{% endfor %}{% endfor %}done"
# SPIN's 400 million turns can end within seconds on an idle machine; this one cannot end in any test's time.
ENDLESS = (
    "{% for i in range(20000) %}{% for j in range(20000) %}{% for k in range(20000) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)
LEAK_MARKERS = ("INSERT", "UPDATE", "SELECT", "parameters", "0x7f", "Traceback", "psycopg", "sqlalchemy")

# (template, the failed step's error code): each builds tens of millions of characters, or more.
OVERSIZED = [
    ("{{ '%050000000d' % 1 }}", "template_limit"),
    ("{{ 'x'|center(50000000) }}", "template_limit"),
    ("{{ '{:>50000000}'.format('x') }}", "template_limit"),
    ("{{ 'ab'|replace('', 'x' * 500000) }}", "template_limit"),
    (
        "{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "template_limit",
    ),
    ("{{ 'x' * 900000 }}{{ 'y' * 900000 }}", "template_limit"),
    ("{{ (((2**1000)**1000)**50) }}", "invalid_template"),
    (SPIN, "template_limit"),
]


def _failed_step(done: dict[str, Any]) -> dict[str, Any]:
    assert done["status"] == "failed", done
    failed: list[dict[str, Any]] = [s for s in done["steps"] if s["status"] == "failed"]
    assert len(failed) == 1, done
    return failed[0]


def _assert_no_leak(text: str) -> None:
    for marker in LEAK_MARKERS:
        assert marker not in text, text


def test_oversized_and_endless_templates_fail_their_step_with_template_limit(
    client: TestClient, user: dict[str, Any]
) -> None:
    runs = []
    for template, _ in OVERSIZED:
        chat = new_chat(client)
        workflow = create_workflow(client, [step("t", "template", {"template": template})])
        runs.append((chat["id"], start_run(client, chat["id"], workflow["id"])["id"]))
    for (chat_id, run_id), (template, code) in zip(runs, OVERSIZED, strict=True):
        done = wait_for_run(client, chat_id, run_id, timeout=60)
        failed = _failed_step(done)
        assert failed["error"]["code"] == code, (template, failed["error"])
        assert done["error"]["code"] == "step_failed"
        _assert_no_leak(failed["error"]["message"] + done["error"]["message"])
        assert failed["output"] is None


def test_an_endless_template_holds_up_no_one_else(app_factory: Callable[..., TestClient]) -> None:
    # A render limit (CPU seconds of the render itself) well past what the other user's work takes.
    client = app_factory(template_timeout_seconds=8)
    sign_up(client, "mallory@example.com", "Mallory")
    abusive = new_chat(client)
    spin = create_workflow(client, [step("data", "json_extract", {"data": ENDLESS, "expression": "@"})])
    spun = start_run(client, abusive["id"], spin["id"])
    wait_for_first_step(client, abusive["id"], spun["id"])

    # While the template renders: another user signs up, signs in, creates a chat and runs a workflow to the end.
    other = TestClient(client.app, raise_server_exceptions=False)
    sign_up(other, "ada@example.com", "Ada")
    assert other.post("/api/auth/sign-in/email", json={"email": "ada@example.com", "password": PASSWORD}).is_success
    chat = new_chat(other)
    quick = create_workflow(other, [step("say", "template", {"template": "hi {{ input.name }}"})])
    done = wait_for_run(other, chat["id"], start_run(other, chat["id"], quick["id"], {"name": "Ada"})["id"])
    assert done["steps"][0]["output"] == {"text": "hi Ada"}
    assert get_run(client, abusive["id"], spun["id"])["status"] == "running"

    failed = _failed_step(wait_for_run(client, abusive["id"], spun["id"], timeout=60))
    assert failed["error"]["code"] == "template_limit"
    assert failed["inputs"] is None


def test_the_step_timeout_bounds_rendering(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("t", "template", {"template": SPIN}, timeoutSeconds=0.5)])
    failed = _failed_step(wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"]))
    assert failed["error"]["code"] == "timeout"


def test_cancelling_stops_the_render(app_factory: Callable[..., TestClient]) -> None:
    # One template worker and a long template limit: a render left going would keep the next one waiting.
    client = app_factory(template_workers=1, template_timeout_seconds=60)
    sign_up(client)
    chat = new_chat(client)
    workflow = create_workflow(client, [step("t", "template", {"template": SPIN})])
    run = start_run(client, chat["id"], workflow["id"])
    wait_for_first_step(client, chat["id"], run["id"])
    assert client.post(f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/cancel").status_code == 202
    assert wait_for_run(client, chat["id"], run["id"])["status"] == "cancelled"

    other_chat = new_chat(client)
    quick = create_workflow(client, [step("t", "template", {"template": "after"})])
    done = wait_for_run(client, other_chat["id"], start_run(client, other_chat["id"], quick["id"])["id"], timeout=20)
    assert done["steps"][0]["output"] == {"text": "after"}


@pytest.mark.parametrize(
    ("template", "code"),
    [
        ("x{{ '\\x00' }}y", "invalid_template"),
        ("{{ input.items }}", "invalid_template"),
        ("shown: {{ input.items }}", "invalid_template"),
        ("{{ input.name.upper }}", "invalid_template"),
    ],
)
def test_what_a_template_cannot_show_fails_its_step_cleanly(
    client: TestClient, user: dict[str, Any], template: str, code: str
) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("t", "template", {"template": template})])
    run = start_run(client, chat["id"], workflow["id"], {"name": "Ada"})
    done = wait_for_run(client, chat["id"], run["id"])
    failed = _failed_step(done)
    assert failed["error"]["code"] == code
    _assert_no_leak(failed["error"]["message"] + done["error"]["message"])
    assert "built-in method" not in failed["error"]["message"]


def test_rendered_inputs_outside_the_limits_fail_the_step(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("wait", "delay", {"seconds": "{{ 2 ** 64 }}"})])
    failed = _failed_step(wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"]))
    assert failed["error"]["code"] == "invalid_template"
    assert "2^53" in failed["error"]["message"]


def test_an_output_over_the_limit_fails_with_output_too_large(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(max_step_output_bytes=64 * 1024)
    sign_up(client)
    chat = new_chat(client)
    twice = step("twice", "json_extract", {"data": "{{ input.big }}", "expression": "[@, @]"})
    run = start_run(client, chat["id"], create_workflow(client, [twice])["id"], {"big": "x" * 40_000})
    failed = _failed_step(wait_for_run(client, chat["id"], run["id"]))
    assert failed["error"]["code"] == "output_too_large"
    assert failed["output"] is None
    # The detail holds the run's input and the step's rendered inputs (40 kB each), not the 80 kB output.
    assert len(client.get(f"/api/chats/{chat['id']}/workflow-runs/{run['id']}").content) < 2 * 40_000 + 4_000


def test_an_output_with_a_nul_fails_with_invalid_output(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("nul", "json_extract", {"data": {}, "expression": '`"a\\u0000b"`'})])
    done = wait_for_run(client, chat["id"], start_run(client, chat["id"], workflow["id"])["id"])
    failed = _failed_step(done)
    assert failed["error"]["code"] == "invalid_output"
    _assert_no_leak(failed["error"]["message"] + done["error"]["message"])


@pytest.mark.parametrize(
    "template",
    [
        "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
        "{{ " + "1+" * 100_000 + "1 }}",
        "{% if 1 %}" * 2000 + "x" + "{% endif %}" * 2000,
    ],
    ids=["parentheses-300-deep", "sum-of-100000", "if-2000-deep"],
)
def test_templates_nested_past_the_parser_are_refused_at_save(
    client: TestClient, user: dict[str, Any], stored: StoredData, template: str
) -> None:
    stored.mark()
    body = {"name": "deep", "steps": [step("t", "template", {"template": template})]}
    response = client.post("/api/workflows", json=body)
    refusal = assert_refused(response, 400, "Bad Request", "steps[0].inputs.template")
    _assert_no_leak(refusal["message"])
    stored.assert_unchanged()
