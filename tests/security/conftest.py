"""What every attack case asserts: the exact status, the contract's error shape, and that the stored data did not
change. Each case runs on SQLite and PostgreSQL through the `client` fixture."""

import pytest
from fastapi.testclient import TestClient

from tests.helpers import StoredData, create_workflow, new_chat, sign_up, step


@pytest.fixture
def stored(client: TestClient) -> StoredData:
    return StoredData(client)


@pytest.fixture
def world(client: TestClient) -> dict[str, str]:
    """A signed-in user with a chat and a one-step workflow, for the attacks that need a target."""
    user = sign_up(client)
    chat = new_chat(client)
    workflow = create_workflow(client, [step("a", "delay", {"seconds": 0})])
    return {"userId": user["id"], "chatId": chat["id"], "workflowId": workflow["id"]}
