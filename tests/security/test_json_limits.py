"""JSON bodies past the contract's limits: numbers outside ±(2^53 - 1) or not finite, NUL characters, nesting deep
enough to exhaust a parser, and booleans where numbers belong. Each is a 400 naming the field, and changes nothing."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import StoredData, assert_refused

JSON = {"Content-Type": "application/json"}
RUNS = "/api/chats/{chatId}/workflow-runs"
WORKFLOW = "/api/workflows/{workflowId}"
DEEP = "[" * 5000 + "]" * 5000


def _steps(step: str) -> str:
    return '{"name": "w", "steps": [' + step + "]}"


def _delay(inputs: str = '{"seconds": 0}', extra: str = "") -> str:
    return _steps('{"id": "a", "toolId": "delay", "inputs": ' + inputs + extra + "}")


# (method, path, body, the field `details` must name)
SIGNED_IN_CASES = [
    ("POST", RUNS, '{"workflowId": "{workflowId}", "input": {"n": 18446744073709551616}}', "input.n"),
    ("POST", RUNS, '{"workflowId": "{workflowId}", "input": {"n": -18446744073709551616}}', "input.n"),
    ("POST", RUNS, '{"workflowId": "{workflowId}", "input": {"n": 9007199254740992}}', "input.n"),
    ("POST", RUNS, '{"workflowId": "{workflowId}", "input": {"n": NaN}}', "input.n"),
    ("POST", RUNS, '{"workflowId": "{workflowId}", "input": {"n": [1, -Infinity]}}', "input.n[1]"),
    ("POST", RUNS, '{"workflowId": "{workflowId}", "input": {"n": {"deep": 1e400}}}', "input.n.deep"),
    ("POST", RUNS, '{"workflowId": "{workflowId}", "input": {"s": "a\\u0000b"}}', "input.s"),
    ("POST", RUNS, '{"workflowId": "{workflowId}", "input": {"a\\u0000b": 1}}', "input.a\\u0000b"),
    ("POST", RUNS, '{"workflowId": "{workflowId}", "input": {"n": ' + DEEP + "}}", "body"),
    ("POST", RUNS, DEEP, "body"),
    ("POST", "/api/chats", '{"title": "a\\u0000"}', "title"),
    ("POST", "/api/chats", '{"title": NaN}', "title"),
    ("POST", "/api/chats", DEEP, "body"),
    ("POST", "/api/workflows", '{"name": "w\\u0000"}', "name"),
    ("POST", "/api/workflows", '{"name": "w", "description": "\\u0000"}', "description"),
    (
        "POST",
        "/api/workflows",
        _steps('{"id": "a", "name": "\\u0000", "toolId": "delay", "inputs": {"seconds": 0}}'),
        "steps[0].name",
    ),
    ("POST", "/api/workflows", _delay('{"seconds": "{{ input.x }}\\u0000"}'), "steps[0].inputs.seconds"),
    ("POST", "/api/workflows", _delay('{"seconds": Infinity}'), "steps[0].inputs.seconds"),
    ("POST", "/api/workflows", _delay(extra=', "timeoutSeconds": 1e400'), "steps[0].timeoutSeconds"),
    ("POST", "/api/workflows", _delay(extra=', "retries": 18446744073709551616'), "steps[0].retries"),
    ("POST", "/api/workflows", DEEP, "body"),
    ("PATCH", WORKFLOW, '{"name": "\\u0000"}', "name"),
    ("PATCH", WORKFLOW, '{"description": NaN}', "description"),
    ("PATCH", WORKFLOW, DEEP, "body"),
]

# Booleans are not numbers, nor are numbers written as text.
BOOLEAN_CASES = [
    ("POST", "/api/workflows", _delay(extra=', "retries": true'), "steps.0.retries"),
    ("POST", "/api/workflows", _delay(extra=', "timeoutSeconds": true'), "steps.0.timeoutSeconds"),
    ("POST", "/api/workflows", _delay(extra=', "retries": "1"'), "steps.0.retries"),
    ("POST", "/api/workflows", _delay('{"seconds": true}'), "steps[0].inputs.seconds"),
    ("POST", "/api/workflows", _delay('{"seconds": "1"}'), "steps[0].inputs.seconds"),
    (
        "POST",
        "/api/workflows",
        _steps(
            '{"id": "a", "toolId": "http_request", "inputs": {"method": "GET", "url": "http://example.com", '
            '"timeoutSeconds": true}}'
        ),
        "steps[0].inputs.timeoutSeconds",
    ),
    (
        "POST",
        "/api/workflows",
        _steps('{"id": "a", "toolId": "read_url", "inputs": {"url": "http://example.com", "maxChars": false}}'),
        "steps[0].inputs.maxChars",
    ),
    ("PATCH", WORKFLOW, _delay(extra=', "retries": false').replace('"name": "w", ', ""), "steps.0.retries"),
]


def _send(client: TestClient, world: dict[str, str], method: str, path: str, body: str) -> Any:  # a response
    return client.request(
        method, path.format(**world), content=body.replace("{workflowId}", world["workflowId"]), headers=JSON
    )


@pytest.mark.parametrize(("method", "path", "body", "field"), SIGNED_IN_CASES + BOOLEAN_CASES)
def test_refused_with_the_field_named(
    client: TestClient, world: dict[str, str], stored: StoredData, method: str, path: str, body: str, field: str
) -> None:
    stored.mark()
    assert_refused(_send(client, world, method, path, body), 400, "Bad Request", field)
    stored.assert_unchanged()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/auth/sign-up/email", '{"email": "a@b.co", "password": "long enough", "name": "A\\u0000"}', "name"),
        ("/api/auth/sign-up/email", '{"email": "a\\u0000@b.co", "password": "long enough", "name": "A"}', "email"),
        ("/api/auth/sign-up/email", '{"email": "a@b.co", "password": "long enough", "name": NaN}', "name"),
        ("/api/auth/sign-up/email", DEEP, "body"),
        ("/api/auth/sign-in/email", '{"email": "ada\\u0000@example.com", "password": "whatever"}', "email"),
        ("/api/auth/sign-in/email", '{"email": "ada@example.com", "password": "\\u0000"}', "password"),
        ("/api/auth/sign-in/email", '{"email": 1e400, "password": "x"}', "email"),
        ("/api/auth/sign-in/email", DEEP, "body"),
    ],
)
def test_public_routes_refuse_without_a_session(
    client: TestClient, world: dict[str, str], stored: StoredData, path: str, body: str, field: str
) -> None:
    client.cookies.clear()
    stored.mark()
    assert_refused(client.post(path, content=body, headers=JSON), 400, "Bad Request", field)
    stored.assert_unchanged()


@pytest.mark.parametrize(("method", "path", "body", "field"), SIGNED_IN_CASES[::3] + BOOLEAN_CASES[::3])
def test_a_bad_body_without_a_session_is_401(
    client: TestClient, world: dict[str, str], stored: StoredData, method: str, path: str, body: str, field: str
) -> None:
    client.cookies.clear()
    stored.mark()
    assert_refused(_send(client, world, method, path, body), 401, "Unauthorized")
    stored.assert_unchanged()


def test_the_largest_safe_integers_and_finite_floats_are_accepted(client: TestClient, world: dict[str, str]) -> None:
    body = '{"workflowId": "{workflowId}", "input": {"max": 9007199254740991, "min": -9007199254740991, "f": 1.5e300}}'
    response = _send(client, world, "POST", RUNS, body)
    assert response.status_code == 202, response.text
    run_id = response.json()["data"]["id"]
    detail = client.get(f"/api/chats/{world['chatId']}/workflow-runs/{run_id}")
    assert detail.status_code == 200
    assert detail.json()["data"]["input"] == {"max": 2**53 - 1, "min": -(2**53 - 1), "f": 1.5e300}
