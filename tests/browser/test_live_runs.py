"""From sign-up to watching runs live in Chromium: steps change on screen within a second of the API, a failed
step's error shows, a card cancels its run, a validation error lands at its field, a restart is caught up."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ApiUser, check_accessibility, has_chat_stream, seen_at, start_slowly, watch_status
from tests.helpers import PASSWORD, Server

pytestmark = pytest.mark.slow

WAIT_THEN_GREET = [
    {"id": "wait", "toolId": "delay", "inputs": {"seconds": 1.5}},
    {"id": "greet", "toolId": "template", "dependsOn": ["wait"], "inputs": {"template": "Hello {{ input.name }}"}},
]


def epoch_ms(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000


def test_sign_up_then_a_run_moves_on_its_card_within_a_second(
    web_server: Server, page_for: Callable[..., Any], screenshots: Callable[..., None]
) -> None:
    page = page_for(web_server.url)
    page.goto("/")
    page.wait_for_url("**/sign-in?next=%2F")
    page.get_by_role("heading", name="Sign in").wait_for()
    check_accessibility(page)
    screenshots(page, "sign-in")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Name").fill("Ada")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    assert page.locator("#" + page.get_by_label("Email").get_attribute("id") + "-error").inner_text()
    assert page.get_by_label("Email").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Password").get_attribute("aria-invalid") == "true"
    page.get_by_label("Email").fill("browser-ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/chats")
    page.get_by_text("No chats yet").wait_for()

    # A workflow through the API, with this browser's session; then a chat from the page.
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    user = ApiUser(web_server.url, "browser-ada@example.com", cookies)
    workflow = user.workflow(WAIT_THEN_GREET, name="Greeter")
    page.get_by_label("Title of a new chat (optional)").fill("Greetings")
    page.get_by_role("button", name="New chat").click()
    page.wait_for_url("**/chats/*")
    page.get_by_role("heading", name="Greetings").wait_for()
    page.locator(".live-state[data-state=live], .live-state[data-state=unavailable]").wait_for()
    chat_id = page.url.rsplit("/", 1)[1]

    page.get_by_label("Workflow", exact=True).select_option(workflow["id"])
    page.get_by_label("Input (a JSON object)").fill('{"name": "Ada"}')
    page.get_by_role("button", name="Start run").click()
    card = page.locator(".run-card").first
    card.wait_for()
    run_id = card.get_attribute("data-run")
    assert run_id is not None
    page.locator(f'.run-card[data-run="{run_id}"][data-status="completed"]').wait_for()
    assert user.run(chat_id, run_id)["status"] == "completed"
    check_accessibility(page)
    screenshots(page, "chat")

    # The run's own page: diagram, timeline, rendered inputs and output.
    card.get_by_role("link").click()
    page.get_by_role("heading", name="Timeline").wait_for()
    expect(page.locator(".dag-node")).to_have_count(2)
    assert "Hello Ada" in page.locator('.step[data-step="greet"]').inner_text()
    check_accessibility(page)
    screenshots(page, "run", full_page=True)
    assert page.page_errors == []
    user.client.close()


def test_the_run_page_follows_a_run_live_and_says_what_failed_at_the_top(
    web_server: Server, api_user: ApiUser, page_for: Callable[..., Any], screenshots: Callable[..., None]
) -> None:
    steps = [
        {"id": "wait", "toolId": "delay", "inputs": {"seconds": 1}},
        {"id": "render", "toolId": "template", "dependsOn": ["wait"], "inputs": {"template": "{{ input.nope.x }}"}},
        {"id": "after", "toolId": "template", "dependsOn": ["render"], "inputs": {"template": "never"}},
    ]
    workflow = api_user.workflow(steps, name="Breaks")
    blocker = api_user.workflow([{"id": "hold", "toolId": "delay", "inputs": {"seconds": 60}}], name="Hold")
    chat = api_user.chat()
    # Runs of a chat go one at a time: the run under test waits behind `hold` until the page watches it.
    holding = api_user.start(chat["id"], blocker["id"])
    run = api_user.start(chat["id"], workflow["id"])
    page = page_for(web_server.url, api_user)
    page.goto(f"/chats/{chat['id']}/runs/{run['id']}")
    page.locator('.step[data-step="wait"][data-status="pending"]').wait_for()
    page.locator(".live-state[data-state=live]").wait_for()
    started = watch_status(page, '.step[data-step="wait"]', "running")
    completed = watch_status(page, '.step[data-step="wait"]', "completed")
    failed = watch_status(page, '.step[data-step="render"]', "failed")
    api_user.call("POST", f"/chats/{chat['id']}/workflow-runs/{holding['id']}/cancel", status=202)
    ended = api_user.wait_for_run(chat["id"], run["id"], lambda r: r["status"] == "failed")
    wait, render = ended["steps"][0], ended["steps"][1]
    assert seen_at(page, started) - epoch_ms(wait["startedAt"]) < 1000
    assert seen_at(page, completed) - epoch_ms(wait["completedAt"]) < 1000
    assert seen_at(page, failed) - epoch_ms(render["completedAt"]) < 1000
    banner = page.locator(".banner-failed")
    banner.wait_for()
    assert "render" in banner.inner_text()
    assert render["error"]["message"] in banner.inner_text()
    assert render["error"]["message"] in page.locator('.step[data-step="render"] .step-error').inner_text()
    page.locator('.step[data-step="after"][data-status="cancelled"]').wait_for()
    page.locator('.dag-node.status-failed[data-step="render"]').wait_for()
    check_accessibility(page)
    screenshots(page, "run-failed")


# Each state lasts long enough to be painted: a state held for a millisecond (a template step's `running`) may
# arrive in one chunk of the stream with the next and never reach a frame.
TWO_WAITS = [
    {"id": "wait", "toolId": "delay", "inputs": {"seconds": 1.0}},
    {"id": "greet", "toolId": "delay", "dependsOn": ["wait"], "inputs": {"seconds": 0.5}},
]


def test_a_card_moves_within_a_second_of_the_api_over_the_chat_stream(
    web_server: Server, api_user: ApiUser, page_for: Callable[..., Any]
) -> None:
    workflow = api_user.workflow(TWO_WAITS, name="Waits")
    chat = api_user.chat()
    if not has_chat_stream(api_user, chat["id"]):
        pytest.skip("this server has no chat stream (GET /api/chats/:chatId/stream of API.md)")
    page = page_for(web_server.url, api_user)
    page.goto(f"/chats/{chat['id']}")
    page.locator(".live-state[data-state=live]").wait_for()
    page.get_by_text("No runs in this chat yet").wait_for()
    keys = {
        (step, status): watch_status(page, f'.run-card [data-step="{step}"]', status)
        for step in ("wait", "greet")
        for status in ("running", "completed")
    }
    run = api_user.start(chat["id"], workflow["id"], {"name": "Ada"})
    ended = api_user.wait_for_run(chat["id"], run["id"], lambda r: r["status"] == "completed")
    for step in ended["steps"]:
        assert seen_at(page, keys[step["id"], "running"]) - epoch_ms(step["startedAt"]) < 1000
        assert seen_at(page, keys[step["id"], "completed"]) - epoch_ms(step["completedAt"]) < 1000
    page.locator(f'.run-card[data-run="{run["id"]}"][data-status="completed"]').wait_for()


def test_a_card_cancels_its_run(web_server: Server, api_user: ApiUser, page_for: Callable[..., Any]) -> None:
    workflow = api_user.workflow([{"id": "long", "toolId": "delay", "inputs": {"seconds": 60}}], name="Long")
    chat = api_user.chat()
    run = api_user.start(chat["id"], workflow["id"])
    page = page_for(web_server.url, api_user)
    page.goto(f"/chats/{chat['id']}")
    card = page.locator(f'.run-card[data-run="{run["id"]}"]')
    card.locator('[data-step="long"][data-status="running"]').wait_for()
    card.get_by_role("button", name="Cancel run").click()
    page.locator(f'.run-card[data-run="{run["id"]}"][data-status="cancelled"]').wait_for(timeout=5000)
    assert api_user.run(chat["id"], run["id"])["status"] == "cancelled"
    assert page.locator(f'.run-card[data-run="{run["id"]}"]').get_by_role("button", name="Cancel run").count() == 0


def test_a_validation_error_shows_at_its_step_and_field(
    web_server: Server, api_user: ApiUser, page_for: Callable[..., Any], screenshots: Callable[..., None]
) -> None:
    page = page_for(web_server.url, api_user)
    page.goto("/workflows/new")
    page.get_by_label("Name", exact=True).fill("Broken template")
    page.get_by_role("button", name="Add step").click()
    template = page.locator('[data-field="steps[1].inputs.template"]')
    template.fill("{{ oops")
    page.locator('[data-field="steps[0].inputs.template"]').fill("fine")
    expect(page.locator(".dag-node")).to_have_count(2)
    page.get_by_role("button", name="Create workflow").click()
    error = page.locator(f"#{template.get_attribute('id')}-error")
    error.wait_for()
    assert "invalid template" in error.inner_text()
    assert template.get_attribute("aria-invalid") == "true"
    assert page.locator('[data-field="steps[0].inputs.template"]').get_attribute("aria-invalid") is None
    assert "steps[1].inputs.template" in page.locator(".error-summary").inner_text()
    check_accessibility(page)
    screenshots(page, "workflow-error", full_page=True)

    template.fill("{{ steps.step1.output.text }} again")
    page.get_by_role("group", name="Runs after").nth(1).get_by_label("step1").check()
    page.get_by_role("button", name="Create workflow").click()
    page.wait_for_url("**/workflows/*-*")
    page.get_by_text("Version 1").wait_for()
    assert page.locator(".dag-edge").count() == 1


def test_after_a_restart_the_run_page_catches_up_with_every_event(
    tmp_path: Any, browser: Any, page_for: Callable[..., Any]
) -> None:
    server = Server(tmp_path / "data", tmp_path / "server.log", {})
    start_slowly(server)
    try:
        user = ApiUser(server.url, "restart@example.com")
        workflow = user.workflow(
            [
                {"id": "first", "toolId": "delay", "inputs": {"seconds": 4}},
                {"id": "second", "toolId": "template", "dependsOn": ["first"], "inputs": {"template": "done"}},
            ]
        )
        chat = user.chat()
        run = user.start(chat["id"], workflow["id"])
        page = page_for(server.url, user)
        page.add_init_script(
            "window.__ids = [];"
            "document.addEventListener('runwire:stream-event', (e) => window.__ids.push(e.detail.id));"
        )
        page.goto(f"/chats/{chat['id']}/runs/{run['id']}")
        page.locator('.step[data-step="first"][data-status="running"]').wait_for()
        server.stop()
        page.locator(".live-state[data-state=reconnecting]").wait_for()
        start_slowly(server)
        page.locator('.step[data-step="second"][data-status="completed"]').wait_for(timeout=30_000)
        page.locator('h1 [data-status="completed"]').wait_for()
        ids = [int(i) for i in page.evaluate("window.__ids")]
        assert ids == list(range(1, len(ids) + 1)), ids  # every event once, none missed
        assert page.evaluate("window.__ids.length") >= 5
        user.client.close()
    finally:
        server.stop()


def test_a_waiting_step_is_approved_from_the_run_page(
    web_server: Server, api_user: ApiUser, page_for: Callable[..., Any], screenshots: Callable[..., None]
) -> None:
    steps = [
        {"id": "ship", "toolId": "approval", "inputs": {"prompt": "Ship {{ input.name }}?"}},
        {
            "id": "after",
            "toolId": "template",
            "dependsOn": ["ship"],
            "inputs": {"template": "{{ steps.ship.output.comment }}"},
        },
    ]
    workflow = api_user.workflow(steps, name="Approve")
    chat = api_user.chat()
    run = api_user.start(chat["id"], workflow["id"], {"name": "v2"})
    page = page_for(web_server.url, api_user)
    page.goto(f"/chats/{chat['id']}/runs/{run['id']}")
    form = page.get_by_role("form", name="Decision on ship")
    form.get_by_text("Ship v2?").wait_for()
    check_accessibility(page)
    screenshots(page, "run-waiting")
    form.get_by_label("Comment (optional)").fill("looks good")
    form.get_by_role("button", name="Approve").click()
    page.locator('.step[data-step="after"][data-status="completed"]').wait_for(timeout=5000)
    done = api_user.wait_for_run(chat["id"], run["id"], lambda r: r["status"] == "completed")
    assert done["steps"][0]["output"]["comment"] == "looks good"
    assert done["steps"][1]["output"] == {"text": "looks good"}
    assert page.get_by_role("form", name="Decision on ship").count() == 0
