"""SQL statements per request, counted in-process: the app from `runwire.main.create_app` on a benchmark's data dir
(its server stopped), driven by Starlette's TestClient, every statement counted as SQLite runs it (its trace callback,
set on each connection as the pool hands it out): those sent through SQLAlchemy, those sent to the driver directly
(the chat reads' session read) and those of the pool itself."""

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's note that its TestClient will move off httpx
    from starlette.testclient import TestClient

from runwire.config import Settings
from runwire.main import create_app


def first_word(statement: str) -> str:
    return statement.split(None, 1)[0].upper()


def statements_per_request(
    data_dir: Path, session_cookie: str, paths: Sequence[str]
) -> dict[str, dict[str, list[str]]]:
    """The statements a GET of each path sends: the first (nothing cached), a repeat, and a revalidation with the
    first answer's ETag in If-None-Match."""
    settings = Settings(data_dir=data_dir, database_url=None, dbos_system_database_url=None, log_level="WARNING")
    app = create_app(settings, run_executor=False)
    sent: list[str] = []

    def trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.set_trace_callback(sent.append)

    name, _, token = session_cookie.partition("=")
    counted: dict[str, dict[str, list[str]]] = {}
    with TestClient(app, base_url=f"http://{settings.host}:{settings.port}") as client:
        client.cookies.set(name, token)
        engine: sa.Engine = app.state.database.engine
        sa.event.listen(engine, "checkout", trace)
        try:
            for path in paths:
                counted[path] = {}
                etag = ""
                for kind in ("fresh", "repeated", "revalidated"):
                    sent.clear()
                    response = client.get(path, headers={"If-None-Match": etag} if kind == "revalidated" else {})
                    if response.status_code != (304 if kind == "revalidated" else 200):
                        raise RuntimeError(f"GET {path} in-process: {response.status_code} {response.text[:300]}")
                    etag = response.headers["etag"]
                    counted[path][kind] = list(sent)
        finally:
            sa.event.remove(engine, "checkout", trace)
    return counted
