"""The statuses a run or step can have, the moves between them, and what a requested move came to."""

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

RUN_MOVES: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELLED}),
    Status.RUNNING: frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED}),
}
STEP_MOVES: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.RUNNING, Status.CANCELLED}),
    Status.RUNNING: frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED}),
}


class Outcome(StrEnum):
    """What a requested move came to. Callers act on it and never re-check the row themselves."""

    APPLIED = "applied"
    # The run (or the step) had already ended: nothing changed.
    ALREADY_FINAL = "already_final"
    # The row is live but the move does not apply from where it is (e.g. finishing a step that is not running).
    STALE = "stale"
    # No committed run has that id.
    MISSING = "missing"


def judge(moves: dict[Status, frozenset[Status]], current: str, target: Status) -> Outcome | None:
    """None when the move from `current` to `target` is allowed, else what it comes to."""
    status = Status(current)
    if status in FINAL:
        return Outcome.ALREADY_FINAL
    return None if target in moves[status] else Outcome.STALE


def is_final(status: str) -> bool:
    return status in FINAL
