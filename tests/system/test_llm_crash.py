"""A `runwire serve` killed (SIGKILL) while a model streams its answer: the restarted executor runs the step again,
and the run's reply is stored exactly once, with the run's final state."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import fresh_postgres_database
from tests.fake_model import FakeModel, Text
from tests.system.conftest import Server
from tests.system.test_serve import signed_in, wait_for_status

API_KEY = "sk-crash-test-0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
        return
    with fresh_postgres_database() as url:
        yield {"RUNWIRE_DATABASE_URL": url}


def test_sigkill_mid_stream_then_the_reply_is_stored_once(tmp_path: Path, database_env: dict[str, str]) -> None:
    model = FakeModel(api_key=API_KEY)
    model.script(Text(["token "] * 200, delay=0.05))  # about 10 s; the retry after the restart gets the echo
    env = {
        **database_env,
        "RUNWIRE_LLM_BASE_URL": model.base_url,
        "RUNWIRE_LLM_API_KEY": API_KEY,
        "RUNWIRE_LLM_MODEL": "fake-model",
    }
    server = Server(tmp_path / "data", tmp_path / "server.log", env)
    try:
        server.start()
        client = signed_in(server)
        workflow = client.post(
            "/api/workflows",
            json={
                "name": "talk",
                "steps": [{"id": "answer", "toolId": "llm", "inputs": {"prompt": "{{ input.message }}"}}],
            },
        ).json()["data"]
        chat = client.post("/api/chats", json={"workflowId": workflow["id"]}).json()["data"]
        posted = client.post(f"/api/chats/{chat['id']}/messages", json={"content": "hello"}).json()["data"]
        path = f"/api/chats/{chat['id']}/workflow-runs/{posted['run']['id']}"
        deadline = time.monotonic() + 30
        while not (model.received and len(model.received[0].chunk_times) >= 20):
            assert time.monotonic() < deadline, "the model was not streaming"
            time.sleep(0.05)
        server.kill()

        server.start()
        restarted = httpx.Client(base_url=server.url, cookies=client.cookies, timeout=10)
        done = wait_for_status(restarted, path, {"completed", "failed", "cancelled"}, timeout=60)
        assert done["status"] == "completed", done
        assert done["steps"][0]["attempts"] == 2
        assert done["steps"][0]["output"]["text"] == "echo: hello"
        listed: list[dict[str, Any]] = restarted.get(f"/api/chats/{chat['id']}/messages").json()["data"]["messages"]
        assert [(m["role"], m["runId"]) for m in listed] == [("user", done["id"]), ("assistant", done["id"])]
        assert listed[1]["content"] == "echo: hello" and listed[1]["error"] is None
        assert len(model.requests) == 2
        assert API_KEY not in server.log_path.read_text()
    finally:
        server.stop()
        model.close()
