"""The chat stream: every run event of the chat and every new message, under one chat-wide id sequence."""

import threading
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.fake_model import FakeModel, Text
from tests.helpers import create_workflow, new_chat, read_stream, sse_events, step, wait_for
from tests.integration.messages.conftest import answered, llm_step, messages, reply_chat, send


def read_chat_stream(
    client: TestClient,
    chat_id: str,
    done: Callable[[list[dict[str, Any]]], bool],
    last_event_id: str | None = None,
    connected: threading.Event | None = None,
) -> list[dict[str, Any]]:
    """The chat stream's events until `done(events)` holds; the connection is then closed by this client."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    events: list[dict[str, Any]] = []
    with client.stream("GET", f"/api/chats/{chat_id}/stream", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        if connected is not None:
            connected.set()
        for event in sse_events(response.iter_lines()):
            events.append(event)
            if done(events):
                break
    return events


def replies(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    def seen(events: list[dict[str, Any]]) -> bool:
        created = [e for e in events if e["event"] == "message_created"]
        assistant: int = sum(e["data"]["message"]["role"] == "assistant" for e in created)
        return assistant >= count

    return seen


def test_the_chat_stream_matches_each_run_stream_event_for_event(talk: TestClient, fake_model: FakeModel) -> None:
    fake_model.script(Text(["one ", "two ", "three"], delay=0.12), Text(["four"]))
    chat = reply_chat(talk, [llm_step(includeChat=True)])
    template = create_workflow(talk, [step("t", "template", {"template": "{{ input.message }}!"})])
    connected = threading.Event()
    result: list[list[dict[str, Any]]] = []
    reader = threading.Thread(
        target=lambda: result.append(read_chat_stream(talk, chat["id"], replies(3), connected=connected))
    )
    reader.start()
    assert connected.wait(10)
    posted = [
        send(talk, chat["id"], "a"),
        send(talk, chat["id"], "b"),
        send(talk, chat["id"], "c", workflowId=template["id"]),
    ]
    reader.join(60)
    (events,) = result
    ids = [e["id"] for e in events]
    # One sequence, increasing in commit order (a new run takes a place of its own without an event of its own).
    assert ids == sorted(set(ids))
    for item in posted:
        run = item["run"]
        run_events = read_stream(talk, chat["id"], run["id"])
        in_chat = [e for e in events if e["event"] != "message_created" and e["data"]["runId"] == run["id"]]
        assert [(e["event"], {k: v for k, v in e["data"].items() if k != "runId"}) for e in in_chat] == [
            (e["event"], {k: v for k, v in e["data"].items() if k != "runId"}) for e in run_events
        ]
        created = [
            e["data"]["message"]
            for e in events
            if e["event"] == "message_created" and e["data"]["message"]["runId"] == run["id"]
        ]
        assert [m["role"] for m in created] == ["user", "assistant"]
        assert created[0] == item["message"]
        assert [e["event"] for e in events].index("message_created") < ids.index(in_chat[0]["id"])
    stored = messages(talk, chat["id"])
    assert [e["data"]["message"] for e in events if e["event"] == "message_created"] == stored
    deltas = [
        e["data"]["text"]
        for e in events
        if e["event"] == "step_output_delta" and e["data"]["runId"] == posted[0]["run"]["id"]
    ]
    assert "".join(deltas) == "one two three"


def test_resuming_with_the_last_id_misses_nothing(client: TestClient, user: dict[str, Any]) -> None:
    chat = reply_chat(client, [step("t", "template", {"template": "{{ input.message }}"})])
    first = send(client, chat["id"], "first")["run"]
    answered(client, chat["id"], first["id"])
    everything = read_chat_stream(client, chat["id"], replies(1), last_event_id="0")
    assert everything[0]["event"] == "message_created"
    assert everything[-1]["data"]["message"]["content"] == "first"
    middle = everything[3]["id"]
    rest = read_chat_stream(client, chat["id"], replies(1), last_event_id=str(middle))
    assert rest == [event for event in everything if event["id"] > middle]
    # Missed while away: a whole second turn.
    second = send(client, chat["id"], "second")["run"]
    answered(client, chat["id"], second["id"])
    resumed = read_chat_stream(client, chat["id"], replies(1), last_event_id=str(everything[-1]["id"]))
    assert resumed[0]["id"] > everything[-1]["id"] and resumed[0]["event"] == "message_created"
    assert resumed[-1]["data"]["message"]["content"] == "second"
    assert client.get(f"/api/chats/{chat['id']}/stream", headers={"Last-Event-ID": "x1"}).status_code == 400


def test_without_last_event_id_it_starts_live_and_a_deleted_chat_ends_it(
    client: TestClient, user: dict[str, Any]
) -> None:
    chat = new_chat(client)
    send(client, chat["id"], "before")
    connected = threading.Event()
    result: list[list[dict[str, Any]]] = []
    reader = threading.Thread(
        target=lambda: result.append(read_chat_stream(client, chat["id"], lambda _: False, connected=connected))
    )
    reader.start()
    assert connected.wait(10)
    wait_for(lambda: client.app.state.hub.notifier.subscriber_count() >= 1)  # type: ignore[attr-defined]
    send(client, chat["id"], "after")
    client.delete(f"/api/chats/{chat['id']}")
    reader.join(30)
    assert not reader.is_alive()
    (events,) = result
    assert [e["data"]["message"]["content"] for e in events] == ["after"]
    assert events[0]["id"] == 2
