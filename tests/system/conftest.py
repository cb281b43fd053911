"""Real `runwire serve` and `runwire worker` processes (alone, or an API-only process and workers on one PostgreSQL
database), and a real HTTP server that counts hits."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import fresh_postgres_database
from tests.helpers import HitCounter, Server, Worker


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


@pytest.fixture
def cluster_env(postgres_url: str) -> dict[str, str]:
    return {"RUNWIRE_DATABASE_URL": postgres_url, "RUNWIRE_TOOL_ALLOWED_HOSTS": "127.0.0.1"}


@pytest.fixture
def api_only(tmp_path: Path, cluster_env: dict[str, str]) -> Iterator[Server]:
    server = Server(tmp_path / "api", tmp_path / "api.log", cluster_env, "--no-executor")
    yield server
    server.stop()


@pytest.fixture
def workers(tmp_path: Path, cluster_env: dict[str, str]) -> Iterator[dict[str, Worker]]:
    started = {name: Worker(name, tmp_path / f"{name}.log", cluster_env) for name in ("w1", "w2")}
    yield started
    for worker in started.values():
        worker.stop()
