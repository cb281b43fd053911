"""SQL statements per request, counted in-process: the app from `runwire.main.create_app` on a benchmark's data dir
(its server stopped), driven by Starlette's TestClient, with a `before_cursor_execute` listener on its engine."""

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


def statements_per_request(data_dir: Path, session_cookie: str, paths: Sequence[str]) -> dict[str, list[str]]:
    """The statements one GET of each path sends, after one warm-up GET of it."""
    settings = Settings(data_dir=data_dir, database_url=None, dbos_system_database_url=None, log_level="WARNING")
    app = create_app(settings, run_executor=False)
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool) -> None:
        sent.append(statement)

    name, _, token = session_cookie.partition("=")
    counted: dict[str, list[str]] = {}
    with TestClient(app, base_url=f"http://{settings.host}:{settings.port}") as client:
        client.cookies.set(name, token)
        engine: sa.Engine = app.state.database.engine
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            for path in paths:
                for _ in range(2):  # the first one may warm caches up; the second is counted
                    sent.clear()
                    response = client.get(path)
                    if response.status_code != 200:
                        raise RuntimeError(f"GET {path} in-process: {response.status_code} {response.text[:300]}")
                counted[path] = list(sent)
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
    return counted
