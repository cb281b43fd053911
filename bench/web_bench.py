"""Benchmark of the web app in headless Chromium (Debian's, at /usr/bin/chromium) against a real `runwire serve`.

- First load of a chat page with 50 runs (a fresh browser context each time, so nothing is cached): bytes
  transferred (the page, its assets and its API reads; not the open chat stream) and the time from navigation to a
  rendered run list (the first page of cards on screen).
- The same with a chat of 1,000 runs (clones written by bench/bulk_load.py while the server is stopped), to show the
  paging keeps the first load flat. Not in quick mode.
- Live latency: the time from a step's change in the API (its startedAt / completedAt) to that change on screen
  on an open chat page (a MutationObserver notes when each card's step shows each status), p50 and p99, over the
  changes made once the run's card was on screen. A new run's card comes from a read a moment after its first
  event, so each run starts with a 1 s `delay` step: its later changes reach a card already shown. The time from a
  run's start to its card on screen is reported beside.

The page's Content-Security-Policy allows no string evaluation in it (no 'unsafe-eval'), so the page is only
watched through Playwright locators and `page.evaluate` of functions, and through init scripts (which the browser
adds itself); Playwright's async API runs everything, the API seeding included, on one event loop.

    python -m bench.web_bench [--quick]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright, expect
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS

from bench.bulk_load import BulkLoader
from bench.common import Api, Server, parse_timestamp
from bench.report import Figure, print_table
from bench.seeding import request_runs, template_steps, wait_until_ended

FIRST_PAGE = 20  # cards the chat page shows before "Load older runs"
TIMEOUT_MS = 60_000
LIVE_DELAY_SECONDS = 1.0  # the first step of a live run: time for its card to be on screen

# Notes when the chat page first draws a full first page of run cards: performance.now() (ms since the navigation
# started) at the start of the frame that draws them.
LIST_SHOWN = f"""
window.__listShown = null;
new MutationObserver((records, observer) => {{
  if (document.querySelectorAll('.run-card').length < {FIRST_PAGE}) return;
  observer.disconnect();
  requestAnimationFrame(() => {{ window.__listShown = performance.now(); }});
}}).observe(document, {{ subtree: true, childList: true }});
"""

# The value of LIST_SHOWN once it is set (the frame may still be to come when the cards are found).
LIST_SHOWN_AT = """() => new Promise((resolve) => {
  const check = () => (window.__listShown === null ? requestAnimationFrame(check) : resolve(window.__listShown));
  check();
})"""

# Notes, for every card, the first moment (epoch ms) it was shown, and for its every step when it showed each status.
RECORDER = """
window.__seen = {};
const note = () => {
  for (const card of document.querySelectorAll('.run-card')) {
    if (!(`${card.dataset.run}/card` in window.__seen)) window.__seen[`${card.dataset.run}/card`] = Date.now();
    for (const step of card.querySelectorAll('[data-step]')) {
      const key = `${card.dataset.run}/${step.dataset.step}/${step.dataset.status}`;
      if (!(key in window.__seen)) window.__seen[key] = Date.now();
    }
  }
};
new MutationObserver(note).observe(document, { subtree: true, childList: true, attributes: true });
"""

SEEN = "() => window.__seen"

TRANSFERRED = """() => {
  const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
  return entries.filter((e) => !e.name.endsWith('/stream')).reduce((sum, e) => sum + e.transferSize, 0);
}"""


def user_api(url: str, token: str, max_connections: int) -> Api:
    api = Api(url, max_connections=max_connections)
    api.client.cookies.set("runwire_session", token)
    return api


def live_steps() -> list[dict[str, Any]]:
    """A `delay` step, then two `template` steps after it."""
    steps = template_steps(3)
    steps[0] = {"id": "s0", "name": "Step 0", "toolId": "delay", "inputs": {"seconds": LIVE_DELAY_SECONDS}}
    steps[1]["inputs"] = {"template": "go"}
    return steps


async def seed(url: str, runs: int) -> tuple[str, str]:
    api = Api(url, max_connections=4)
    try:
        await api.sign_up()
        workflow_id = await api.create_workflow("bench", template_steps(3))
        chat_id = await api.create_chat("bench")
        await request_runs(api, chat_id, workflow_id, runs)
        await wait_until_ended(api, [chat_id], timeout=300)
        return api.client.cookies["runwire_session"], chat_id
    finally:
        await api.aclose()


async def first_loads(
    browser: Browser, url: str, token: str, chat_id: str, times: int
) -> tuple[list[float], list[int]]:
    """Each load's time to a drawn first page of run cards (ms) and bytes transferred, in a fresh context."""
    durations: list[float] = []
    sizes: list[int] = []
    for _ in range(times):
        context = await browser.new_context(base_url=url)
        try:
            await context.add_cookies([{"name": "runwire_session", "value": token, "url": url}])
            page = await context.new_page()
            await page.add_init_script(LIST_SHOWN)
            await page.goto(f"/chats/{chat_id}")
            await page.locator(".run-card").nth(FIRST_PAGE - 1).wait_for(timeout=TIMEOUT_MS)
            durations.append(float(await page.evaluate(LIST_SHOWN_AT)))
            sizes.append(int(await page.evaluate(TRANSFERRED)))
        finally:
            await context.close()
    return durations, sizes


