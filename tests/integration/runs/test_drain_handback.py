"""A drain hands back every run its executor holds unfinished, including one the run queue gave it as the drain began:
a queue thread part-way through its look when the drain stops it takes the run, and the process may stop before the
run reaches the event loop. DBOS would leave such a run pending under this executor, its chat's later runs waiting
behind it, until the executor restarts or someone runs `runwire recover`."""

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from dbos import DBOS
from fastapi.testclient import TestClient

from runwire.runs import dbos_adapter
from runwire.runs.executor import QUEUE_NAME
from tests.helpers import create_workflow, new_chat, sign_up, start_run, step, wait_for

DRAIN_SECONDS = 10.0


def queue_status(run_id: str) -> str | None:
    """The status DBOS holds for the run's workflow (None before it is queued)."""
    status = DBOS.get_workflow_status(run_id)
    return None if status is None else status.status


def take_as_a_queue_thread_would(dbos_url: str, run_id: str, executor_id: str) -> None:
    """What a queue thread's look writes when it takes a run (the run's workflow is this executor's, pending), without
    the hand-over to the event loop that follows it."""
    engine = sa.create_engine(dbos_url)
    table = "workflow_status" if engine.dialect.name == "sqlite" else "dbos.workflow_status"
    try:
        with engine.begin() as connection:
            taken = connection.execute(
                sa.text(f"UPDATE {table} SET status = 'PENDING', executor_id = :executor WHERE workflow_uuid = :id"),
                {"executor": executor_id, "id": run_id},
            )
            assert taken.rowcount == 1
    finally:
        engine.dispose()


def test_a_run_the_queue_handed_over_as_the_drain_began_goes_back_on_the_queue(
    app_factory: Callable[..., TestClient],
) -> None:
    client = app_factory()
    sign_up(client)
    chat = new_chat(client)
    workflow = create_workflow(client, [step("say", "template", {"template": "hi"})])
    app: Any = client.app
    executor, settings = app.state.executor, app.state.settings

    executor.begin_drain()
    assert dbos_adapter.wait_until_queues_stopped(DRAIN_SECONDS)
    assert not dbos_adapter.queue_listened(QUEUE_NAME)
    run_id = start_run(client, chat["id"], workflow["id"])["id"]
    assert wait_for(lambda: queue_status(run_id)) == "ENQUEUED"
    take_as_a_queue_thread_would(settings.resolved_dbos_url, run_id, settings.executor_id)
    assert queue_status(run_id) == "PENDING"

    executor.drain(time.monotonic() + DRAIN_SECONDS)

    assert queue_status(run_id) == "ENQUEUED"
