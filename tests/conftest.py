"""Fixtures: real apps on real databases (a SQLite file, or a PostgreSQL database), driven over HTTP through
Starlette's TestClient. Every app-level test runs on both backends.

`client` is a new TestClient (its own cookies) on one long-lived app per backend, whose lifespan ran once. After each
test that app's active runs are cancelled, DBOS is left with no unfinished workflow, and every Runwire table is
emptied: the next test sees what a new app would show.

DBOS is one per process, so one shared app runs at a time. A test that starts apps with settings of its own
(`app_factory`) or launches DBOS itself requests `own_dbos`, which stops the shared app first. Tests are ordered so
that this happens once per backend: the tests without an app, then per backend those on the shared app and those with
their own."""

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dbos import DBOS
from fastapi.testclient import TestClient

import runwire.models  # noqa: F401  (registers every table on Base.metadata)
from runwire.chats.models import Chat
from runwire.config import Settings
from runwire.db import Base, Database
from runwire.main import create_app
from runwire.runs import service as runs_service
from runwire.runs.models import WorkflowRun
from runwire.runs.states import Status
from runwire.templating.renderer import TemplateRenderer
from tests.factories import fresh_postgres_database, make_settings
from tests.helpers import sign_up
from tests.log_secrets import suite_log_secrets  # noqa: F401  (every log line of the session searched for secrets)

BACKENDS = ("sqlite", "postgresql")
UNFINISHED_DBOS_STATUSES = ["PENDING", "ENQUEUED"]
# A run queued by a transaction that then rolled back waits a few seconds for its row before its workflow ends.
DBOS_SETTLE_SECONDS = 30.0


class SharedApp:
    """One backend's long-lived app with its executor: started on first use, emptied after each test."""

    def __init__(self, backend: str, data_dir: Path) -> None:
        self.backend = backend
        self.data_dir = data_dir
        self._database_url: str | None = None
        self._databases = ExitStack()
        self._owner: TestClient | None = None

    @property
    def running(self) -> bool:
        return self._owner is not None

    def new_client(self) -> TestClient:
        """A user agent of its own on the app, in the app's event loop (its semaphores belong to that loop)."""
        if self._owner is None:
            self._start()
        assert self._owner is not None
        client = TestClient(self._owner.app, raise_server_exceptions=False)
        client.portal = self._owner.portal
        return client

    def _start(self) -> None:
        if self.backend == "postgresql" and self._database_url is None:
            self._database_url = self._databases.enter_context(fresh_postgres_database())
        owner = TestClient(create_app(make_settings(self.data_dir, database_url=self._database_url)))
        owner.__enter__()
        self._owner = owner

    def empty(self) -> None:
        """Cancel the active runs, let DBOS finish their workflows, then delete every row of Runwire's tables.
        An app that cannot be emptied is stopped: the next test starts a new one."""
        assert self._owner is not None
        database: Database = self._owner.app.state.database  # type: ignore[attr-defined]
        try:
            _cancel_active_runs(database)
            _wait_until_dbos_settles()
            _delete_every_row(database)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._owner is not None:
            owner, self._owner = self._owner, None
            owner.__exit__(None, None, None)

    def close(self) -> None:
        self.stop()
        self._databases.close()


def _cancel_active_runs(database: Database) -> None:
    active = sa.select(WorkflowRun.chat_id).where(WorkflowRun.status.in_([Status.PENDING, Status.RUNNING]))
    with database.writing() as session:
        for chat in session.scalars(sa.select(Chat).where(Chat.id.in_(active))).all():
            runs_service.cancel_active_runs(chat, session=session)


def _wait_until_dbos_settles() -> None:
    deadline = time.monotonic() + DBOS_SETTLE_SECONDS
    while unfinished := DBOS.list_workflows(status=UNFINISHED_DBOS_STATUSES, load_input=False, load_output=False):
        if time.monotonic() > deadline:
            ids = [workflow.workflow_id for workflow in unfinished]
            raise AssertionError(f"DBOS workflows still unfinished after {DBOS_SETTLE_SECONDS:g} s: {ids}")
        time.sleep(0.02)


def _delete_every_row(database: Database) -> None:
    tables = Base.metadata.sorted_tables
    with database.writing() as session:
        if database.dialect == "postgresql":
            names = ", ".join(database.engine.dialect.identifier_preparer.format_table(table) for table in tables)
            # A connection left inside a transaction on these tables fails the test instead of hanging the suite.
            session.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
            session.execute(sa.text(f"TRUNCATE {names} CASCADE"))
        else:
            for table in reversed(tables):
                session.execute(table.delete())


class SharedApps:
    """The shared app of each backend; at most one runs, since DBOS is one per process."""

    def __init__(self, data_dir: Path) -> None:
        self._apps = {backend: SharedApp(backend, data_dir / backend) for backend in BACKENDS}

    def get(self, backend: str) -> SharedApp:
        for other in self._apps.values():
            if other.backend != backend:
                other.stop()
        return self._apps[backend]

    def stop(self) -> None:
        for app in self._apps.values():
            app.stop()

    def close(self) -> None:
        for app in self._apps.values():
            app.close()


def _order(item: pytest.Item) -> tuple[int, bool]:
    fixtures = getattr(item, "fixturenames", ())
    if "browser" in fixtures:
        # Last: Playwright's sync API keeps an event loop running in the main thread until the session ends, and
        # no test after it could run one of its own.
        return len(BACKENDS) + 1, False
    callspec = getattr(item, "callspec", None)
    backend = callspec.params.get("backend") if callspec is not None else None
    rank = BACKENDS.index(backend) + 1 if backend in BACKENDS else 0
    return rank, "own_dbos" in fixtures


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_order)


@pytest.fixture(scope="session")
def shared_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedApps]:
    apps = SharedApps(tmp_path_factory.mktemp("shared-apps"))
    yield apps
    apps.close()


@pytest.fixture
def own_dbos(shared_apps: SharedApps) -> None:
    """DBOS free for the test to launch: the shared app stops, and starts again for the next test that wants it."""
    shared_apps.stop()


@pytest.fixture(scope="session")
def template_renderer() -> Iterator[TemplateRenderer]:
    """Template worker processes as the executor runs them, with the default limits."""
    settings = Settings()
    renderer = TemplateRenderer(settings.render_limits, workers=2)
    renderer.start()
    yield renderer
    renderer.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def database_url(backend: str) -> Iterator[str | None]:
    """None for the embedded SQLite default; else the URL of a PostgreSQL database made for this test alone."""
    if backend == "sqlite":
        yield None
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def app_factory(tmp_path: Path, database_url: str | None, own_dbos: None) -> Iterator[Callable[..., TestClient]]:
    """Start an app (and its executor) with given settings on a database of its own; stopped at the end of the test."""
    clients: list[TestClient] = []

    def start(**overrides: Any) -> TestClient:
        settings = make_settings(tmp_path, database_url=database_url, **overrides)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(backend: str, shared_apps: SharedApps) -> Iterator[TestClient]:
    """A new user agent on the backend's shared app, which is emptied after the test."""
    app = shared_apps.get(backend)
    test_client = app.new_client()
    try:
        yield test_client
    finally:
        test_client.close()
        app.empty()


@pytest.fixture
def user(client: TestClient) -> dict[str, Any]:
    return sign_up(client)
