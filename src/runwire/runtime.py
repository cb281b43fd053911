"""What every Runwire process runs besides HTTP: the database at its newest schema, the cross-process signal
listener (PostgreSQL), and the executor in the process's role."""

from runwire import schema
from runwire.config import Settings
from runwire.db import Database
from runwire.runs.engine import Executor
from runwire.runs.signals import listener_for


class Runtime:
    def __init__(self, settings: Settings, *, execute: bool) -> None:
        self.settings = settings
        self.database = Database(settings.resolved_database_url, settings.database_pool_size)
        self.executor = Executor(settings, self.database, execute=execute)
        self._listener = listener_for(settings.resolved_database_url)

    def start(self) -> None:
        schema.upgrade(self.database.engine)
        if self._listener is not None:
            self._listener.start()
        self.executor.start()

    def stop(self) -> None:
        self.executor.stop()
        if self._listener is not None:
            self._listener.stop()
        self.database.dispose()
