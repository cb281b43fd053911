"""Benchmark of the web app in headless Chromium (Debian's, at /usr/bin/chromium) against a real `runwire serve`.

- First load of a chat page with 50 runs (a fresh browser context each time, so nothing is cached): bytes
  transferred (the page, its assets and its API reads; not the open chat stream) and the time from navigation to a
  rendered run list (the first page of cards on screen).
- The same with a chat of 1,000 runs (clones written by bench/bulk_load.py while the server is stopped), to show the
  paging keeps the first load flat. Not in quick mode.
- Live latency: the time from a step's change in the API (its startedAt / completedAt) to that change on screen
  on an open chat page (a MutationObserver notes when each card's step shows each status), p50 and p99.

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

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS

from bench.bulk_load import BulkLoader
from bench.common import Api, Server, parse_timestamp
from bench.report import Figure, print_table
from bench.seeding import request_runs, template_steps, wait_until_ended

FIRST_PAGE = 20  # cards the chat page shows before "Load older runs"

# Notes, for every card's step, the first moment (epoch ms) it showed each status.
RECORDER = """
window.__seen = {};
const note = () => {
  for (const card of document.querySelectorAll('.run-card')) {
    for (const step of card.querySelectorAll('[data-step]')) {
      const key = `${card.dataset.run}/${step.dataset.step}/${step.dataset.status}`;
      if (!(key in window.__seen)) window.__seen[key] = Date.now();
    }
  }
};
new MutationObserver(note).observe(document, { subtree: true, childList: true, attributes: true });
"""

TRANSFERRED = """() => {
  const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
  return entries.filter((e) => !e.name.endsWith('/stream')).reduce((sum, e) => sum + e.transferSize, 0);
}"""


async def seed(url: str, runs: int) -> tuple[str, str, str]:
    api = Api(url, max_connections=4)
    try:
        await api.sign_up()
        workflow_id = await api.create_workflow("bench", template_steps(3))
        chat_id = await api.create_chat("bench")
        await request_runs(api, chat_id, workflow_id, runs)
        await wait_until_ended(api, [chat_id], timeout=300)
        return api.client.cookies["runwire_session"], chat_id, workflow_id
    finally:
        await api.aclose()


def first_loads(browser: Any, url: str, token: str, chat_id: str, times: int) -> tuple[list[float], list[int]]:
    durations, sizes = [], []
    for _ in range(times):
        context = browser.new_context(base_url=url)
        context.add_cookies([{"name": "runwire_session", "value": token, "url": url}])
        page = context.new_page()
        page.goto(f"/chats/{chat_id}")
        page.wait_for_function(f"document.querySelectorAll('.run-card').length >= {FIRST_PAGE}", timeout=60_000)
        durations.append(page.evaluate("performance.now()"))
        sizes.append(page.evaluate(TRANSFERRED))
        context.close()
    return durations, sizes


def live_latencies(browser: Any, url: str, token: str, workflow_id: str, runs: int) -> list[float]:
    async def make_chat() -> str:
        api = Api(url, max_connections=2)
        api.client.cookies.set("runwire_session", token)
        try:
            return await api.create_chat("live")
        finally:
            await api.aclose()

    chat_id = asyncio.run(make_chat())
    context = browser.new_context(base_url=url)
    context.add_cookies([{"name": "runwire_session", "value": token, "url": url}])
    page = context.new_page()
    page.add_init_script(RECORDER)
    page.goto(f"/chats/{chat_id}")
    page.wait_for_selector(".live-state[data-state=live]", timeout=60_000)

    async def run_all() -> list[dict[str, Any]]:
        api = Api(url, max_connections=2)
        api.client.cookies.set("runwire_session", token)
        try:
            ids = await request_runs(api, chat_id, workflow_id, runs)
            await wait_until_ended(api, [chat_id], timeout=300)
            return [await api.get_run(chat_id, run_id) for run_id in ids]
        finally:
            await api.aclose()

    ended = asyncio.run(run_all())
    page.wait_for_timeout(1500)  # the last changes reach the screen
    seen: dict[str, float] = page.evaluate("window.__seen")
    context.close()
    latencies = []
    for run in ended:
        for step in run["steps"]:
            for status, stamp in (("running", step["startedAt"]), ("completed", step["completedAt"])):
                key = f"{run['id']}/{step['id']}/{status}"
                if key in seen and stamp:
                    latencies.append(seen[key] - parse_timestamp(stamp) * 1000)
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.web_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer loads and runs (about a minute)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM} (apt-get install -y chromium): web benchmark not run")
        return 0
    from playwright.sync_api import sync_playwright

    loads, live_runs = (2, 5) if args.quick else (5, 40)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="runwire-web-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        server = Server(data_dir, Path(tmp) / "server.log")
        server.start()
        try:
            token, chat_id, workflow_id = asyncio.run(seed(server.url, 50))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                durations, sizes = first_loads(browser, server.url, token, chat_id, loads)
                figures.append(
                    Figure(
                        "chat of 50 runs: first load, time to the run list (median)",
                        f"{statistics.median(durations):.0f} ms",
                        "< 1000 ms",
                        statistics.median(durations) < 1000,
                    )
                )
                figures.append(Figure("chat of 50 runs: first load, bytes transferred", f"{max(sizes) / 1024:.1f} KiB"))
                latencies = live_latencies(browser, server.url, token, workflow_id, live_runs)
                figures.append(
                    Figure(
                        f"step change to screen, p50 ({len(latencies)} changes)",
                        f"{percentile(latencies, 0.5):.0f} ms",
                        "< 1000 ms",
                        percentile(latencies, 0.5) < 1000,
                    )
                )
                figures.append(
                    Figure(
                        "step change to screen, p99",
                        f"{percentile(latencies, 0.99):.0f} ms",
                        "< 1000 ms",
                        percentile(latencies, 0.99) < 1000,
                    )
                )
                browser.close()
            if not args.quick:
                server.stop()
                loader = BulkLoader(data_dir)
                try:
                    big_chat = loader.add_chats(loader.chat_owner(chat_id), 1, "bench 1,000 runs")[0]
                    loader.add_runs(loader.templates(chat_id), [big_chat], 1000)
                finally:
                    loader.close()
                server.start()
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    durations, sizes = first_loads(browser, server.url, token, big_chat, loads)
                    browser.close()
                figures.append(
                    Figure(
                        "chat of 1,000 runs: first load, time to the run list (median)",
                        f"{statistics.median(durations):.0f} ms",
                        "< 1000 ms",
                        statistics.median(durations) < 1000,
                    )
                )
                figures.append(
                    Figure("chat of 1,000 runs: first load, bytes transferred", f"{max(sizes) / 1024:.1f} KiB")
                )
        finally:
            server.stop()
    print_table("Web app in headless Chromium", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
