"""Who runs the runs in a process. Both kinds meet `service.Enqueue` and `decisions.SendToWaiter`:

- `InProcessExecutor` (`serve`, `worker`): launches DBOS with the run workflow, listens on the run queue, recovers
  this executor's unfinished runs and settles runs a crash left behind;
- `QueueClient` (`serve --no-executor`): queues runs through a DBOS client and executes nothing.
"""

import logging
import time
import uuid
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, DBOSConfig, EnqueueOptions, SetEnqueueOptions, SetWorkflowID
from sqlalchemy.orm import Session

from runwire.config import Settings
from runwire.db import Database, create_dbos_sqlite_engine
from runwire.runs import dbos_adapter, decisions, lifecycle
from runwire.runs.models import WorkflowRun
from runwire.runs.service import Enqueued
from runwire.runs.signals import Signal, SignalHub, raise_signal
from runwire.runs.states import Status
from runwire.runs.steps import StepRunner
from runwire.runs.workflow import CLASS_NAME, INSTANCE_NAME, WAITS_QUEUE_NAME, WORKFLOW_NAME, RunWorkflow
from runwire.templating.renderer import TemplateRenderer

log = logging.getLogger("runwire.executor")

APP_NAME = "runwire"
QUEUE_NAME = "runwire-runs"
MAX_DBOS_PRIORITY = 2**31 - 1
# How long runs stopped at the end of a drain may take to unwind before they are put back on the queue.
STOP_RUNS_SECONDS = 5.0
NOTIFICATION_POLL_SECONDS = 0.2
# On PostgreSQL, how long DBOS gathers the notifications of workflow events before it sends them (Runwire's only
# event is the decision an approval's waiter hands its step): its default (10 ms) wakes an idle process a hundred
# times a second, and a decision can wait a tenth of a second.
NOTIFICATION_COALESCE_SECONDS = 0.1
ENDED_DBOS_STATUSES = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})


def _priority(run: Enqueued) -> int:
    """The run's place in its chat: the partition runs them in request order even when two were queued within the
    same millisecond."""
    return min(run.chat_seq, MAX_DBOS_PRIORITY)


