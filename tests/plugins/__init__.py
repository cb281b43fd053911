"""The test plugin package (`runwire-test-plugins/`), installed into the tests' venv as a user installs a plugin.

Installed once per venv (a copy is built, so that the source tree stays clean); bump its version when changing it.
"""

import importlib
import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

PACKAGE = Path(__file__).with_name("runwire-test-plugins")
DISTRIBUTION = "runwire-test-plugins"


def install_test_plugins(scratch: Path) -> None:
    wanted = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]["version"]
    try:
        if importlib.metadata.version(DISTRIBUTION) == wanted:
            return
    except importlib.metadata.PackageNotFoundError:
        pass
    copy = scratch / PACKAGE.name
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check", str(copy)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    importlib.invalidate_caches()
