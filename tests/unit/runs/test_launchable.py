"""Which steps a run launches next, from its plan and its steps' statuses: the rule the workflow follows after each
completion, and with which a step launched alone tells its completion's transaction which steps to begin."""

from typing import Any

from runwire.runs import lifecycle
from runwire.runs.states import Status
from runwire.runs.workflow import launchable


def planned(step_id: str, *depends_on: str) -> lifecycle.PlannedStep:
    return lifecycle.PlannedStep(
        id=step_id,
        dependsOn=list(depends_on),
        status=Status.PENDING,
        toolId="delay",
        inputs={"seconds": 0},
        timeoutSeconds=None,
        retries=0,
        upstream=list(depends_on),
        templated=False,
        renders=False,
        deadline=None,
        runTimeoutSeconds=None,
    )


# a -> (b, c, d) -> e
DIAMOND = [planned("a"), planned("b", "a"), planned("c", "a"), planned("d", "a"), planned("e", "b", "c", "d")]


def ids(steps: list[lifecycle.PlannedStep]) -> list[str]:
    return [step["id"] for step in steps]


def statuses(**given: Any) -> dict[str, str]:
    return {step["id"]: given.get(step["id"], Status.PENDING) for step in DIAMOND}


def test_only_steps_whose_dependencies_all_completed_are_launched() -> None:
    assert ids(launchable(DIAMOND, statuses(), set(), 8)) == ["a"]
    assert ids(launchable(DIAMOND, statuses(a=Status.COMPLETED), {"a"}, 8)) == ["b", "c", "d"]
    done = statuses(a=Status.COMPLETED, b=Status.COMPLETED, c=Status.COMPLETED)
    assert ids(launchable(DIAMOND, done, {"a", "b", "c", "d"}, 8)) == []
    assert ids(launchable(DIAMOND, {**done, "d": Status.COMPLETED}, {"a", "b", "c", "d"}, 8)) == ["e"]


def test_at_most_room_steps_in_the_plans_order() -> None:
    assert ids(launchable(DIAMOND, statuses(a=Status.COMPLETED), {"a"}, 2)) == ["b", "c"]
    assert ids(launchable(DIAMOND, statuses(a=Status.COMPLETED), {"a", "b"}, 1)) == ["c"]
    assert launchable(DIAMOND, statuses(a=Status.COMPLETED), {"a"}, 0) == []


def test_ended_and_launched_steps_are_not_launched_again() -> None:
    ended = statuses(a=Status.COMPLETED, b=Status.FAILED, c=Status.CANCELLED, d=Status.COMPLETED)
    assert launchable(DIAMOND, ended, {"a"}, 8) == []
    # A step found running (a recovered run) is launched again unless this workflow launched it.
    running = statuses(a=Status.RUNNING)
    assert ids(launchable(DIAMOND, running, set(), 8)) == ["a"]
    assert launchable(DIAMOND, running, {"a"}, 8) == []
