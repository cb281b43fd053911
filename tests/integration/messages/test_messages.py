"""Messages: posting starts the named or the chat's reply workflow; every run a message started leaves exactly one
reply, stored with the run's final state; listing, paging and ownership as the runs list."""

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import new_chat, sign_up
from tests.helpers import create_workflow, step, wait_for_first_step
from tests.integration.messages.conftest import answered, messages, reply_chat, send


def test_a_message_without_a_workflow_starts_nothing(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    posted = send(client, chat["id"], "hello")
    assert posted["run"] is None
    message = posted["message"]
    assert set(message) == {"id", "chatId", "role", "content", "runId", "error", "createdAt"}
    assert (message["chatId"], message["role"], message["content"], message["runId"]) == (
        chat["id"],
        "user",
        "hello",
        None,
    )
    assert messages(client, chat["id"]) == [message]


def test_the_reply_workflow_answers_with_its_reply_template(client: TestClient, user: dict[str, Any]) -> None:
    steps = [step("shout", "template", {"template": "{{ input.message | upper }}{{ input.mark }}"})]
    chat = reply_chat(client, steps, reply="You said: {{ steps.shout.output.text }} ({{ input.message }})")
    posted = send(client, chat["id"], "hi there", input={"mark": "!"})
    run = posted["run"]
    assert run["status"] == "pending" and run["workflowId"] == chat["workflowId"]
    assert posted["message"]["runId"] == run["id"]
    detail = answered(client, chat["id"], run["id"])
    assert detail["status"] == "completed"
    assert detail["input"] == {"mark": "!", "message": "hi there"}
    question, reply = messages(client, chat["id"])
    assert question == posted["message"]
    assert (reply["role"], reply["runId"], reply["error"]) == ("assistant", run["id"], None)
    assert reply["content"] == "You said: HI THERE! (hi there)"


def test_without_a_reply_template_the_last_step_answers(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    texts = create_workflow(
        client,
        [step("a", "template", {"template": "first"}), step("b", "template", {"template": "last"}, dependsOn=["a"])],
    )
    data = create_workflow(client, [step("pick", "json_extract", {"data": {"n": [1, 2]}, "expression": "n"})])
    first = send(client, chat["id"], "one", workflowId=texts["id"])["run"]
    second = send(client, chat["id"], "two", workflowId=data["id"])["run"]
    answered(client, chat["id"], first["id"])
    answered(client, chat["id"], second["id"])
    replies = {m["runId"]: m["content"] for m in messages(client, chat["id"]) if m["role"] == "assistant"}
    assert replies == {first["id"]: "last", second["id"]: '{"result":[1,2]}'}


def test_failed_and_cancelled_runs_reply_with_their_error(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    failing = create_workflow(client, [step("bad", "json_extract", {"data": {}, "expression": "[[["})])
    slow = create_workflow(client, [step("wait", "delay", {"seconds": 30})])
    failed = send(client, chat["id"], "fail", workflowId=failing["id"])["run"]
    cancelled = send(client, chat["id"], "wait", workflowId=slow["id"])["run"]
    answered(client, chat["id"], failed["id"])
    wait_for_first_step(client, chat["id"], cancelled["id"])
    assert client.post(f"/api/chats/{chat['id']}/workflow-runs/{cancelled['id']}/cancel").status_code == 202
    answered(client, chat["id"], cancelled["id"])
    replies = {m["runId"]: m for m in messages(client, chat["id"]) if m["role"] == "assistant"}
    assert replies[failed["id"]]["error"]["code"] == "step_failed"
    assert replies[failed["id"]]["content"].startswith("The workflow run failed: Step 'bad' failed:")
    assert replies[cancelled["id"]]["error"]["code"] == "cancelled"
    assert replies[cancelled["id"]]["content"] == "The workflow run was cancelled before it could answer."


def test_a_reply_template_that_fails_fails_the_run(client: TestClient, user: dict[str, Any]) -> None:
    chat = reply_chat(client, [step("a", "template", {"template": "x"})], reply="{{ input.missing.deeper }}")
    run = send(client, chat["id"], "hi")["run"]
    detail = answered(client, chat["id"], run["id"])
    assert detail["status"] == "failed" and detail["steps"][0]["status"] == "completed"
    reply = messages(client, chat["id"])[-1]
    assert reply["error"]["code"] == detail["error"]["code"]
    assert "reply could not be rendered" in reply["content"]


def test_the_run_timeout_fails_the_run(client: TestClient, user: dict[str, Any]) -> None:
    chat = reply_chat(client, [step("wait", "delay", {"seconds": 60})], timeoutSeconds=1)
    assert client.get(f"/api/workflows/{chat['workflowId']}").json()["data"]["timeoutSeconds"] == 1
    run = send(client, chat["id"], "hi")["run"]
    detail = answered(client, chat["id"], run["id"])
    assert detail["status"] == "failed" and detail["error"]["code"] == "run_timeout"
    assert detail["steps"][0]["status"] == "cancelled"
    assert messages(client, chat["id"])[-1]["error"]["code"] == "run_timeout"


def test_listing_pages_and_orders_like_the_runs_list(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    sent = [send(client, chat["id"], f"m{i}")["message"] for i in range(5)]
    assert messages(client, chat["id"]) == sent
    path = f"/api/chats/{chat['id']}/messages"
    page = client.get(path, params={"limit": 2}).json()["data"]
    assert page["messages"] == sent[:2] and page["nextCursor"]
    page = client.get(path, params={"limit": 2, "cursor": page["nextCursor"]}).json()["data"]
    assert page["messages"] == sent[2:4]
    last = client.get(path, params={"limit": 2, "cursor": page["nextCursor"]}).json()["data"]
    assert last == {"messages": sent[4:], "nextCursor": None}
    newest = client.get(path, params={"order": "desc", "limit": 3}).json()["data"]
    assert newest["messages"] == sent[::-1][:3]
    assert client.get(path, params={"cursor": "nonsense"}).status_code == 400
    assert client.get(path, params={"limit": 0}).status_code == 400


def test_ownership_precedence_and_deletion(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    path = f"/api/chats/{chat['id']}/messages"
    assert client.post(path, json={"content": ""}).status_code == 400
    assert client.post(path, json={"content": "x" * 32001}).status_code == 400
    assert (
        client.post(path, json={"content": "x", "workflowId": "00000000-0000-4000-8000-000000000000"}).status_code
        == 404
    )
    assert (
        client.post("/api/chats/00000000-0000-4000-8000-000000000000/messages", json={"content": "x"}).status_code
        == 404
    )
    send(client, chat["id"], "mine")
    mine = create_workflow(client, [step("a", "template", {"template": "x"})])
    client.cookies.clear()
    assert client.get(path).status_code == 401
    assert client.post(path, json={"content": ""}).status_code == 401
    sign_up(client, "grace@example.com", "Grace")
    assert client.get(path).status_code == 403
    assert client.post(path, json={"content": "x"}).status_code == 403
    assert client.get(f"/api/chats/{chat['id']}/stream").status_code == 403
    other_chat = new_chat(client)
    response = client.post(f"/api/chats/{other_chat['id']}/messages", json={"content": "x", "workflowId": mine["id"]})
    assert response.status_code == 403
    assert client.patch(f"/api/chats/{other_chat['id']}", json={"workflowId": mine["id"]}).status_code == 403
    client.cookies.clear()
    client.post("/api/auth/sign-in/email", json={"email": "ada@example.com", "password": "correct horse battery"})
    assert client.delete(f"/api/chats/{chat['id']}").status_code == 204
    assert client.get(path).status_code == 404
    assert client.get(f"/api/chats/{chat['id']}/stream").status_code == 404


def test_patching_a_chat(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    flow = create_workflow(client, [step("a", "template", {"template": "x"})])
    path = f"/api/chats/{chat['id']}"
    assert client.patch(path, json={}).status_code == 400
    assert client.patch(path, json={"workflowId": "00000000-0000-4000-8000-000000000000"}).status_code == 404
    patched = client.patch(path, json={"workflowId": flow["id"], "title": "Renamed"}).json()["data"]
    assert (patched["workflowId"], patched["title"]) == (flow["id"], "Renamed")
    assert client.get(path).json()["data"]["workflowId"] == flow["id"]
    assert client.patch(path, json={"workflowId": None}).json()["data"]["workflowId"] is None
    created = client.post("/api/chats", json={"workflowId": flow["id"]}).json()["data"]
    assert created["workflowId"] == flow["id"]


def test_versions_pin_timeout_and_reply(client: TestClient, user: dict[str, Any]) -> None:
    flow = create_workflow(client, [step("a", "template", {"template": "x"})])
    assert (flow["timeoutSeconds"], flow["reply"], flow["version"]) == (None, None, 1)
    path = f"/api/workflows/{flow['id']}"
    assert client.patch(path, json={"name": "renamed"}).json()["data"]["version"] == 1
    updated = client.patch(path, json={"timeoutSeconds": 30, "reply": "{{ steps.a.output.text }}"}).json()["data"]
    assert (updated["timeoutSeconds"], updated["reply"], updated["version"]) == (30, "{{ steps.a.output.text }}", 2)
    assert client.patch(path, json={"steps": []}).status_code == 400  # the reply refers to step a
    new_steps = [step("a", "template", {"template": "y"})]
    assert client.patch(path, json={"steps": new_steps}).json()["data"]["timeoutSeconds"] == 30
    for bad in (
        {"timeoutSeconds": 0},
        {"timeoutSeconds": 86401},
        {"reply": "{{ steps.nope.output }}"},
        {"reply": "{{"},
    ):
        response = client.patch(path, json=bad)
        assert response.status_code == 400, bad
        assert response.json()["details"][0]["field"] in ("timeoutSeconds", "reply")
    assert client.patch(path, json={"reply": None, "timeoutSeconds": None}).json()["data"]["reply"] is None
