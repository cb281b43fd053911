"""Liveness answers without the database; readiness checks the database and the executor."""

from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.factories import POSTGRES_ADMIN_URL


def test_liveness_does_no_database_work_and_readiness_does(client: TestClient) -> None:
    database = client.app.state.database  # type: ignore[attr-defined]
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(database.engine, "before_cursor_execute", count)
    try:
        live = client.get("/api/liveness")
        assert live.status_code == 200 and live.json() == {"data": {"status": "ok"}}
        assert statements == []
        ready = client.get("/api/readiness")
        assert ready.status_code == 200 and ready.json() == {"data": {"status": "ready"}}
        assert statements
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", count)


def test_readiness_is_503_when_the_database_refuses(
    app_factory: Callable[..., TestClient], database_url: str | None
) -> None:
    if database_url is None:
        pytest.skip("a SQLite file cannot refuse its own process; PostgreSQL can")
    client = app_factory()
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    try:
        response = client.get("/api/readiness")
        assert response.status_code == 503
        assert response.json()["error"] == "Service Unavailable" and "database" in response.json()["message"]
        assert client.get("/api/liveness").status_code == 200
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert client.get("/api/readiness").status_code == 200
