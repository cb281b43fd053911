"""The other screens in Chromium: sign-in again after a session ends (nothing typed is lost), lists, tools, a phone
screen, and the assistant's answer streaming into a chat."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ApiUser, check_accessibility, start_slowly
from tests.fake_model import FakeModel, Text
from tests.helpers import PASSWORD, Server

pytestmark = pytest.mark.slow


def test_a_session_that_ends_leads_to_sign_in_and_back_with_what_was_typed(
    web_server: Server, api_user: ApiUser, page_for: Callable[..., Any]
) -> None:
    workflow = api_user.workflow([{"id": "hi", "toolId": "template", "inputs": {"template": "hi"}}], name="Hi")
    chat = api_user.chat("Drafts")
    page = page_for(web_server.url, api_user)
    page.goto(f"/chats/{chat['id']}")
    page.get_by_role("textbox", name="Message").fill("a half-written thought")
    page.get_by_label("Workflow", exact=True).select_option(workflow["id"])
    page.get_by_label("Input (a JSON object)").fill('{"kept": true}')
    api_user.call("POST", "/auth/sign-out", status=204)  # the session ends on the server

    page.get_by_role("button", name="Start run").click()
    page.wait_for_url("**/sign-in?*")
    page.get_by_text("Your session has ended").wait_for()
    page.get_by_label("Email").fill(api_user.email)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    password_error = page.locator(f"#{page.get_by_label('Password').get_attribute('id')}-error")
    password_error.wait_for()
    assert password_error.inner_text()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/chats/{chat['id']}")
    assert page.get_by_role("textbox", name="Message").input_value() == "a half-written thought"
    assert page.get_by_label("Input (a JSON object)").input_value() == '{"kept": true}'
    page.get_by_role("button", name="Start run").click()
    page.locator('.run-card[data-status="completed"]').wait_for()


def test_lists_tools_and_states(
    web_server: Server, api_user: ApiUser, page_for: Callable[..., Any], screenshots: Callable[..., None]
) -> None:
    page = page_for(web_server.url, api_user)
    page.goto("/workflows")
    page.get_by_text("No workflows yet").wait_for()
    api_user.workflow(
        [
            {"id": "fetch", "toolId": "delay", "inputs": {"seconds": 0}},
            {"id": "left", "toolId": "template", "dependsOn": ["fetch"], "inputs": {"template": "a"}},
            {"id": "right", "toolId": "template", "dependsOn": ["fetch"], "inputs": {"template": "b"}},
            {"id": "join", "toolId": "template", "dependsOn": ["left", "right"], "inputs": {"template": "c"}},
        ],
        name="Fan out and in",
    )
    for title in ("Research", "Weekly report"):
        api_user.chat(title)
    page.goto("/chats")
    page.get_by_role("link", name="Weekly report").wait_for()
    check_accessibility(page)
    screenshots(page, "chats")
    page.get_by_role("link", name="Workflows").click()
    page.get_by_role("link", name="Fan out and in").click()
    page.get_by_role("heading", name="Diagram").wait_for()
    assert page.locator(".dag-edge").count() == 4
    check_accessibility(page)
    screenshots(page, "workflow-editor")
    page.get_by_role("link", name="Tools").click()
    page.locator(".tool").first.wait_for()
    assert page.locator('.tool[data-tool="template"]').get_by_text("Available").count() == 1
    check_accessibility(page)
    page.goto("/no/such/screen")
    page.get_by_role("heading", name="Page not found").wait_for()
    page.goto(f"/chats/{'0' * 8}-0000-4000-8000-{'0' * 12}")
    page.locator(".state-error").wait_for()
    assert page.page_errors == []


def test_a_chat_on_a_phone_screen(
    web_server: Server, api_user: ApiUser, page_for: Callable[..., Any], screenshots: Callable[..., None]
) -> None:
    workflow = api_user.workflow(
        [
            {"id": "wait", "toolId": "delay", "inputs": {"seconds": 0.2}},
            {"id": "greet", "toolId": "template", "dependsOn": ["wait"], "inputs": {"template": "hello"}},
        ],
        name="Greeter",
    )
    chat = api_user.chat("On the go")
    for _ in range(3):
        run = api_user.start(chat["id"], workflow["id"])
    api_user.wait_for_run(chat["id"], run["id"], lambda r: r["status"] == "completed")
    page = page_for(web_server.url, api_user, width=390, height=844)
    page.goto(f"/chats/{chat['id']}")
    page.locator('.run-card[data-status="completed"]').nth(2).wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off the side
    # The screen's heading takes focus; the keyboard goes on from there to the chat's first control.
    # The focus moves once the screen has loaded everything, which may be after the cards have shown.
    expect(page.locator("h1")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Chat settings"
    check_accessibility(page)
    screenshots(page, "chat-phone", full_page=True)


CHUNKS = ["Runwire ", "streams ", "this ", "answer."]


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[Server]:
    model = FakeModel(api_key="sk-test")
    model.script(Text(CHUNKS, delay=0.4))
    env = {
        "RUNWIRE_LLM_BASE_URL": model.base_url,
        "RUNWIRE_LLM_API_KEY": "sk-test",
        "RUNWIRE_LLM_MODEL": "fake-model",
        "RUNWIRE_TOOL_ALLOWED_HOSTS": f"127.0.0.1:{model.httpd.server_address[1]}",
    }
    server = Server(tmp_path / "data", tmp_path / "server.log", env)
    start_slowly(server)
    yield server
    server.stop()
    model.close()


def test_the_assistant_answer_streams_into_the_chat(
    model_server: Server, page_for: Callable[..., Any], screenshots: Callable[..., None]
) -> None:
    user = ApiUser(model_server.url, "stream@example.com")
    tools = {tool["id"]: tool for tool in user.call("GET", "/tools")["tools"]}
    if "llm" not in tools:
        pytest.skip("this server has no `llm` tool (Messages and the llm tool of API.md)")
    workflow = user.workflow([{"id": "answer", "toolId": "llm", "inputs": {"prompt": "{{ input.message }}"}}], "Ask")
    chat = user.chat("Ask the model")
    user.call("PATCH", f"/chats/{chat['id']}", {"workflowId": workflow["id"]})
    page = page_for(model_server.url, user)
    page.goto(f"/chats/{chat['id']}")
    page.locator(".live-state[data-state=live]").wait_for()
    page.get_by_role("textbox", name="Message").fill("What does Runwire do?")
    page.get_by_role("button", name="Send").click()
    page.locator(".message.user").get_by_text("What does Runwire do?").wait_for()
    streaming = page.locator(".message.assistant.streaming")
    streaming.wait_for()
    partial = streaming.locator(".message-text").inner_text()
    assert partial and partial != "".join(CHUNKS)
    final = page.locator(".message.assistant[data-message]")
    final.wait_for(timeout=15_000)
    assert final.locator(".message-text").inner_text() == "".join(CHUNKS)
    assert streaming.count() == 0
    check_accessibility(page)
    screenshots(page, "chat-assistant")
    user.client.close()
