"""What Runwire takes from DBOS's private API still exists: when a DBOS upgrade moves it, this fails first."""

import inspect
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from dbos import DBOS, DBOSConfig
from dbos import _dbos as dbos_internals
from dbos._queue import queue_thread

from runwire.runs import dbos_adapter
from runwire.runs.workflow import INSTANCE_NAME
from tests.helpers import wait_for


@pytest.fixture
def launched(tmp_path: Path, own_dbos: None) -> Iterator[None]:
    DBOS(config={"name": "adapter-check", "system_database_url": f"sqlite:///{tmp_path / 'dbos.db'}"})
    DBOS.launch()
    yield
    DBOS.destroy()


def test_recovery_entry_point_answers_for_an_executor_without_runs(launched: None) -> None:
    assert dbos_adapter.recover_pending_workflows(["no-such-executor"]) == []


def test_the_queue_worker_thread_is_found_by_its_name(launched: None) -> None:
    DBOS.register_queue("adapter-check-queue", polling_interval_sec=0.05)
    assert dbos_adapter.wait_until_queue_listened("adapter-check-queue", timeout=5.0)
    names = [thread.name for thread in threading.enumerate()]
    assert dbos_adapter.QUEUE_WORKER_THREAD_PREFIX + "adapter-check-queue" in names


def test_a_configured_instance_can_be_unregistered_and_registered_again() -> None:
    from dbos._dbos import _get_or_create_dbos_registry

    class Holder:
        config_name = INSTANCE_NAME

    registry = _get_or_create_dbos_registry()
    first, second = Holder(), Holder()
    registry.register_instance(first)
    assert first in registry.instance_info_map.values()
    dbos_adapter.unregister_instance(first)
    assert first not in registry.instance_info_map.values()
    registry.register_instance(second)
    dbos_adapter.unregister_instance(second)
    assert second not in registry.instance_info_map.values()