async def live_latencies(browser: Browser, url: str, token: str, runs: int) -> tuple[list[float], list[float]]:
    """On an open chat page: the delays (ms) from each step's start and completion in the API to its card showing it,
    for the changes made once the card was shown, and from each run's start to its card being shown."""
    api = user_api(url, token, max_connections=2)
    try:
        workflow_id = await api.create_workflow("bench live", live_steps())
        chat_id = await api.create_chat("live")
        context = await browser.new_context(base_url=url)
        try:
            await context.add_cookies([{"name": "runwire_session", "value": token, "url": url}])
            page = await context.new_page()
            await page.add_init_script(RECORDER)
            await page.goto(f"/chats/{chat_id}")
            await page.locator(".live-state[data-state=live]").wait_for(timeout=TIMEOUT_MS)
            ids = await request_runs(api, chat_id, workflow_id, runs)
            await wait_until_ended(api, [chat_id], timeout=300)
            ended = [await api.get_run(chat_id, run_id) for run_id in ids]
            # Every run's card shows it completed: the last changes have reached the screen.
            await expect(page.locator(".run-card[data-status=completed]")).to_have_count(runs, timeout=TIMEOUT_MS)
            seen: dict[str, float] = await page.evaluate(SEEN)
        finally:
            await context.close()
    finally:
        await api.aclose()
    latencies, card_delays = [], []
    for run in ended:
        card_shown = seen[f"{run['id']}/card"]
        card_delays.append(card_shown - parse_timestamp(run["startedAt"]) * 1000)
        for step in run["steps"]:
            for status, stamp in (("running", step["startedAt"]), ("completed", step["completedAt"])):
                key = f"{run['id']}/{step['id']}/{status}"
                if key in seen and stamp and parse_timestamp(stamp) * 1000 >= card_shown:
                    latencies.append(seen[key] - parse_timestamp(stamp) * 1000)
    if not latencies:
        raise RuntimeError(f"no step of {runs} runs changed on screen after its card was shown")
    return latencies, card_delays


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def load_figures(label: str, durations: list[float], sizes: list[int]) -> list[Figure]:
    median = statistics.median(durations)
    return [
        Figure(
            f"{label}: first load, time to the run list (median of {len(durations)})",
            f"{median:.0f} ms",
            "< 1000 ms",
            median < 1000,
        ),
        Figure(f"{label}: first load, bytes transferred", f"{max(sizes) / 1024:.1f} KiB"),
    ]


def latency_figures(latencies: list[float], card_delays: list[float]) -> list[Figure]:
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    cards = f"{percentile(card_delays, 0.5):.0f} / {percentile(card_delays, 0.99):.0f} ms"
    return [
        Figure(f"step change to screen, p50 ({len(latencies)} changes)", f"{p50:.0f} ms", "< 1000 ms", p50 < 1000),
        Figure("step change to screen, p99", f"{p99:.0f} ms", "< 1000 ms", p99 < 1000),
        Figure(f"run start to its card on screen, p50 / p99 ({len(card_delays)} runs)", cards),
    ]


async def measure(server: Server, data_dir: Path, quick: bool) -> list[Figure]:
    loads, live_runs = (2, 5) if quick else (5, 40)
    token, chat_id = await seed(server.url, 50)
    figures: list[Figure] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        durations, sizes = await first_loads(browser, server.url, token, chat_id, loads)
        figures += load_figures("chat of 50 runs", durations, sizes)
        figures += latency_figures(*await live_latencies(browser, server.url, token, live_runs))
        await browser.close()
    if quick:
        return figures
    server.stop()  # bulk_load.py writes to the database files directly
    loader = BulkLoader(data_dir)
    try:
        big_chat = loader.add_chats(loader.chat_owner(chat_id), 1, "bench 1,000 runs")[0]
        loader.add_runs(loader.templates(chat_id), [big_chat], 1000)
    finally:
        loader.close()
    server.start()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        durations, sizes = await first_loads(browser, server.url, token, big_chat, loads)
        await browser.close()
    # The 1,000-run figures go right after the 50-run ones.
    return figures[:2] + load_figures("chat of 1,000 runs", durations, sizes) + figures[2:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.web_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer loads and runs (about a minute)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM} (apt-get install -y chromium): web benchmark not run")
        return 0
    with tempfile.TemporaryDirectory(prefix="runwire-web-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        with Server(data_dir, Path(tmp) / "server.log") as server:
            figures = asyncio.run(measure(server, data_dir, args.quick))
    print_table("Web app in headless Chromium", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
