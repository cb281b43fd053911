"""Every use Runwire makes of DBOS's private API, in one place. `tests/unit/runs/test_dbos_adapter.py` fails loudly
when a DBOS upgrade moves any of it."""

import queue
import threading
import time
from collections.abc import Callable

from dbos import DBOS, _scheduler, _workflow_commands
from dbos import _dbos as dbos_internals
from dbos._dbos import _get_or_create_dbos_registry
from dbos._migration import get_migration_versions, get_sqlite_migration_versions
from dbos._queue import queue_thread
from sqlalchemy.engine import Engine

QUEUE_WORKER_THREAD_PREFIX = "queue-worker-"
# DBOS's background jobs (queueing delayed workflows, cancelling those past their deadline) look every second, each
# look a transaction on the system database. Runwire delays no workflow and gives none a deadline: every five seconds
# spares an idle process most of that work. Read when DBOS launches.
_workflow_commands._BACKGROUND_JOBS_INTERVAL_SEC = 5.0
# DBOS's scheduler looks for new schedules every second for its first minute, a transaction each time; Runwire has
# no schedules, so it looks at its configured interval from the start.
_scheduler._STARTUP_FAST_POLL_DURATION_SEC = 0.0


def recover_pending_workflows(executor_ids: list[str]) -> list[str]:
    """Put the unfinished workflows of dead executors back on their queues (DBOS's own recovery, which has no public
    entry point for another executor's workflows); returns their ids."""
    handles = DBOS._recover_pending_workflows(executor_ids)
    return [handle.get_workflow_id() for handle in handles]


def system_database_versions(engine: Engine) -> tuple[int, int]:
    """The migration version DBOS's system database is at, and the newest this DBOS knows (0: no schema yet)."""
    if engine.dialect.name == "sqlite":
        return get_sqlite_migration_versions(engine)
    return get_migration_versions(engine, "dbos", use_listen_notify=True)


def _queue_thread_names() -> set[str]:
    """The names of DBOS's queue worker threads running in this process."""
    return {
        thread.name
        for thread in threading.enumerate()
        if thread.name.startswith(QUEUE_WORKER_THREAD_PREFIX) and thread.is_alive()
    }


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether `condition` holds within `timeout` seconds (looked at every 10 ms)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def queue_listened(queue_name: str) -> bool:
    """Whether DBOS's worker thread for `queue_name` runs in this process."""
    return QUEUE_WORKER_THREAD_PREFIX + queue_name in _queue_thread_names()


def wait_until_queue_listened(queue_name: str, timeout: float) -> bool:
    """Wait until DBOS's worker thread for `queue_name` runs. DBOS notices a newly registered queue on its next check
    (up to a second later); without this wait the first run on a fresh data dir would sit in the queue until then."""
    return _wait_until(lambda: queue_listened(queue_name), timeout)


def wait_until_queues_stopped(timeout: float) -> bool:
    """Wait until none of DBOS's queue worker threads runs (once their stop event is set, each ends after the look at
    its queue under way, which may take a workflow and hand it to the event loop)."""
    return _wait_until(lambda: not _queue_thread_names(), timeout)


def set_internal_queue_polling(seconds: float) -> None:
    """How often DBOS's own queue (where recovery puts workflows back) is looked at when nothing wakes it; DBOS looks
    every second, which costs an idle process a transaction a second."""
    internal = _get_or_create_dbos_registry().get_internal_queue()
    internal._polling_interval_sec = seconds


def unregister_instance(instance: object) -> None:
    """Forget a configured instance, so that a later launch in this process (a test's next app) can register a new
    one under the same name: DBOS refuses a second instance of a name while the first is registered."""
    registry = _get_or_create_dbos_registry()
    registry.instance_info_map = {
        name: registered for name, registered in registry.instance_info_map.items() if registered is not instance
    }


