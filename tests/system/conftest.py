"""Real `runwire serve` processes on free ports, and a real HTTP server that counts hits."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import fresh_postgres_database
from tests.helpers import HitCounter, Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    instance = Server(tmp_path / "data", tmp_path / "server.log", {"RUNWIRE_TOOL_ALLOWED_HOSTS": "127.0.0.1"})
    yield instance
    instance.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_backend_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, str | None]]:
    """A started `runwire serve` on SQLite or on a PostgreSQL database of its own, and that database's URL."""

    def serve(database_url: str | None) -> Iterator[tuple[Server, str | None]]:
        env = {"RUNWIRE_DATABASE_URL": database_url} if database_url else {}
        server = Server(tmp_path / "data", tmp_path / "server.log", env)
        server.start()
        try:
            yield server, database_url
        finally:
            server.stop()

    if request.param == "sqlite":
        yield from serve(None)
    else:
        with fresh_postgres_database() as url:
            yield from serve(url)


@pytest.fixture
def hit_counter() -> Iterator[HitCounter]:
    counter = HitCounter()
    yield counter
    counter.httpd.shutdown()
