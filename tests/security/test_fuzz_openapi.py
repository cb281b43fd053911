"""Schemathesis over the real app's own OpenAPI schema, signed in, served over HTTP on SQLite and PostgreSQL: every
answer must be documented for its operation, and none may be a server error.

Cases are valid (positive) and invalid (negative) data for each operation; half of them aim at the user's own chat,
workflow and run rather than at random ids, so that they get past the ownership checks. The seed is fixed."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import status_code_conformance

from runwire.deps import PUBLIC_PATHS
from runwire.main import create_app
from tests.factories import make_settings
from tests.helpers import PASSWORD, wait_for

SEED = 20260601
EXAMPLES_PER_OPERATION = 30
EMAIL = "fuzz@example.com"
# The chat stream stays open until its client leaves, and schemathesis reads an event stream for the request timeout,
# so that timeout is short. The status line is due within it too: under a loaded machine it can come later, and the
# library's own retry of a timed-out request sends such a case again.
FUZZ_CONFIG = SchemathesisConfig.from_dict(
    {
        "request-timeout": 30,
        "operations": [{"include-path": "/api/chats/{chatId}/stream", "request-timeout": 1, "request-retries": 3}],
    }
)


@pytest.fixture
def served(tmp_path: Path, database_url: str | None, own_dbos: None) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, over real HTTP."""
    config = uvicorn.Config(
        create_app(make_settings(tmp_path, database_url=database_url)), host="127.0.0.1", port=0, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=60)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=60)


class Account:
    """The fuzzing user's session and resources, renewed when a case signs out or deletes them."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        response = requests.post(
            f"{base_url}/api/auth/sign-up/email", json={"email": EMAIL, "password": PASSWORD, "name": "Fuzz"}
        )
        assert response.status_code == 201, response.text
        self.user_id: str = response.json()["data"]["user"]["id"]
        self.cookies = {name: value for name, value in response.cookies.items() if value is not None}
        self.ids: dict[str, str] = {}

    def sign_in(self) -> None:
        response = requests.post(f"{self.base_url}/api/auth/sign-in/email", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 200, response.text
        self.cookies = {name: value for name, value in response.cookies.items() if value is not None}

    def _post(self, path: str, body: dict[str, Any]) -> str:
        response = requests.post(f"{self.base_url}{path}", json=body, cookies=self.cookies)
        assert response.status_code in (201, 202), response.text
        created: str = response.json()["data"]["id"]
        return created

    def renew_resources(self) -> None:
        chat_id = self._post("/api/chats", {"title": "fuzz"})
        steps = [{"id": "a", "toolId": "delay", "inputs": {"seconds": 0}}]
        workflow_id = self._post("/api/workflows", {"name": "fuzz", "steps": steps})
        run_id = self._post(f"/api/chats/{chat_id}/workflow-runs", {"workflowId": workflow_id})
        self.ids = {"userId": self.user_id, "chatId": chat_id, "workflowId": workflow_id, "workflowRunId": run_id}


def _fuzz(operation: Any, account: Account, failures: list[str]) -> None:
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, own=st.booleans())
    def check(case: Any, own: bool) -> None:
        if own and case.path_parameters:
            case.path_parameters = {name: account.ids.get(name, value) for name, value in case.path_parameters.items()}
        response = case.call(base_url=account.base_url, cookies=account.cookies)
        try:
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])
        except (Exception, BaseExceptionGroup) as failure:
            failures.append(f"{response.status_code} {case.as_curl_command()}\n{failure}")
        if response.status_code == 204 and case.method != "GET":
            if case.path.endswith("/sign-out"):
                account.sign_in()
            account.renew_resources()

    check()


@pytest.mark.slow
@pytest.mark.timeout(300)  # 30 examples for each of some 30 operations
def test_every_answer_is_documented_and_none_is_a_server_error(served: str) -> None:
    account = Account(served)
    schema = schemathesis.openapi.from_url(f"{served}/api/openapi.json", config=FUZZ_CONFIG)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operations += 1
        account.renew_resources()
        assert isinstance(result, Ok), result
        _fuzz(result.ok(), account, failures)
    assert operations >= 20
    assert not failures, "\n\n".join(failures[:20])


def test_the_schema_documents_the_error_shape_and_never_422(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert "422" not in statuses, (method, path)
            if path not in PUBLIC_PATHS:
                assert "401" in statuses, (method, path)
            if method != "get":
                assert {"403", "413", "415", "429"} <= statuses, (method, path)
            for status in statuses - {"200", "201", "202", "204"}:
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
