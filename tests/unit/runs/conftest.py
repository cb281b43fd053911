"""The database of the run tests that need one but no app: a fresh migrated SQLite file per test."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from runwire.db import Database
from tests.factories import migrated_sqlite


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with migrated_sqlite(tmp_path) as database:
        yield database
