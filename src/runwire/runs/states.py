"""The statuses a run or step can have and the moves between them."""

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


class IllegalMove(Exception):
    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"a {kind} cannot move from {current} to {target}")
        self.current = current
        self.target = target


def check_move(kind: str, moves: dict[Status, frozenset[Status]], current: str, target: Status) -> None:
    if target not in moves.get(Status(current), frozenset()):
        raise IllegalMove(kind, current, target)


def is_final(status: str) -> bool:
    return status in FINAL