class _DbosEngine:
    """DBOS's SQLite system database engine, in WAL mode like Runwire's own (None on PostgreSQL)."""

    def __init__(self, settings: Settings) -> None:
        url = settings.resolved_dbos_url
        self.engine = create_dbos_sqlite_engine(url, settings.dbos_pool_size) if url.startswith("sqlite") else None

    def dispose(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


class InProcessExecutor:
    def __init__(self, settings: Settings, database: Database, hub: SignalHub) -> None:
        self.settings = settings
        self.database = database
        self.hub = hub
        self.renderer = TemplateRenderer(settings.render_limits, workers=settings.template_workers)
        runner = StepRunner(settings, database, self.renderer, hub.running_tasks)
        self._workflow = RunWorkflow(runner, max_parallel=settings.max_parallel_steps)
        self._dbos_engine = _DbosEngine(settings)
        self._waker: dbos_adapter.QueueWaker | None = None

    def start(self) -> None:
        self.renderer.start()
        DBOS(config=self._dbos_config())
        # Queued runs wake the queue (this process's, and on PostgreSQL every executor's through NOTIFY); polling
        # every `queue_poll_seconds` is only the fallback, and never slows down further.
        waker = self._waker = dbos_adapter.launch_with_wakeable_queues(self.settings.queue_poll_seconds)
        self._register_queues()
        self.hub.wake_queue = self._workflow.wake_queues = waker.wake
        self._workflow.announce_ended_while_draining = self._announce_run_ended_while_draining
        # The queue manager finds the queues just registered, and the runs DBOS's launch is putting back on its queue
        # (recovered) start at once.
        waker.wake()
        dbos_adapter.wait_until_queue_listened(QUEUE_NAME, timeout=3.0)
        self._settle_leftover_runs()

    def launch_without_listening(self) -> None:
        """DBOS with the run workflow, listening on no queue: to recover another executor's runs."""
        DBOS(config=self._dbos_config())
        DBOS.listen_queues([])
        DBOS.launch()
        self._register_queues()

    def _dbos_config(self) -> DBOSConfig:
        return {
            "name": APP_NAME,
            "system_database_url": self.settings.resolved_dbos_url,
            "application_version": self.settings.application_version,
            "executor_id": self.settings.executor_id,
            "system_database_engine": self._dbos_engine.engine,
            "sys_db_pool_size": self.settings.dbos_pool_size,
            "log_level": "WARNING",
            # On SQLite, DBOS looks for messages to waiting steps (approvals) by polling: this often.
            "notification_listener_polling_interval_sec": NOTIFICATION_POLL_SECONDS,
            "notification_coalesce_sec": NOTIFICATION_COALESCE_SECONDS,
        }

    def _register_queues(self) -> None:
        dbos_adapter.set_internal_queue_polling(self.settings.queue_poll_seconds)
        self.queue = DBOS.register_queue(
            QUEUE_NAME,
            partition_concurrency=1,
            polling_interval_sec=self.settings.queue_poll_seconds,
            on_conflict="always_update",
        )
        DBOS.register_queue(
            WAITS_QUEUE_NAME, polling_interval_sec=self.settings.queue_poll_seconds, on_conflict="always_update"
        )

    def begin_drain(self) -> None:
        """Take no new run and start no further step (see `drain.py`); from any thread."""
        self._workflow.draining = True
        if self._waker is not None:
            self._waker.stop()

    def drain(self, deadline: float) -> None:
        """Wait until no run executes here but those waiting for the process to stop, or until `deadline` (on
        `time.monotonic()`'s clock); then stop the runs left (one still executing a step is stopped as by a crash)
        and put every run this executor holds unfinished back on the run queue, where a live executor, or this one's
        restart, resumes them: those it stopped, and any the queue handed it as the drain began, which may not have
        reached the event loop before the process stops."""
        if not dbos_adapter.wait_until_queues_stopped(max(0.0, deadline - time.monotonic())):
            log.warning("the run queue's threads had not stopped when the grace ended")
        while self._workflow.working() and time.monotonic() < deadline:
            time.sleep(0.05)
        for run_id in sorted(self._workflow.working()):
            log.warning("run stopped mid-step: the grace ended", extra={"run_id": run_id})
        self._workflow.stop_runs()
        stopped_by = time.monotonic() + STOP_RUNS_SECONDS
        while (self._workflow.busy or self._workflow.parked) and time.monotonic() < stopped_by:
            time.sleep(0.02)
        handed = self.recover(self.settings.executor_id)
        if handed:
            log.info(
                "drained: runs left unfinished are back on the run queue",
                extra={"runs": len(handed), "executor_id": self.settings.executor_id},
            )

    def stop(self) -> None:
        self.hub.wake_queue = self._workflow.wake_queues = None
        DBOS.destroy()
        dbos_adapter.unregister_instance(self._workflow)
        self.renderer.stop()
        self._dbos_engine.dispose()

    def not_ready(self) -> str | None:
        """Why this executor cannot take runs now, or None."""
        if self._workflow.draining:
            return "the executor is draining before it stops"
        if not dbos_adapter.queue_listened(QUEUE_NAME):
            return "the executor is not listening on the run queue"
        return None

    def enqueue(self, run: Enqueued) -> None:
        with (
            SetWorkflowID(str(run.run_id)),
            SetEnqueueOptions(queue_partition_key=str(run.chat_id), priority=_priority(run)),
        ):
            self.queue.enqueue(self._workflow.execute_run, str(run.run_id))

    def send_to_waiter(self, waiter_id: str, message: dict[str, Any]) -> None:
        DBOS.send(waiter_id, message, decisions.TOPIC, idempotency_key=waiter_id)

    def _settle_leftover_runs(self) -> None:
        """Queue runs whose workflow was never queued, and fail runs whose workflow ended without them."""
        with self.database.reading() as session:
            active = _active_runs(session)
        for run in active:
            dbos_status = DBOS.get_workflow_status(str(run.run_id))
            if dbos_status is None:
                log.warning("queueing a run that was never queued", extra={"run_id": str(run.run_id)})
                self.enqueue(run)
            elif dbos_status.status in ENDED_DBOS_STATUSES:
                message = f"The run's durable workflow ended ({dbos_status.status}) before the run did."
                with self.database.writing() as session:
                    lifecycle.abandon_run(run.run_id, message, session=session)

    def _announce_queue_changed(self) -> None:
        """Every executor looks at the run queue at once, not at its next poll (on PostgreSQL through NOTIFY)."""
        with self.database.writing() as session:
            raise_signal(Signal.QUEUE_CHANGED, None, session=session)

    def _announce_run_ended_while_draining(self) -> None:
        """A run of this draining executor ended and DBOS has recorded it: the chat's next run may start now, but
        only another executor can take it, and the run's own end told them before DBOS freed the chat."""
        try:
            self._announce_queue_changed()
        except Exception:
            log.exception("could not tell the other executors that a run ended")

    def recover(self, executor_id: str) -> list[str]:
        """Put the runs a dead executor left unfinished back on the run queue, where live executors take them on.
        Completed steps are not run again: DBOS replays them from its checkpoints. Returns the runs' ids (the waiters
        of their approval steps go back on their queue too)."""
        recovered = dbos_adapter.recover_pending_workflows([executor_id])
        if recovered:
            self._announce_queue_changed()
        return [workflow_id for workflow_id in recovered if not decisions.is_waiter_id(workflow_id)]


class QueueClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._dbos_engine = _DbosEngine(settings)
        self._client: DBOSClient | None = None

    def start(self) -> None:
        DBOS.migrate(self.settings.resolved_dbos_url)
        self._client = DBOSClient(
            system_database_url=self.settings.resolved_dbos_url,
            system_database_engine=self._dbos_engine.engine,
            system_database_pool_size=self.settings.dbos_pool_size,
            application_name=APP_NAME,
        )

    def stop(self) -> None:
        if self._client is not None:
            self._client.destroy()
            self._client = None
        self._dbos_engine.dispose()

    def not_ready(self) -> str | None:
        return None if self._client is not None else "the run queue client is not started"

    def begin_drain(self) -> None:
        """Nothing to drain: this process executes no run."""

    def drain(self, deadline: float) -> None:
        """Nothing to drain: this process executes no run."""

    def enqueue(self, run: Enqueued) -> None:
        assert self._client is not None, "the queue client is not started"
        options: EnqueueOptions = {
            "workflow_name": WORKFLOW_NAME,
            "class_name": CLASS_NAME,
            "instance_name": INSTANCE_NAME,
            "queue_name": QUEUE_NAME,
            "workflow_id": str(run.run_id),
            "queue_partition_key": str(run.chat_id),
            "priority": _priority(run),
            "app_version": self.settings.application_version,
        }
        self._client.enqueue(options, str(run.run_id))

    def send_to_waiter(self, waiter_id: str, message: dict[str, Any]) -> None:
        assert self._client is not None, "the queue client is not started"
        self._client.send(waiter_id, message, decisions.TOPIC, idempotency_key=waiter_id)


Executor = InProcessExecutor | QueueClient


def recover_executor(settings: Settings, database: Database, executor_id: str) -> list[str]:
    """The dead executor's unfinished runs, back on the queue; returns their ids."""
    # Its own executor id, so that launching does not also recover the runs of a live process sharing ours.
    own_settings = settings.model_copy(update={"executor_id": f"runwire-recover-{uuid.uuid4().hex[:12]}"})
    executor = InProcessExecutor(own_settings, database, SignalHub())
    executor.launch_without_listening()
    try:
        return executor.recover(executor_id)
    finally:
        executor.stop()


def _active_runs(session: Session) -> list[Enqueued]:
    rows = session.execute(
        sa.select(WorkflowRun.id, WorkflowRun.chat_id, WorkflowRun.chat_seq)
        .where(WorkflowRun.status.in_([Status.PENDING, Status.RUNNING]))
        .order_by(WorkflowRun.chat_id, WorkflowRun.chat_seq)
    ).all()
    return [Enqueued(run_id=row.id, chat_id=row.chat_id, chat_seq=row.chat_seq) for row in rows]