def test_the_system_databases_migration_versions_are_read(launched: None, tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dbos.db'}")
    try:
        recorded, newest = dbos_adapter.system_database_versions(engine)
    finally:
        engine.dispose()
    assert recorded == newest > 0


def test_the_queue_threads_wait_at_most_the_poll_interval_however_far_dbos_backs_off(
    tmp_path: Path, own_dbos: None
) -> None:
    DBOS(config={"name": "adapter-check", "system_database_url": f"sqlite:///{tmp_path / 'dbos.db'}"})
    waker = dbos_adapter.launch_with_wakeable_queues(longest_wait=0.05)
    try:
        event = waker._event
        began = time.monotonic()
        assert event.wait(timeout=120.0) is False  # what DBOS asks for after repeated contention
        assert time.monotonic() - began < 60
        waker.stop()
        assert event.wait(timeout=120.0) is True
    finally:
        DBOS.destroy()


@DBOS.workflow(name="adapter-check-answer")
def _answer() -> str:
    return "answered"


def test_a_queue_the_database_already_holds_is_woken_from_its_workers_first_wait(
    tmp_path: Path, own_dbos: None
) -> None:
    """A restarted process finds its queues in the database and starts their worker threads at once, before
    Runwire wakes anything: a wake must end even those threads' first wait, or a queued run waits a whole poll."""
    config: DBOSConfig = {"name": "adapter-check", "system_database_url": f"sqlite:///{tmp_path / 'dbos.db'}"}
    DBOS(config=config)
    DBOS.launch()
    DBOS.register_queue("adapter-check-slow", polling_interval_sec=120.0)
    DBOS.destroy()
    earlier = set(threading.enumerate())

    DBOS(config=config)
    waker = dbos_adapter.launch_with_wakeable_queues(longest_wait=120.0)
    try:
        launched_with = dbos_internals.queue_thread  # type: ignore[attr-defined]
        assert launched_with is queue_thread, "the name DBOS launches its queue manager with stays DBOS's"
        worker = _new_thread(dbos_adapter.QUEUE_WORKER_THREAD_PREFIX + "adapter-check-slow", earlier)
        handle = DBOS.enqueue_workflow("adapter-check-slow", _answer)
        waker.wake()
        assert worker.is_alive()
        assert wait_for(lambda: handle.get_status().status == "SUCCESS", timeout=10.0)
    finally:
        DBOS.destroy()


def _new_thread(name: str, earlier: set[threading.Thread]) -> threading.Thread:
    def started() -> threading.Thread | None:
        found = [thread for thread in threading.enumerate() if thread.name == name and thread not in earlier]
        return next((thread for thread in found if thread.is_alive()), None)

    thread: threading.Thread = wait_for(started, timeout=10.0)
    return thread


def test_the_background_jobs_interval_is_read_where_runwire_sets_it() -> None:
    from dbos import _workflow_commands

    assert _workflow_commands._BACKGROUND_JOBS_INTERVAL_SEC == 5.0
    assert "_BACKGROUND_JOBS_INTERVAL_SEC" in inspect.getsource(_workflow_commands.background_jobs_thread)


def _waiting(event: threading.Event, timeout: float) -> tuple[threading.Thread, list[bool]]:
    """A thread waiting on `event` (already inside the wait when this returns), and where its wait's result goes."""
    returned: list[bool] = []
    waiter = threading.Thread(target=lambda: returned.append(event.wait(timeout=timeout)))
    waiting_before = len(event._cond._waiters)  # type: ignore[attr-defined]
    waiter.start()
    while len(event._cond._waiters) == waiting_before:  # type: ignore[attr-defined]
        time.sleep(0.001)
    return waiter, returned


def test_a_wake_does_not_stop_a_thread_that_began_waiting_before_the_event_became_wakeable() -> None:
    event = threading.Event()
    waiter, returned = _waiting(event, timeout=0.5)  # as DBOS's queue threads wait when Runwire takes their event
    waker = dbos_adapter.make_wakeable(event, longest_wait=5.0)
    waker.wake()
    waiter.join()
    assert returned == [False], "the wake was taken for a stop"


def test_a_stop_ends_every_wait_begun_before_or_after_the_event_became_wakeable() -> None:
    event = threading.Event()
    before, returned_before = _waiting(event, timeout=30.0)
    waker = dbos_adapter.make_wakeable(event, longest_wait=30.0)
    after_returned: list[bool] = []
    after = threading.Thread(target=lambda: after_returned.append(event.wait(timeout=30.0)))
    after.start()
    time.sleep(0.05)
    assert before.is_alive() and after.is_alive()
    waker.stop()
    before.join(timeout=5.0)
    after.join(timeout=5.0)
    assert returned_before == [True] and after_returned == [True]


def test_dbos_own_queue_is_polled_as_often_as_runwire_sets(launched: None) -> None:
    from dbos._queue import queue_worker_thread

    dbos_adapter.set_internal_queue_polling(7.0)
    dbos = dbos_internals._dbos_global_instance
    assert dbos is not None
    assert dbos._registry.get_internal_queue()._polling_interval_sec == 7.0
    assert "_registry.get_internal_queue()" in inspect.getsource(queue_thread)
    assert "queue._polling_interval_sec" in inspect.getsource(queue_worker_thread)


def test_an_unhurried_thread_waits_the_longest_wait_unless_woken() -> None:
    event = threading.Event()
    dbos_adapter.make_wakeable(event, longest_wait=0.3, unhurried={threading.get_ident()})
    began = time.monotonic()
    assert event.wait(timeout=0.01) is False
    assert time.monotonic() - began >= 0.3

    event = threading.Event()
    waker = dbos_adapter.make_wakeable(event, longest_wait=0.3, unhurried={threading.get_ident()})
    waker.wake()
    began = time.monotonic()
    assert event.wait(timeout=0.01) is False  # the wake came while this thread was busy: it looks at once
    assert time.monotonic() - began < 0.3
    assert event.wait(timeout=0.01) is False  # one look per wake: the next wait is the longest again
    assert time.monotonic() - began >= 0.3


def test_the_schedulers_fast_start_is_read_where_runwire_sets_it() -> None:
    from dbos import _scheduler

    assert _scheduler._STARTUP_FAST_POLL_DURATION_SEC == 0.0
    assert "_STARTUP_FAST_POLL_DURATION_SEC" in inspect.getsource(_scheduler.dynamic_scheduler_loop)
