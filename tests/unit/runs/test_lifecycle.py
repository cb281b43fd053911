"""Each lifecycle operation done twice in a row, as a DBOS step that runs again after a crash would do it: the
second time changes nothing that the first one did (attempt counting, which counts an interrupted attempt, aside)."""

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from runwire.chats.models import Chat
from runwire.db import Database
from runwire.runs import lifecycle, transitions
from runwire.runs.models import StepRun, WorkflowRun
from runwire.runs.states import Outcome, Status
from runwire.schemas import ErrorInfo
from tests.factories import delay_steps, make_chat, make_run, make_user, new_id, recorded_state

T = TypeVar("T")


@pytest.fixture
def run_id(database: Database) -> Any:
    with database.writing() as session:
        user = make_user(session)
        steps = delay_steps("a", "b")
        steps[1]["inputs"] = {"seconds": "{{ steps.a.output.sleptSeconds }}"}
        return make_run(session, user, make_chat(session, user), steps).id


def twice(database: Database, operation: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, T]:
    """The operation in two transactions, one after the other, as the executor would write it."""
    results = []
    for _ in range(2):
        with database.writing() as session:
            results.append(operation(*args, session=session, **kwargs))
    return results[0], results[1]


def plan(database: Database, run_id: Any) -> list[lifecycle.PlannedStep]:
    with database.writing() as session:
        planned = lifecycle.start_run(run_id, session=session)
    assert isinstance(planned, list)
    return planned


def test_start_run_twice(database: Database, run_id: Any) -> None:
    first, second = twice(database, lifecycle.start_run, run_id)
    assert first == second and isinstance(first, list)
    assert [step["id"] for step in first] == ["a", "b"]
    assert first[1]["renders"] and first[1]["upstream"] == ["a"] and not first[0]["templated"]
    assert recorded_state(database, run_id)[3] == ["run_started"]


def test_start_run_of_a_missing_or_ended_run(database: Database, run_id: Any) -> None:
    assert twice(database, lifecycle.start_run, new_id()) == (Outcome.MISSING, Outcome.MISSING)
    twice(database, lifecycle.abandon_run, run_id, "gone")
    assert twice(database, lifecycle.start_run, run_id) == (Outcome.ALREADY_FINAL, Outcome.ALREADY_FINAL)


def test_begin_step_twice_starts_it_once_and_counts_the_repeated_attempt(database: Database, run_id: Any) -> None:
    step_a = plan(database, run_id)[0]
    first, second = twice(database, lifecycle.begin_step, run_id, step_a)
    assert first == second == {"inputs": {"seconds": 0}, "templateContext": {}}
    assert recorded_state(database, run_id)[3] == ["run_started", "step_started"]
    with database.reading() as session:
        step = session.get(StepRun, (run_id, "a"))
        assert step is not None and step.attempts == 2


def test_a_templated_step_begins_without_inputs_and_records_them_once(database: Database, run_id: Any) -> None:
    step_a, step_b = plan(database, run_id)
    twice(database, lifecycle.begin_step, run_id, step_a)
    twice(database, lifecycle.finish_step, run_id, "a", output={"sleptSeconds": 0})
    start, _ = twice(database, lifecycle.begin_step, run_id, step_b)
    assert not isinstance(start, Status)
    assert start["inputs"] is None
    assert start["templateContext"] == {"input": {}, "steps": {"a": {"output": {"sleptSeconds": 0}}}}
    twice(database, lifecycle.record_inputs, run_id, "b", {"seconds": 0})
    with database.writing() as session:
        lifecycle.record_inputs(run_id, "b", {"seconds": 99}, session=session)
        step = session.get(StepRun, (run_id, "b"))
        assert step is not None and step.inputs == {"seconds": 0}


def test_finish_step_twice(database: Database, run_id: Any) -> None:
    step_a = plan(database, run_id)[0]
    twice(database, lifecycle.begin_step, run_id, step_a)
    assert twice(database, lifecycle.finish_step, run_id, "a", output={"ok": True}) == (
        Status.COMPLETED,
        Status.COMPLETED,
    )
    before = recorded_state(database, run_id)
    # A different result for the same step changes nothing either: the first one recorded stands.
    error = ErrorInfo(code="late", message="too late")
    assert twice(database, lifecycle.finish_step, run_id, "a", error=error) == (Status.COMPLETED, Status.COMPLETED)
    assert recorded_state(database, run_id) == before


