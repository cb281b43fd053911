"""A run is queued just before its transaction commits; an executor that dequeues it first waits to see it."""

import time
import uuid
from typing import Any

from fastapi.testclient import TestClient

from runwire.chats.models import Chat
from runwire.runs import service
from runwire.runs.schemas import RunCreate
from tests.helpers import create_workflow, new_chat, step, wait_for_run


def test_a_run_whose_transaction_commits_after_it_was_queued_still_runs(
    client: TestClient, user: dict[str, Any]
) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, [step("say", "template", {"template": "hello"})])
    app: Any = client.app
    database, executor = app.state.database, app.state.executor

    with database.writing() as session:
        owned = session.get(Chat, uuid.UUID(chat["id"]))
        assert owned is not None
        data = RunCreate.model_validate({"workflowId": workflow["id"]})
        run = service.create_run(owned, data, user_id=uuid.UUID(user["id"]), enqueue=executor.enqueue, session=session)
        run_id = str(run.id)
        time.sleep(0.3)  # the executor dequeues the run meanwhile (PostgreSQL; SQLite makes it wait for the lock)

    ended = wait_for_run(client, chat["id"], run_id)
    assert ended["status"] == "completed"
    assert ended["steps"][0]["status"] == "completed"
