"""A fake Chat Completions server, and an app pointed at it."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fake_model import FakeModel
from tests.helpers import create_workflow, new_chat, sign_up, wait_for_run

API_KEY = "sk-test-7f3c9a1e5b2d4c6e8a0b"


@pytest.fixture
def fake_model() -> Iterator[FakeModel]:
    model = FakeModel(api_key=API_KEY)
    yield model
    model.close()


@pytest.fixture
def talk(app_factory: Callable[..., TestClient], fake_model: FakeModel) -> TestClient:
    """A signed-in client of an app whose llm tool talks to the fake model."""
    client = app_factory(
        llm_base_url=fake_model.base_url, llm_api_key=API_KEY, llm_model="fake-model", llm_read_timeout_seconds=10
    )
    sign_up(client)
    return client


def llm_step(step_id: str = "answer", **inputs: Any) -> dict[str, Any]:
    return {"id": step_id, "toolId": "llm", "inputs": {"prompt": "{{ input.message }}", **inputs}}


def reply_chat(client: TestClient, steps: list[dict[str, Any]], **workflow: Any) -> dict[str, Any]:
    """A chat whose reply workflow has these steps."""
    flow = create_workflow(client, steps) if not workflow else _workflow(client, steps, workflow)
    chat = new_chat(client)
    response = client.patch(f"/api/chats/{chat['id']}", json={"workflowId": flow["id"]})
    assert response.status_code == 200, response.text
    patched: dict[str, Any] = response.json()["data"]
    return patched


def _workflow(client: TestClient, steps: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/workflows", json={"name": "talk", "steps": steps, **extra})
    assert response.status_code == 201, response.text
    flow: dict[str, Any] = response.json()["data"]
    return flow


def send(client: TestClient, chat_id: str, content: str, **extra: Any) -> dict[str, Any]:
    response = client.post(f"/api/chats/{chat_id}/messages", json={"content": content, **extra})
    assert response.status_code == 201, response.text
    posted: dict[str, Any] = response.json()["data"]
    return posted


def messages(client: TestClient, chat_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/chats/{chat_id}/messages")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]["messages"]
    return found


def answered(client: TestClient, chat_id: str, run_id: str) -> dict[str, Any]:
    """The run, once ended, after checking that its reply is stored with it."""
    run = wait_for_run(client, chat_id, run_id)
    replies = [m for m in messages(client, chat_id) if m["runId"] == run_id and m["role"] == "assistant"]
    assert len(replies) == 1, replies
    return run
