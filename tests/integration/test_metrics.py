"""`GET /api/metrics`: guarded by RUNWIRE_METRICS_TOKEN (404 unset, 401 wrong), Prometheus's text format, and what it
counts: requests by route template, runs, steps by tool id, the queue, streams, the pool, template limits and model
calls. No label carries an id or anything a user wrote."""

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from runwire import metrics
from tests.fake_model import FakeModel
from tests.helpers import create_workflow, new_chat, read_stream, start_run, step, wait_for, wait_for_run
from tests.security.test_templates import ENDLESS

TOKEN = "metrics-token-5d1e0c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
USER_TEXT = "Grace's very own words"


@pytest.fixture
def token(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shared app answers metrics for TOKEN during the test."""
    monkeypatch.setattr(client.app.state.settings, "metrics_token", SecretStr(TOKEN))  # type: ignore[attr-defined]
    return TOKEN


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the metrics: (name, sorted labels) -> value."""
    response = client.get("/api/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == metrics.CONTENT_TYPE
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def assert_no_user_data(text: str) -> None:
    for line in text.splitlines():
        if not line.startswith("#") and "{" in line:
            assert not UUID.search(line), line
            assert USER_TEXT not in line and "ada@example.com" not in line, line


def test_metrics_answer_404_without_a_token_set(client: TestClient) -> None:
    response = client.get("/api/metrics", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"


def test_metrics_refuse_a_missing_or_wrong_token(client: TestClient, token: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Bearer"}):
        response = client.get("/api/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"] == "Unauthorized"
    assert client.get("/api/metrics", headers=AUTH).status_code == 200


def test_metrics_count_requests_runs_steps_and_the_queue(client: TestClient, user: dict[str, Any], token: str) -> None:
    before = scrape(client)
    chat = new_chat(client, title=USER_TEXT)
    flow = create_workflow(
        client,
        [
            step("wait", "delay", {"seconds": 0.05}),
            step("greet", "template", {"template": f"{USER_TEXT} {{{{ input.name }}}}"}, dependsOn=["wait"]),
        ],
    )
    run = start_run(client, chat["id"], flow["id"], {"name": USER_TEXT})
    assert wait_for_run(client, chat["id"], run["id"])["status"] == "completed"
    read_stream(client, chat["id"], run["id"])

    # A run's end is counted once its transaction has committed, a moment after the API shows it.
    def counted() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        samples = scrape(client)
        ended = value(samples, "runwire_runs_ended_total", status="completed")
        return samples if ended > value(before, "runwire_runs_ended_total", status="completed") else {}

    after = wait_for(counted)
    route = "/api/chats/{chatId}/workflow-runs/{workflowRunId}"
    assert value(after, "runwire_http_requests_total", route=route, method="GET", status="200") > value(
        before, "runwire_http_requests_total", route=route, method="GET", status="200"
    )
    assert value(after, "runwire_http_request_duration_seconds_count", route=route, method="GET") >= 1
    for name in ("runwire_runs_created_total", "runwire_runs_started_total"):
        assert value(after, name) >= value(before, name) + 1, name
    for tool_id in ("delay", "template"):
        count = "runwire_step_duration_seconds_count"
        assert value(after, count, tool_id=tool_id, status="completed") >= 1 + value(
            before, count, tool_id=tool_id, status="completed"
        )
    assert value(after, "runwire_queue_pending_runs") == 0
    assert value(after, "runwire_queue_oldest_pending_age_seconds") == 0
    assert value(after, "runwire_db_pool_size") >= 1
    for name in ("runwire_open_streams", "runwire_db_pool_connections_in_use", "runwire_draining"):
        assert (name, ()) in after, name
    assert_no_user_data(client.get("/api/metrics", headers=AUTH).text)


def test_the_queue_shows_a_run_waiting_behind_its_chats_running_run(
    client: TestClient, user: dict[str, Any], token: str
) -> None:
    chat = new_chat(client)
    flow = create_workflow(client, [step("wait", "delay", {"seconds": 30})])
    first = start_run(client, chat["id"], flow["id"])
    wait_for_run(client, chat["id"], first["id"], {"running"})
    start_run(client, chat["id"], flow["id"])

    samples = scrape(client)
    assert value(samples, "runwire_queue_pending_runs") == 1
    assert value(samples, "runwire_runs_running") == 1
    assert value(samples, "runwire_queue_oldest_pending_age_seconds") > 0
    # Its chat's own run holds it up, not the executors: nothing is stuck.
    assert value(samples, "runwire_queue_oldest_ready_age_seconds") == 0


def test_a_template_over_its_time_is_counted_as_killed(client: TestClient, user: dict[str, Any], token: str) -> None:
    before = value(scrape(client), "runwire_template_renders_limited_total", outcome="killed_timeout")
    chat = new_chat(client)
    flow = create_workflow(client, [step("spin", "template", {"template": ENDLESS})])
    run = start_run(client, chat["id"], flow["id"])
    assert wait_for_run(client, chat["id"], run["id"], timeout=30)["status"] == "failed"
    after = value(scrape(client), "runwire_template_renders_limited_total", outcome="killed_timeout")
    assert after == before + 1


@pytest.fixture
def fake_model() -> Iterator[FakeModel]:
    model = FakeModel()
    yield model
    model.close()


def test_model_calls_and_tokens_are_counted(
    app_factory: Callable[..., TestClient], fake_model: FakeModel, database_url: str | None
) -> None:
    if database_url is not None:
        pytest.skip("counting model calls does not depend on the backend")
    client = app_factory(llm_base_url=fake_model.base_url, llm_model="fake-model", metrics_token=SecretStr(TOKEN))
    client.post("/api/auth/sign-up/email", json={"email": "ada@example.com", "password": "x" * 12, "name": "Ada"})
    before = scrape(client)
    chat = new_chat(client)
    flow = create_workflow(client, [step("answer", "llm", {"prompt": USER_TEXT})])
    run = start_run(client, chat["id"], flow["id"])
    assert wait_for_run(client, chat["id"], run["id"])["status"] == "completed"
    after = scrape(client)
    assert (
        value(after, "runwire_model_calls_total", outcome="ok")
        == value(before, "runwire_model_calls_total", outcome="ok") + 1
    )
    for kind in ("input", "output"):
        assert value(after, "runwire_model_tokens_total", kind=kind) > value(
            before, "runwire_model_tokens_total", kind=kind
        )
    assert_no_user_data(client.get("/api/metrics", headers=AUTH).text)


def test_a_method_or_path_a_client_makes_up_adds_no_series(client: TestClient, token: str) -> None:
    for number in range(3):
        client.request(f"BREW{number}", f"/api/made-up-{number}")
        client.get(f"/api/made-up-{number}/{USER_TEXT}")
    text = client.get("/api/metrics", headers=AUTH).text
    assert "BREW" not in text and "made-up" not in text
    assert 'runwire_http_requests_total{method="other",route="<unmatched>"' in text
