"""The run queue as Runwire's own table shows it (every process's runs), for the metrics: how many runs wait, how long
the oldest has waited, and how long the oldest has waited that nothing but the executors holds up (its chat has no
run running). Each is one statement over the partial indexes of pending and running runs, cheap at any volume."""

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa

from runwire.runs.models import WorkflowRun

_RUNS = cast(sa.Table, WorkflowRun.__table__)
_OTHER = _RUNS.alias("other")
# Literals, not parameters: a partial index serves only a statement whose condition is its own.
_IS_PENDING = _RUNS.c.status == sa.literal_column("'pending'")
_PENDING = sa.select(sa.func.count(), sa.func.min(_RUNS.c.created_at)).where(_IS_PENDING)
_RUNNING = sa.select(sa.func.count()).select_from(_RUNS).where(_RUNS.c.status == sa.literal_column("'running'"))
_OLDEST_READY = sa.select(sa.func.min(_RUNS.c.created_at)).where(
    _IS_PENDING,
    ~sa.exists().where(_OTHER.c.chat_id == _RUNS.c.chat_id, _OTHER.c.status == sa.literal_column("'running'")),
)


@dataclass(frozen=True)
class QueueStats:
    pending: int
    running: int
    oldest_pending: datetime | None
    oldest_ready: datetime | None


def queue_stats(connection: sa.Connection) -> QueueStats:
    pending, oldest_pending = connection.execute(_PENDING).one()
    running = connection.execute(_RUNNING).scalar_one()
    oldest_ready = connection.execute(_OLDEST_READY).scalar_one()
    return QueueStats(pending=pending, running=running, oldest_pending=oldest_pending, oldest_ready=oldest_ready)
