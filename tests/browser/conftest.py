"""Browser tests: Playwright drives Debian's Chromium against a real `runwire serve` on 127.0.0.1.

Without Chromium (or Playwright) they are skipped with a note on how to install it; with
RUNWIRE_TEST_REQUIRE_BROWSER=1 (as CI sets) a missing browser fails them instead. Every run writes screenshots of
the main screens to docs/screenshots/.
"""

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import PASSWORD, Server

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
INSTALL_HINT = (
    "install it with `apt-get install -y chromium` (Debian's build, at /usr/bin/chromium, or set "
    "RUNWIRE_TEST_CHROMIUM) and `pip install -e '.[test]'` for Playwright"
)


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = _missing()
    if missing is None:
        return
    here = Path(__file__).parent
    mine = [item for item in items if here in Path(str(item.fspath)).parents]
    if os.environ.get("RUNWIRE_TEST_REQUIRE_BROWSER") == "1":
        for item in mine:
            item.add_marker(pytest.mark.usefixtures("_browser_required"))
        return
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=f"browser tests skipped: {missing}; {INSTALL_HINT}"))


@pytest.fixture
def _browser_required() -> None:
    pytest.fail(f"the browser tests are required here (RUNWIRE_TEST_REQUIRE_BROWSER=1) but {_missing()}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def start_slowly(server: Server) -> None:
    """Start (or start again, on its port) and wait longer than system tests do: Chromium shares the cores."""
    server.launch()
    server.wait_until(server._answers, "runwire serve answering", timeout=90)


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the browser tests that do not restart it."""
    root = tmp_path_factory.mktemp("browser")
    instance = Server(root / "data", root / "server.log", {})
    start_slowly(instance)
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def screenshots() -> Callable[[Any, str], None]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str, full_page: bool = False) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page, animations="disabled")

    return take


class ApiUser:
    """A signed-up user driven over HTTP, whose session a browser context can share."""

    def __init__(self, base_url: str, email: str, cookies: dict[str, str] | None = None) -> None:
        """Sign `email` up, or with `cookies` of a session already made (in a browser) act as its user."""
        self.client = httpx.Client(base_url=base_url, timeout=10, cookies=cookies)
        self.email = email
        if cookies is None:
            body = {"email": email, "password": PASSWORD, "name": "Ada"}
            response = self.client.post("/api/auth/sign-up/email", json=body)
            assert response.status_code == 201, response.text
        self.id: str = self.call("GET", "/auth/session")["user"]["id"]

    def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.client.request(method, f"/api{path}", json=body)
        assert response.status_code == status, response.text
        return response.json()["data"] if response.content else None

    def workflow(self, steps: list[dict[str, Any]], name: str = "wf") -> dict[str, Any]:
        created: dict[str, Any] = self.call("POST", "/workflows", {"name": name, "steps": steps}, 201)
        return created

    def chat(self, title: str = "A chat") -> dict[str, Any]:
        created: dict[str, Any] = self.call("POST", "/chats", {"title": title}, 201)
        return created

    def start(self, chat_id: str, workflow_id: str, run_input: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"workflowId": workflow_id, "input": run_input or {}}
        run: dict[str, Any] = self.call("POST", f"/chats/{chat_id}/workflow-runs", body, 202)
        return run

    def run(self, chat_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.call("GET", f"/chats/{chat_id}/workflow-runs/{run_id}")
        return run

    def wait_for_run(
        self, chat_id: str, run_id: str, check: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(chat_id, run_id)
            if check(run):
                return run
            time.sleep(0.02)
        raise AssertionError(f"run {run_id} never got there: {self.run(chat_id, run_id)}")

    def cookies_for(self, base_url: str) -> list[dict[str, Any]]:
        return [{"name": name, "value": value, "url": base_url} for name, value in self.client.cookies.items()]


_emails = iter(range(1, 1_000_000))


@pytest.fixture
def api_user(web_server: Server) -> Iterator[ApiUser]:
    user = ApiUser(web_server.url, f"user{next(_emails)}-{time.time_ns()}@example.com")
    yield user
    user.client.close()


@pytest.fixture
def page_for(browser: Any) -> Iterator[Callable[..., Any]]:
    """A fresh browser context (signed in as `user`, when given) and its page; console errors are collected."""
    contexts: list[Any] = []

    def open_page(base_url: str, user: ApiUser | None = None, width: int = 1280, height: int = 860) -> Any:
        context = browser.new_context(base_url=base_url, viewport={"width": width, "height": height})
        contexts.append(context)
        if user is not None:
            context.add_cookies(user.cookies_for(base_url))
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.page_errors = []
        page.on("pageerror", lambda error: page.page_errors.append(str(error)))
        return page

    yield open_page
    for context in contexts:
        context.close()


def check_accessibility(page: Any) -> None:
    """axe-core (bundled by axe-playwright-python) finds no violation on the page as it is."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


# Note in window.__seen[key] the time (epoch ms, the browser's clock, which is this machine's as the server's) at
# which an element matching `selector` first showed data-status=`status`. Returns at once; read it with seen_at().
WATCH_STEP = """([selector, status, key]) => {
  window.__seen ??= {};
  const seen = () => {
    const el = document.querySelector(selector);
    return el && el.dataset.status === status;
  };
  if (seen()) { window.__seen[key] = Date.now(); return; }
  const observer = new MutationObserver(() => {
    if (seen()) { observer.disconnect(); window.__seen[key] = Date.now(); }
  });
  observer.observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"],
  });
}"""


def watch_status(page: Any, selector: str, status: str) -> str:
    key = f"{selector}={status}"
    page.evaluate(WATCH_STEP, [selector, status, key])
    return key


def seen_at(page: Any, key: str, timeout: float = 20_000) -> float:
    page.wait_for_function("(key) => window.__seen && window.__seen[key]", arg=key, timeout=timeout)
    value: float = page.evaluate("(key) => window.__seen[key]", key)
    return value


def has_chat_stream(user: "ApiUser", chat_id: str) -> bool:
    with user.client.stream("GET", f"/api/chats/{chat_id}/stream", timeout=5) as response:
        return response.status_code == 200