def test_failing_a_step_twice_fails_the_run_once(database: Database, run_id: Any) -> None:
    step_a = plan(database, run_id)[0]
    twice(database, lifecycle.begin_step, run_id, step_a)
    error = ErrorInfo(code="boom", message="it broke")
    assert twice(database, lifecycle.finish_step, run_id, "a", error=error) == (Status.FAILED, Status.FAILED)
    status, run_error, steps, events = recorded_state(database, run_id)
    assert status == Status.FAILED and run_error == {"code": "step_failed", "message": "Step 'a' failed: it broke"}
    assert [s[1] for s in steps] == [Status.FAILED, Status.CANCELLED]
    assert events == ["run_started", "step_started", "step_failed", "run_failed"]


def test_finish_run_twice(database: Database, run_id: Any) -> None:
    for step in plan(database, run_id):
        twice(database, lifecycle.begin_step, run_id, step)
        twice(database, lifecycle.record_inputs, run_id, step["id"], {"seconds": 0})
        twice(database, lifecycle.finish_step, run_id, step["id"], output={"sleptSeconds": 0})
    assert twice(database, lifecycle.finish_run, run_id) == (Status.COMPLETED, Status.COMPLETED)
    assert recorded_state(database, run_id)[3][-1] == "run_completed"
    assert recorded_state(database, run_id)[3].count("run_completed") == 1


def test_finish_run_with_unfinished_steps_fails_it_once(database: Database, run_id: Any) -> None:
    plan(database, run_id)
    assert twice(database, lifecycle.finish_run, run_id) == (Status.FAILED, Status.FAILED)
    status, run_error, _, events = recorded_state(database, run_id)
    assert status == Status.FAILED and run_error is not None and run_error["code"] == "executor_error"
    assert events.count("run_failed") == 1


def test_abandon_run_twice(database: Database, run_id: Any) -> None:
    plan(database, run_id)
    twice(database, lifecycle.abandon_run, run_id, "the workflow vanished")
    status, run_error, _, events = recorded_state(database, run_id)
    assert status == Status.FAILED and run_error == {"code": "executor_error", "message": "the workflow vanished"}
    assert events == ["run_started", "run_failed"]


def test_progress_retries_and_logs_only_touch_a_running_step(database: Database, run_id: Any) -> None:
    step_a = plan(database, run_id)[0]
    assert twice(database, lifecycle.start_retry, run_id, "a") == (False, False)
    twice(database, lifecycle.report_progress, run_id, "a", 50, "half")
    twice(database, lifecycle.log_step, run_id, "a", "note")
    assert recorded_state(database, run_id)[3] == ["run_started"]
    twice(database, lifecycle.begin_step, run_id, step_a)
    assert twice(database, lifecycle.start_retry, run_id, "a") == (True, True)
    twice(database, lifecycle.report_progress, run_id, "a", 50, "half")
    with database.reading() as session:
        step = session.get(StepRun, (run_id, "a"))
        assert step is not None and step.attempts == 4
        assert [entry["message"] for entry in step.logs] == ["50% half", "50% half"]


def chat_version(database: Database, run_id: Any) -> int:
    with database.reading() as session:
        chat_of_run = sa.select(WorkflowRun.chat_id).where(WorkflowRun.id == run_id).scalar_subquery()
        version = session.scalar(sa.select(Chat.last_event_seq).where(Chat.id == chat_of_run))
        assert version is not None
        return version


