"""A step whose DBOS step returned its output (`Completed`) is recorded by `StepRunner.settled`: by the transaction the
step started in this process, or, when the result came back from DBOS's checkpoint (the step ran in a process that
stopped before recording it), by a transaction of its own. Either way the door decides the step's status."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from runwire.db import Database
from runwire.runs import lifecycle
from runwire.runs.cancellation import RunningTasks
from runwire.runs.states import Status
from runwire.runs.steps import Completed, StepRunner
from runwire.templating.renderer import TemplateRenderer
from tests.factories import (
    delay_steps,
    make_chat,
    make_run,
    make_settings,
    make_user,
    recorded_state,
)


@pytest.fixture
def runner(database: Database, tmp_path: Path) -> StepRunner:
    settings = make_settings(tmp_path)
    return StepRunner(settings, database, TemplateRenderer(settings.render_limits, workers=1), RunningTasks())


@pytest.fixture
def planned(database: Database) -> tuple[Any, list[lifecycle.PlannedStep]]:
    """A run of two chained steps, started, with its first step begun."""
    with database.writing() as session:
        user = make_user(session)
        run_id = make_run(session, user, make_chat(session, user), delay_steps("a", "b")).id
    with database.writing() as session:
        steps = lifecycle.start_run(run_id, session=session)
    assert isinstance(steps, list)
    with database.writing() as session:
        lifecycle.begin_step(run_id, steps[0], session=session)
    return run_id, steps


def test_an_output_replayed_from_the_checkpoint_is_recorded_and_begins_the_next_step(
    runner: StepRunner, database: Database, planned: tuple[Any, list[lifecycle.PlannedStep]]
) -> None:
    run_id, (_, step_b) = planned
    replayed = Completed(output={"sleptSeconds": 0})
    assert asyncio.run(runner.settled(str(run_id), "a", replayed, [step_b])) is Status.COMPLETED
    _, _, steps, events = recorded_state(database, run_id)
    assert [(step_id, status, output) for step_id, status, _, output, *_ in steps] == [
        ("a", Status.COMPLETED, {"sleptSeconds": 0}),
        ("b", Status.RUNNING, None),
    ]
    assert events == ["run_started", "step_started", "step_completed", "step_started"]
    assert runner.has_begun(str(run_id), "b")
    # Replayed once more (a second recovery): the output recorded first stands, and nothing else moves.
    before = recorded_state(database, run_id)
    again = Completed(output={"sleptSeconds": 9})
    assert asyncio.run(runner.settled(str(run_id), "a", again, [step_b])) is Status.COMPLETED
    assert recorded_state(database, run_id) == before


def test_the_completion_started_by_the_step_is_the_one_awaited(
    runner: StepRunner, database: Database, planned: tuple[Any, list[lifecycle.PlannedStep]]
) -> None:
    run_id, _ = planned

    async def settle() -> Status:
        completion: asyncio.Future[Status] = asyncio.get_running_loop().create_future()
        runner.completing[(str(run_id), "a")] = completion
        completion.set_result(Status.CANCELLED)
        return await runner.settled(str(run_id), "a", Completed(output={"sleptSeconds": 0}), [])

    assert asyncio.run(settle()) is Status.CANCELLED
    assert not runner.completing
    assert [status for _, status, *_ in recorded_state(database, run_id)[2]] == [Status.RUNNING, Status.PENDING]


def test_an_output_recorded_after_the_run_was_cancelled_leaves_the_step_cancelled(
    runner: StepRunner, database: Database, planned: tuple[Any, list[lifecycle.PlannedStep]]
) -> None:
    run_id, (_, step_b) = planned
    with database.writing() as session:
        lifecycle.abandon_run(run_id, "stopped", session=session)
    replayed = Completed(output={"sleptSeconds": 0})
    assert asyncio.run(runner.settled(str(run_id), "a", replayed, [step_b])) is Status.CANCELLED
    assert not runner.has_begun(str(run_id), "b")


@pytest.mark.parametrize("status", list(Status))
def test_a_status_returned_by_the_step_is_its_final_word(
    runner: StepRunner, database: Database, planned: tuple[Any, list[lifecycle.PlannedStep]], status: Status
) -> None:
    run_id, _ = planned
    before = recorded_state(database, run_id)
    assert asyncio.run(runner.settled(str(run_id), "a", status, [])) is status
    assert recorded_state(database, run_id) == before
