"""The cached list is exact: at every event of a running run it is what the database holds, and a 304 is never
served for a list that changed."""

from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import create_workflow, new_chat, start_run, step, wait_for_first_step, wait_for_run
from tests.list_exactness import QUIET_STEPS, ListGet, assert_served_as_stored


def _list_get(client: TestClient, chat_id: str) -> ListGet:
    def get() -> tuple[dict[str, Any], str]:
        response = client.get(f"/api/chats/{chat_id}/workflow-runs")
        assert response.status_code == 200
        return response.json(), response.headers["etag"]

    return get


def test_at_every_event_the_list_is_what_the_database_holds(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    workflow = create_workflow(client, QUIET_STEPS)
    run = start_run(client, chat["id"], workflow["id"])
    engine = client.app.state.database.engine  # type: ignore[attr-defined]
    get = _list_get(client, chat["id"])
    compared = 0
    with client.stream("GET", f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/stream") as events:
        for line in events.iter_lines():
            if line.startswith("event: "):
                compared += assert_served_as_stored(engine, chat["id"], [get, get])
    assert compared >= 2 * 7  # run_started, 3 x (step_started, step_completed), run_completed


def test_a_304_is_never_served_for_a_changed_list(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    path = f"/api/chats/{chat['id']}/workflow-runs"
    slow = create_workflow(client, [step("wait", "delay", {"seconds": 30})])

    def etag_now() -> str:
        response = client.get(path)
        assert response.status_code == 200
        return str(response.headers["etag"])

    def changed_since(etag: str) -> None:
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 200 and again.headers["etag"] != etag

    empty = etag_now()
    assert client.get(path, headers={"If-None-Match": empty}).status_code == 304
    first = start_run(client, chat["id"], slow["id"])  # a new run adds no event; the list changed all the same
    changed_since(empty)
    queued = etag_now()
    second = start_run(client, chat["id"], slow["id"])
    changed_since(queued)
    wait_for_first_step(client, chat["id"], first["id"])
    running = etag_now()
    assert client.get(path, headers={"If-None-Match": running}).status_code == 304
    assert client.post(f"{path}/{second['id']}/cancel").status_code == 202
    changed_since(running)
    before_cancel = etag_now()
    assert client.post(f"{path}/{first['id']}/cancel").status_code == 202
    wait_for_run(client, chat["id"], first["id"])
    changed_since(before_cancel)
