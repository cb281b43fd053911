"""What every Runwire process runs besides HTTP: the database at its newest schema, the process's signal hub and
cross-process signal listener (PostgreSQL), and the executor of the process's role."""

from runwire import migrate
from runwire.config import Settings
from runwire.db import Database
from runwire.runs.executor import Executor, InProcessExecutor, QueueClient
from runwire.runs.signals import HUB_KEY, SignalHub, listener_for


class Runtime:
    def __init__(self, settings: Settings, *, execute: bool) -> None:
        self.settings = settings
        self.hub = SignalHub()
        self.database = Database(
            settings.resolved_database_url, settings.database_pool_size, session_info={HUB_KEY: self.hub}
        )
        self.executor: Executor = (
            InProcessExecutor(settings, self.database, self.hub) if execute else QueueClient(settings)
        )
        self._listener = listener_for(settings.resolved_database_url, self.hub)

    def start(self) -> None:
        migrate.upgrade(self.database.engine)
        if self._listener is not None:
            self._listener.start()
        self.executor.start()

    def begin_drain(self) -> None:
        """Take no new run (see `drain.py`)."""
        self.executor.begin_drain()

    def stop(self, drain_deadline: float | None = None) -> None:
        """Stop; with a `drain_deadline` (on `time.monotonic()`'s clock), first let running steps finish until then."""
        if drain_deadline is not None:
            self.executor.drain(drain_deadline)
        self.executor.stop()
        if self._listener is not None:
            self._listener.stop()
        self.database.dispose()
