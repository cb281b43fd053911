"""The test plugin package (`runwire-test-plugins/`), installed with pip as a user installs a plugin, but into a
folder of the test run's own rather than the venv: on this process's path and on the PYTHONPATH of the processes it
starts, for as long as the tests need it. A venv that ran the tests serves no test tool afterwards, and parallel
test workers never install into one place at once."""

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PACKAGE = Path(__file__).with_name("runwire-test-plugins")


@contextmanager
def installed_test_plugins(scratch: Path) -> Iterator[None]:
    copy = scratch / PACKAGE.name  # built from a copy, so that the source tree stays clean
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    site = scratch / "site-packages"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check"]
    subprocess.run([*command, "--target", str(site), str(copy)], check=True, capture_output=True, timeout=300)
    python_path = os.environ.get("PYTHONPATH")
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), python_path]))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(site))
        if python_path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = python_path
        importlib.invalidate_caches()
