"""Which Chromium the browser tests and the web benchmark launch, and how: Debian's build, headless, quiet."""

import os

CHROMIUM = os.environ.get("RUNWIRE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