def test_every_change_to_a_step_moves_the_chats_version_on(database: Database, run_id: Any) -> None:
    """The run list and detail are served from bodies kept by the chat's version: a change that leaves the version
    where it was would keep serving the body from before it."""
    step_a, step_b = plan(database, run_id)
    changes: list[tuple[str, Callable[[], object]]] = [
        ("a step starts", lambda: twice(database, lifecycle.begin_step, run_id, step_a)),
        ("an attempt is counted", lambda: twice(database, lifecycle.start_retry, run_id, "a")),
        ("a log line", lambda: twice(database, lifecycle.log_step, run_id, "a", "note")),
        ("progress", lambda: twice(database, lifecycle.report_progress, run_id, "a", 50, "half")),
        ("a step ends", lambda: twice(database, lifecycle.finish_step, run_id, "a", output={"sleptSeconds": 0})),
        ("a templated step starts", lambda: twice(database, lifecycle.begin_step, run_id, step_b)),
        ("its rendered inputs", lambda: twice(database, lifecycle.record_inputs, run_id, "b", {"seconds": 0})),
    ]
    for change, make in changes:
        before = chat_version(database, run_id)
        make()
        assert chat_version(database, run_id) > before, change
    with database.reading() as session:
        step = session.get(StepRun, (run_id, "a"))
        assert step is not None and step.attempts == 4 and len(step.logs) == 4


def test_finishing_a_step_begins_the_next_in_the_same_transaction(database: Database, run_id: Any) -> None:
    step_a, step_b = plan(database, run_id)
    twice(database, lifecycle.begin_step, run_id, step_a)
    first, second = twice(database, lifecycle.finish_step_and_begin, run_id, "a", {"sleptSeconds": 0}, [step_b])
    context = {"input": {}, "steps": {"a": {"output": {"sleptSeconds": 0}}}}
    assert first == (Status.COMPLETED, {"b": {"inputs": None, "templateContext": context}})
    # Done again (a DBOS step run again after a crash), it begins nothing: the next step began the first time.
    assert second == (Status.COMPLETED, {})
    _, _, steps, events = recorded_state(database, run_id)
    assert events == ["run_started", "step_started", "step_completed", "step_started"]
    (_, _, _, _, _, _, a_completed_at), (_, b_status, _, _, _, b_started_at, _) = steps
    assert b_status == Status.RUNNING and b_started_at == a_completed_at
    with database.reading() as session:
        step = session.get(StepRun, (run_id, "b"))
        assert step is not None and step.attempts == 1


def test_a_failed_or_cancelled_step_begins_no_next_step(database: Database, run_id: Any) -> None:
    step_a, step_b = plan(database, run_id)
    twice(database, lifecycle.begin_step, run_id, step_a)
    twice(database, lifecycle.finish_step, run_id, "a", error=ErrorInfo(code="boom", message="it broke"))
    assert twice(database, lifecycle.finish_step_and_begin, run_id, "a", {"sleptSeconds": 0}, [step_b]) == (
        (Status.FAILED, {}),
        (Status.FAILED, {}),
    )
    assert [s[1] for s in recorded_state(database, run_id)[2]] == [Status.FAILED, Status.CANCELLED]


def test_a_step_of_a_cancelled_run_is_not_begun_by_its_predecessor(database: Database, run_id: Any) -> None:
    step_a, step_b = plan(database, run_id)
    twice(database, lifecycle.begin_step, run_id, step_a)
    with database.writing() as session:
        transitions.transition_run(run_id, Status.CANCELLED, session=session)
    assert twice(database, lifecycle.finish_step_and_begin, run_id, "a", {"sleptSeconds": 0}, [step_b]) == (
        (Status.CANCELLED, {}),
        (Status.CANCELLED, {}),
    )
    assert recorded_state(database, run_id)[3] == ["run_started", "step_started", "run_completed"]


def test_the_status_a_step_ended_with_while_its_attempt_was_under_way(database: Database, run_id: Any) -> None:
    """What the step runner reports when its attempt is stopped because the step ended meanwhile: a decision that
    completed the step completes it for the run too, so the run goes on."""
    step_a = plan(database, run_id)[0]
    twice(database, lifecycle.begin_step, run_id, step_a)
    assert twice(database, lifecycle.ended_status, run_id, "a") == (Status.CANCELLED, Status.CANCELLED)
    twice(database, lifecycle.finish_step, run_id, "a", output={"approved": True})
    assert twice(database, lifecycle.ended_status, run_id, "a") == (Status.COMPLETED, Status.COMPLETED)
    with database.writing() as session:
        transitions.transition_run(run_id, Status.CANCELLED, session=session)
    assert twice(database, lifecycle.ended_status, run_id, "b") == (Status.CANCELLED, Status.CANCELLED)
