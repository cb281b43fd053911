"""The llm tool against a real HTTP server speaking the Chat Completions protocol, through the real openai SDK."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fake_model import Broken, Failure, FakeModel, Text, ToolCalls
from tests.helpers import create_workflow, new_chat, read_stream, step, wait_for, wait_for_first_step
from tests.integration.messages.conftest import API_KEY, answered, llm_step, messages, reply_chat, send


def test_a_streamed_answer_becomes_deltas_output_and_reply(talk: TestClient, fake_model: FakeModel) -> None:
    fake_model.script(Text(["Hel", "lo, ", "Ada", "!"], delay=0.15))
    chat = reply_chat(talk, [llm_step(system="Be brief.", temperature=0.5, maxTokens=50)])
    run = send(talk, chat["id"], "Hi")["run"]
    detail = answered(talk, chat["id"], run["id"])
    assert detail["status"] == "completed", detail
    output = detail["steps"][0]["output"]
    assert output == {
        "text": "Hello, Ada!",
        "model": "fake-model",
        "finishReason": "stop",
        "usage": {"inputTokens": 20, "outputTokens": 4},
        "toolCalls": [],
    }
    events = read_stream(talk, chat["id"], run["id"])
    deltas = [e["data"] for e in events if e["event"] == "step_output_delta"]
    assert deltas and all(d["stepId"] == "answer" for d in deltas)
    assert "".join(d["text"] for d in deltas) == "Hello, Ada!"
    kinds = [e["event"] for e in events]
    assert kinds.index("step_output_delta") > kinds.index("step_started")
    assert max(i for i, k in enumerate(kinds) if k == "step_output_delta") < kinds.index("step_completed")
    (request,) = fake_model.received
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == "fake-model" and request.body["stream"] is True
    assert request.body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert (request.body["temperature"], request.body["max_tokens"]) == (0.5, 50)
    assert "tools" not in request.body
    assert messages(talk, chat["id"])[-1]["content"] == "Hello, Ada!"


def test_history_is_the_chat_before_each_message_in_order(talk: TestClient, fake_model: FakeModel) -> None:
    chat = reply_chat(talk, [llm_step(includeChat=True)])
    send(talk, chat["id"], "no run", workflowId=None)  # the chat's workflow answers this one too
    first = send(talk, chat["id"], "first")["run"]
    second = send(talk, chat["id"], "second")["run"]  # sent before the first is answered
    for run in (first, second):
        answered(talk, chat["id"], run["id"])
    histories = [r["messages"] for r in fake_model.requests]
    assert histories[0] == [{"role": "user", "content": "no run"}]
    assert histories[1] == [
        {"role": "user", "content": "no run"},
        {"role": "assistant", "content": "echo: no run"},
        {"role": "user", "content": "first"},
    ]
    assert histories[2] == [
        *histories[1],
        {"role": "assistant", "content": "echo: first"},
        {"role": "user", "content": "second"},
    ]
    listed = messages(talk, chat["id"])
    assert [m["content"] for m in listed if m["role"] == "user"] == ["no run", "first", "second"]
    position = {(m["role"], m["runId"]): index for index, m in enumerate(listed)}
    for question in (m for m in listed if m["role"] == "user"):
        assert position[("assistant", question["runId"])] > position[("user", question["runId"])]
    replies = [m["content"] for m in listed if m["role"] == "assistant"]
    assert replies == ["echo: no run", "echo: first", "echo: second"]


def test_tool_calls_run_through_the_tool_machinery(talk: TestClient, fake_model: FakeModel) -> None:
    fake_model.script(
        ToolCalls([("json_extract", {"data": {"a": [1, 2, 3]}, "expression": "length(a)"}), ("template", {"nope": 1})]),
        ToolCalls([("http_request", {"method": "GET", "url": "http://127.0.0.1:9/secret"})]),
        Text(["three"]),
    )
    chat = reply_chat(talk, [llm_step(tools=["json_extract", "template", "http_request"])])
    run = send(talk, chat["id"], "count")["run"]
    detail = answered(talk, chat["id"], run["id"])
    output = detail["steps"][0]["output"]
    assert output["text"] == "three"
    calls = output["toolCalls"]
    assert calls[0] == {
        "toolId": "json_extract",
        "inputs": {"data": {"a": [1, 2, 3]}, "expression": "length(a)"},
        "output": {"result": 3},
    }
    assert calls[1]["toolId"] == "template" and calls[1]["error"]["code"] == "invalid_inputs"
    assert calls[2]["toolId"] == "http_request" and calls[2]["error"]["code"] == "blocked_address"
    first, second, third = fake_model.requests
    offered = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert set(offered) == {"json_extract", "template", "http_request"}
    assert offered["json_extract"]["parameters"]["properties"].keys() == {"data", "expression"}
    tool_messages = [m for m in second["messages"] if m["role"] == "tool"]
    assert json.loads(tool_messages[0]["content"]) == {"result": 3}
    assert "error" in json.loads(tool_messages[1]["content"])
    assert second["messages"][-3]["tool_calls"][0]["function"]["name"] == "json_extract"
    assert "error" in json.loads(third["messages"][-1]["content"])
    logs = " | ".join(entry["message"] for entry in detail["steps"][0]["logs"])
    assert "tool call json_extract completed" in logs and "tool call template failed" in logs


def test_max_turns_json_answers_and_model_errors_fail_the_step(talk: TestClient, fake_model: FakeModel) -> None:
    chat = new_chat(talk)
    loop = create_workflow(talk, [llm_step(tools=["template"], maxTurns=2)])
    json_flow = create_workflow(talk, [llm_step(responseFormat="json")])
    plain = create_workflow(talk, [llm_step()])
    fake_model.script(
        ToolCalls([("template", {"template": "a"})]),
        ToolCalls([("template", {"template": "b"})]),
        Text(['{"answer": ', "42}"]),
        Text(["not json"]),
        Failure(500, "The engine is overloaded."),
        Broken(),
    )
    runs = [
        send(talk, chat["id"], "loop", workflowId=loop["id"])["run"],
        send(talk, chat["id"], "json", workflowId=json_flow["id"])["run"],
        send(talk, chat["id"], "json", workflowId=json_flow["id"])["run"],
        send(talk, chat["id"], "err", workflowId=plain["id"])["run"],
        send(talk, chat["id"], "broken", workflowId=plain["id"])["run"],
    ]
    looped, parsed, unparsed, failed, broken = (answered(talk, chat["id"], r["id"])["steps"][0] for r in runs)
    assert looped["error"]["code"] == "max_turns" and "maxTurns" in looped["error"]["message"]
    assert parsed["output"]["json"] == {"answer": 42}
    assert fake_model.requests[2]["response_format"] == {"type": "json_object"}
    assert unparsed["error"] == {"code": "invalid_json", "message": "The model's answer is not valid JSON."}
    assert failed["error"]["code"] == "model_error"
    assert failed["error"]["message"] == "The model endpoint answered 500: The engine is overloaded."
    assert broken["error"]["code"] == "model_error" and "protocol" in broken["error"]["message"]


def test_cancelling_the_run_closes_the_model_stream(talk: TestClient, fake_model: FakeModel) -> None:
    fake_model.script(Text(["slow "] * 200, delay=0.1))
    chat = reply_chat(talk, [llm_step()])
    run = send(talk, chat["id"], "take your time")["run"]
    wait_for(lambda: fake_model.received and fake_model.received[0].chunk_times)
    wait_for_first_step(talk, chat["id"], run["id"])
    assert talk.post(f"/api/chats/{chat['id']}/workflow-runs/{run['id']}/cancel").status_code == 202
    assert fake_model.received[0].disconnected.wait(10)
    sent_at_close = len(fake_model.received[0].chunk_times)
    assert sent_at_close < 200
    detail = answered(talk, chat["id"], run["id"])
    assert detail["status"] == "cancelled" and detail["steps"][0]["status"] == "cancelled"


def test_the_api_key_appears_nowhere(
    talk: TestClient, fake_model: FakeModel, capfd: pytest.CaptureFixture[str]
) -> None:
    fake_model.script(Failure(401, f"Incorrect API key provided: {API_KEY}."), Text(["fine"]))
    chat = reply_chat(talk, [llm_step(tools=["template"])])
    failed = send(talk, chat["id"], "one")["run"]
    passed = send(talk, chat["id"], "two")["run"]
    seen = [json.dumps(answered(talk, chat["id"], run["id"])) for run in (failed, passed)]
    assert "[masked]" in seen[0]
    seen += [json.dumps(read_stream(talk, chat["id"], run["id"])) for run in (failed, passed)]
    seen.append(json.dumps(messages(talk, chat["id"])))
    seen.append(talk.get("/api/tools/llm").text)
    seen.append(talk.get(f"/api/chats/{chat['id']}/workflow-runs").text)
    out, err = capfd.readouterr()
    seen += [out, err]
    assert all(API_KEY not in text for text in seen)


def test_an_unconfigured_llm_is_unavailable(client: TestClient, user: dict[str, Any]) -> None:
    tool = client.get("/api/tools/llm").json()["data"]
    assert tool["available"] is False and "RUNWIRE_LLM_MODEL" in tool["reason"]
    chat = reply_chat(client, [llm_step()])
    run = send(client, chat["id"], "hello?")["run"]
    detail = answered(client, chat["id"], run["id"])
    assert detail["steps"][0]["error"]["code"] == "tool_unavailable"
    assert messages(client, chat["id"])[-1]["error"]["code"] == "step_failed"


def test_a_configured_llm_is_available(talk: TestClient) -> None:
    tool = talk.get("/api/tools/llm").json()["data"]
    assert tool["available"] is True and "reason" not in tool
    assert {"prompt", "includeChat", "tools", "maxTurns", "responseFormat"} <= tool["inputSchema"]["properties"].keys()
    bad = talk.post("/api/workflows", json={"name": "x", "steps": [step("a", "llm", {"prompt": "p", "maxTurns": 21})]})
    assert bad.status_code == 400
    unknown_tool = create_workflow(talk, [step("a", "llm", {"prompt": "p", "tools": ["llm"]})])
    chat = new_chat(talk)
    run = send(talk, chat["id"], "x", workflowId=unknown_tool["id"])["run"]
    assert answered(talk, chat["id"], run["id"])["steps"][0]["error"]["code"] == "invalid_inputs"
