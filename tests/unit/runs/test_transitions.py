"""The one door, pair by pair: every (from, to) status of runs and steps, on a plain SQLite session without DBOS."""

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from runwire.db import Database
from runwire.runs import transitions
from runwire.runs.models import RunEvent, StepRun, WorkflowRun
from runwire.runs.states import FINAL, RUN_MOVES, STEP_MOVES, Outcome, Status
from runwire.schemas import ErrorInfo
from tests.factories import delay_steps, make_chat, make_run, make_user, migrated_sqlite, new_id

ERROR = ErrorInfo(code="boom", message="it broke")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with migrated_sqlite(Path(tmp_path_factory.mktemp("transitions"))) as database:
        yield database


def _expected(moves: dict[Status, frozenset[Status]], current: Status, target: Status) -> Outcome:
    if current in FINAL:
        return Outcome.ALREADY_FINAL
    return Outcome.APPLIED if target in moves[current] else Outcome.STALE


def _events(session: sa.orm.Session, run: WorkflowRun) -> list[str]:
    query = sa.select(RunEvent.type).where(RunEvent.run_id == run.id).order_by(RunEvent.seq)
    return list(session.scalars(query))


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
def test_every_run_move(database: Database, current: Status, target: Status) -> None:
    with database.writing() as session:
        user = make_user(session, f"{new_id()}@example.com")
        run = make_run(session, user, make_chat(session, user), delay_steps("a", "b"))
        run.status = current
        session.flush()
        error = ERROR if target is Status.FAILED else None
        outcome = transitions.transition_run(run.id, target, error=error, session=session).outcome
        assert outcome is _expected(RUN_MOVES, current, target)
        steps = session.scalars(sa.select(StepRun).where(StepRun.run_id == run.id).order_by(StepRun.position)).all()
        if outcome is not Outcome.APPLIED:
            assert run.status == current and _events(session, run) == []
            return
        assert run.status == target
        if target is Status.RUNNING:
            assert run.started_at is not None and _events(session, run) == ["run_started"]
        else:
            assert run.completed_at is not None
            assert _events(session, run) == ["run_failed" if target is Status.FAILED else "run_completed"]
            assert run.error == (ERROR.model_dump() if target is Status.FAILED else None)
        if target in (Status.FAILED, Status.CANCELLED):
            assert [step.status for step in steps] == [Status.CANCELLED, Status.CANCELLED]
            assert all(step.started_at is None for step in steps)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
def test_every_step_move_in_a_running_run(database: Database, current: Status, target: Status) -> None:
    with database.writing() as session:
        user = make_user(session, f"{new_id()}@example.com")
        run = make_run(session, user, make_chat(session, user), delay_steps("a", "b", chained=False))
        assert transitions.transition_run(run.id, Status.RUNNING, session=session).applied
        step = session.get(StepRun, (run.id, "a"))
        assert step is not None
        step.status = current
        session.flush()
        error = ERROR if target is Status.FAILED else None
        moved = transitions.transition_step(run.id, "a", target, output={"ok": 1}, error=error, session=session)
        outcome = moved.outcome
        assert outcome is _expected(STEP_MOVES, current, target)
        if outcome is not Outcome.APPLIED:
            assert step.status == current and _events(session, run) == ["run_started"]
            return
        assert step.status == target
        if target is Status.FAILED:
            # Fail-fast: the run fails and its other step, never started, is cancelled.
            assert run.status == Status.FAILED and run.error is not None and run.error["code"] == "step_failed"
            other = session.get(StepRun, (run.id, "b"))
            assert other is not None and other.status == Status.CANCELLED
            assert _events(session, run)[-2:] == ["step_failed", "run_failed"]
        elif target is Status.COMPLETED:
            assert step.output == {"ok": 1} and _events(session, run)[-1] == "step_completed"


@pytest.mark.parametrize("ended", sorted(FINAL))
def test_a_step_of_an_ended_run_can_neither_start_nor_end(database: Database, ended: Status) -> None:
    with database.writing() as session:
        user = make_user(session, f"{new_id()}@example.com")
        run = make_run(session, user, make_chat(session, user), delay_steps("a"))
        run.status = ended
        session.flush()
        for target in (Status.RUNNING, Status.COMPLETED, Status.FAILED):
            moved = transitions.transition_step(run.id, "a", target, error=ERROR, session=session)
            assert moved.outcome is Outcome.ALREADY_FINAL and moved.status == Status.PENDING


def test_a_missing_run_is_missing(database: Database) -> None:
    with database.writing() as session:
        assert transitions.transition_run(new_id(), Status.CANCELLED, session=session).outcome is Outcome.MISSING
        assert transitions.transition_step(new_id(), "a", Status.RUNNING, session=session).outcome is Outcome.MISSING