class _WakeableEvent(threading.Event):
    """A stop event that `wake()` also ends a wait of (returning False: not stopped), so that a thread polling on
    its timeout looks at once. Each waiting thread sees every wake, including one that came while it was busy. No
    wait lasts longer than `longest_wait`: DBOS's queue threads double their polling interval (up to 120 s) while
    the database is contended, and a run must never wait that long.

    A wake notifies `_woken`, never the event's own condition: a wait begun before the event became a
    `_WakeableEvent` runs `threading.Event.wait`, which takes any notification of that condition for the event being
    set, and DBOS's queue threads would then stop for good.

    The threads in `unhurried` wait `longest_wait` whatever timeout they ask for, unless woken: DBOS's queue manager
    looks for newly registered queues every second, and Runwire registers its queues once, at launch, then wakes it."""

    _cond: threading.Condition  # threading.Event's own
    _woken: threading.Condition  # on the same lock
    _generation = 0
    longest_wait: float | None = None
    unhurried: frozenset[int] = frozenset()

    def wake(self) -> None:
        with self._cond:
            self._generation += 1
            self._woken.notify_all()

    def set(self) -> None:
        super().set()
        with self._cond:
            self._woken.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        thread = threading.get_ident()
        if thread in self.unhurried:
            timeout = self.longest_wait
        elif self.longest_wait is not None:
            timeout = self.longest_wait if timeout is None else min(timeout, self.longest_wait)
        with self._cond:
            seen: dict[int, int] = self.__dict__.setdefault("_seen", {})
            generation = self._generation
            if seen.get(thread, 0) == generation and not self.is_set():
                self._woken.wait_for(lambda: self.is_set() or self._generation != generation, timeout)
            seen[thread] = self._generation
            return self.is_set()


def launch_with_wakeable_queues(longest_wait: float, timeout: float = 10.0) -> "QueueWaker":
    """Launch DBOS so that this process can wake its queue threads, which otherwise look at their queues only every
    polling interval: their shared stop event (the one DBOS's launch makes for the queue manager, which hands it to
    every queue's worker thread) becomes a `_WakeableEvent`, whose waits last at most `longest_wait` seconds.

    The manager's thread makes the event wakeable before it starts any worker thread, so no thread ever waits on
    it unwakeable: a worker thread started on a queue already in the database (a restart, or a registration that
    beat the manager's first look) would otherwise sleep through every wake for its whole polling interval."""
    made: queue.Queue[QueueWaker] = queue.Queue(maxsize=1)

    def wakeable_queue_thread(stop_event: threading.Event, dbos: DBOS) -> None:
        made.put(make_wakeable(stop_event, longest_wait, unhurried={threading.get_ident()}))
        queue_thread(stop_event, dbos)

    # the name DBOS's launch starts the queue manager with
    dbos_internals.queue_thread = wakeable_queue_thread  # type: ignore[attr-defined]
    try:
        DBOS.launch()
    finally:
        dbos_internals.queue_thread = queue_thread  # type: ignore[attr-defined]
    try:
        return made.get(timeout=timeout)
    except queue.Empty:
        raise RuntimeError(f"DBOS's queue manager did not start within {timeout:g} s of its launch") from None


def make_wakeable(event: threading.Event, longest_wait: float, unhurried: set[int] | None = None) -> "QueueWaker":
    """Turn `event`, which threads may be waiting on already, into a `_WakeableEvent`."""
    assert type(event) is threading.Event
    event._woken = threading.Condition(event._cond._lock)  # type: ignore[attr-defined]
    event.__class__ = _WakeableEvent
    assert isinstance(event, _WakeableEvent)
    event.longest_wait = longest_wait
    event.unhurried = frozenset(unhurried or ())
    return QueueWaker(event)


class QueueWaker:
    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def wake(self) -> None:
        assert isinstance(self._event, _WakeableEvent)
        self._event.wake()

    def stop(self) -> None:
        """Stop DBOS's queue threads (the event is their stop event): this process dequeues no further workflow."""
        self._event.set()
