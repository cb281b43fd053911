"""The deterministic DBOS workflow of a run: it only decides what to start next from the pinned DAG, and every tool
call happens inside a DBOS step (the step runner), as do Runwire's writes (`lifecycle`) but one: on PostgreSQL a step
that completes returns its output for DBOS to checkpoint, and the transaction recording it runs while DBOS writes the
checkpoint. The workflow awaits that transaction (`StepRunner.settled`) before it decides anything further; a run
resumed from the checkpoint records the output again, which changes nothing when it was recorded.

Concurrent steps draw their DBOS step ids in the workflow's own order (`DBOS.reserve_step`), and while more than one
is in flight `DBOS.asyncio_wait` checkpoints which finished first, so a recovered run replays the same decisions.
A lone step in flight is awaited as it is: nothing there to decide, so nothing to checkpoint.

The workflow is a method of a DBOS configured instance, which carries what the process runs steps with; DBOS records
the instance's name with each run and finds it again on recovery.

A draining executor (`drain.py`) starts no further step: its runs finish the steps in flight, then wait, unfinished,
for the process to stop and the next executor to resume them. While draining, steps in flight are awaited without a
checkpoint, and a run that awaited more than one that way waits too rather than finishing: nothing a replay would not
decide the same way is recorded.
"""

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

from dbos import DBOS, DBOSConfiguredInstance, SetWorkflowID, StepReservation

from runwire import metrics
from runwire.logs import set_log_context
from runwire.runs import decisions, lifecycle
from runwire.runs.states import FINAL, Outcome, Status
from runwire.runs.steps import StepRunner

log = logging.getLogger("runwire.workflow")

CLASS_NAME = "runwire.RunWorkflow"
INSTANCE_NAME = "runwire"
WORKFLOW_NAME = "execute_run"
WAITER_NAME = "await_decision"
# Waiters are queued (on a queue of their own, without limits) rather than started, so that recovery hands a dead
# executor's waiters to live executors as it does its runs.
WAITS_QUEUE_NAME = "runwire-waits"
# How long a step's waiter waits for its decision before it looks whether the step still waits for one (it ends once
# the step has ended, even when no message told it so: a run cancelled while no executor ran).
WAITER_RECHECK_SECONDS = 600.0
# How long a run's workflow waits for the run's row to be committed, at most about a minute: the request that
# queued it commits (or rolls back) within that even on a loaded machine, and a run given up on stays pending.
VISIBILITY_WAITS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 20.0)
# A wait this long for the creating request's commit is unusual enough to say so in the log.
VISIBILITY_WARNING_SECONDS = 1.0


@DBOS.dbos_class(CLASS_NAME)
class RunWorkflow(DBOSConfiguredInstance):
    def __init__(self, runner: StepRunner, *, max_parallel: int) -> None:
        self.runner = runner
        self.max_parallel = max_parallel
        # The runs executing here now, and those that stopped to wait for the process to stop (by id: their tasks).
        self.busy: dict[str, asyncio.Task[Any]] = {}
        self.parked: dict[str, asyncio.Task[Any]] = {}
        # Wakes this process's queue threads (set by the executor once it listens): a queued waiter starts at once.
        self.wake_queues: Callable[[], None] | None = None
        # Tells the other executors (blocking: called on a thread) that a run ended here while draining.
        self.announce_ended_while_draining: Callable[[], None] | None = None
        # The steps each busy run has in flight (by run id: its step tasks), read by `working`.
        self.in_flight: dict[str, dict[asyncio.Task[Any], str]] = {}
        super().__init__(INSTANCE_NAME)

    @property
    def draining(self) -> bool:
        """Set when the executor drains: no run takes a further step."""
        return self.runner.draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self.runner.draining = value

    @DBOS.workflow(name=WORKFLOW_NAME)
    async def execute_run(self, run_id: str) -> str | None:
        set_log_context(run_id=run_id, executor_id=self.runner.settings.executor_id)
        task = asyncio.current_task()
        assert task is not None
        # The task ends once DBOS has recorded the workflow's end, which frees the chat for its next run: the run
        # stays busy until then (a drain waits for that record), and the queues look then.
        task.add_done_callback(functools.partial(self._run_ended, run_id))
        self.busy[run_id] = task
        metrics.EXECUTOR_BUSY.set(len(self.busy))
        try:
            return await self._execute_run(run_id)
        finally:
            self.parked.pop(run_id, None)
            self.in_flight.pop(run_id, None)

    @DBOS.workflow(name=WAITER_NAME)
    async def await_decision(self, run_id: str, step_id: str) -> None:
        """An approval step's waiter (see `decisions`): it receives the step's decision and publishes it as its
        `decisions.EVENT`, which the step waits for; it ends without one once the step has ended."""
        while True:
            message = await DBOS.recv_async(decisions.TOPIC, timeout_seconds=WAITER_RECHECK_SECONDS)
            if message is not None:
                if decisions.is_decision(message):
                    await DBOS.set_event_async(decisions.EVENT, message)
                return
            if not await DBOS.run_step_async({"name": "still_waiting"}, self._still_waiting, run_id, step_id):
                return

    async def _still_waiting(self, run_id: str, step_id: str) -> bool:
        return await self.runner.read(lifecycle.step_is_live, uuid.UUID(run_id), step_id)

    async def _queue_waiter(self, run_id: str, step_id: str) -> str:
        with SetWorkflowID(decisions.waiter_id(run_id, step_id)):
            handle = await DBOS.enqueue_workflow_async(WAITS_QUEUE_NAME, self.await_decision, run_id, step_id)
        self._wake_queues()
        return handle.get_workflow_id()

    def _wake_queues(self) -> None:
        if self.wake_queues is not None:
            self.wake_queues()

    def _run_ended(self, run_id: str, task: "asyncio.Task[Any]") -> None:
        """On the event loop, once DBOS has recorded a run's end (or the executor stopped the run). A draining
        executor takes no further run: the others are told, on a thread, of a run that ended."""
        if self.busy.get(run_id) is task:
            del self.busy[run_id]
            metrics.EXECUTOR_BUSY.set(len(self.busy))
        self._wake_queues()
        if self.draining and not task.cancelled() and self.announce_ended_while_draining is not None:
            asyncio.get_running_loop().run_in_executor(None, self.announce_ended_while_draining)

    async def _park(self, run_id: str) -> NoReturn:
        """Wait, unfinished, until the executor stops it: it resumes on the next executor from its checkpoints."""
        self.parked[run_id] = self.busy.pop(run_id)
        metrics.EXECUTOR_BUSY.set(len(self.busy))
        log.info("run left for the next executor")
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable: the future is never done")

    def working(self) -> list[str]:
        """The busy runs that are doing something: all but those whose steps in flight all wait for decisions,
        which a drain need not wait for (a wait resumes on the next executor, nothing lost)."""
        return [
            run_id
            for run_id in list(self.busy)  # read from the draining thread while the loop's runs change it
            if not (steps := self.in_flight.get(run_id)) or self.runner.waiting[run_id] < len(steps)
        ]

    def stop_runs(self) -> None:
        """Cancel every run still here, busy or waiting, from any thread, as stopping the process would: DBOS
        records nothing for them, so they stay unfinished."""
        for task in {**self.busy, **self.parked}.values():
            task.get_loop().call_soon_threadsafe(task.cancel)

    async def _execute_run(self, run_id: str) -> str | None:
        if self.draining:
            await self._park(run_id)
        plan = await DBOS.run_step_async({"name": "start_run"}, self._start_run, run_id)
        if plan is None:
            return None
        try:
            await self._execute_dag(run_id, plan)
        except Exception as exc:
            log.exception("run failed in the executor", extra={"run_id": run_id})
            message = f"The executor failed unexpectedly ({type(exc).__name__}); the server's log has the details."
            await DBOS.run_step_async({"name": "abandon_run"}, self._abandon_run, run_id, message)
            return Status.FAILED
        return await DBOS.run_step_async({"name": "finish_run"}, self._finish_run, run_id)

    async def _start_run(self, run_id: str) -> list[lifecycle.PlannedStep] | None:
        # A run is queued just before the transaction that writes it commits (so that no committed run is ever left
        # unqueued): an executor that dequeues it at once may not see it yet.
        waited = 0.0
        for wait in (*VISIBILITY_WAITS, None):
            plan = await self.runner.write(lifecycle.start_run, uuid.UUID(run_id))
            if plan is not Outcome.MISSING or wait is None:
                break
            if waited < VISIBILITY_WARNING_SECONDS <= waited + wait:
                log.warning("the run's row is not visible yet; still waiting for it", extra={"run_id": run_id})
            waited += wait
            await asyncio.sleep(wait)
        if plan is Outcome.MISSING:
            log.warning("the run's row never became visible; its workflow ends", extra={"run_id": run_id})
        return plan if isinstance(plan, list) else None

    async def _finish_run(self, run_id: str) -> str | None:
        # The reply template is rendered before the final transaction, which is handed its text.
        reply = await self.runner.rendered_reply(uuid.UUID(run_id))
        return await self.runner.write(lifecycle.finish_run, uuid.UUID(run_id), reply)

    async def _abandon_run(self, run_id: str, message: str) -> None:
        await self.runner.write(lifecycle.abandon_run, uuid.UUID(run_id), message)

    async def _execute_dag(self, run_id: str, steps: list[lifecycle.PlannedStep]) -> None:
        status = {step["id"]: step["status"] for step in steps}
        launched: set[str] = set()
        in_flight: dict[asyncio.Task[Any], str] = {}
        self.in_flight[run_id] = in_flight
        halted = False
        # Steps awaited while draining without the checkpoint a replay would make: the run must not go on here.
        unrecorded = False
        try:
            while True:
                ready = [] if halted else launchable(steps, status, launched, self.max_parallel - len(in_flight))
                held = False
                if self.draining:
                    # A step that already began (with its predecessor's completion) is under way: it goes on.
                    held = any(not self.runner.has_begun(run_id, step["id"]) for step in ready)
                    ready = [step for step in ready if self.runner.has_begun(run_id, step["id"])]
                # A step launched alone hands its completion's transaction the steps that come next, to begin them.
                following: list[lifecycle.PlannedStep] = []
                if len(ready) == 1 and not in_flight and not self.draining:
                    (alone,) = ready
                    following = launchable(
                        steps, {**status, alone["id"]: Status.COMPLETED}, {*launched, alone["id"]}, self.max_parallel
                    )
                for step in ready:
                    launched.add(step["id"])
                    reservation = DBOS.reserve_step()
                    waiter = (
                        await self._queue_waiter(run_id, step["id"]) if step.get("waitsForDecision", False) else None
                    )
                    task = asyncio.create_task(self._step(reservation, run_id, step, waiter, following))
                    in_flight[task] = step["id"]
                if not in_flight:
                    if held or unrecorded:
                        await self._park(run_id)
                    return
                done: set[asyncio.Task[Any]]
                if self.draining or len(in_flight) == 1:
                    unrecorded = unrecorded or len(in_flight) > 1
                    await asyncio.wait(in_flight)
                    done = set(in_flight)
                else:
                    done, _ = await DBOS.asyncio_wait(list(in_flight), return_when=asyncio.FIRST_COMPLETED)
                for finished in sorted(done, key=lambda f: in_flight[f]):
                    step_id = in_flight.pop(finished)
                    status[step_id] = finished.result()
                    halted = halted or status[step_id] != Status.COMPLETED
        finally:
            for unfinished in in_flight:
                unfinished.cancel()
            self.runner.forget_run(run_id)

    async def _step(
        self,
        reservation: StepReservation,
        run_id: str,
        step: lifecycle.PlannedStep,
        waiter: str | None,
        following: list[lifecycle.PlannedStep],
    ) -> Status:
        """A step's DBOS step, on the id reserved for it, and its final status once its result is recorded."""
        result = await reservation.run_async(
            {"name": f"step:{step['id']}"}, self.runner.run, run_id, step, waiter, following
        )
        return await self.runner.settled(run_id, step["id"], result, following)


def launchable(
    steps: list[lifecycle.PlannedStep], status: dict[str, str], launched: set[str], room: int
) -> list[lifecycle.PlannedStep]:
    """The steps to launch now, in the plan's order, at most `room`: not launched yet, not ended, and with every
    dependency completed."""
    ready: list[lifecycle.PlannedStep] = []
    completed = {step_id for step_id, step_status in status.items() if step_status == Status.COMPLETED}
    for step in steps:
        if len(ready) >= room:
            break
        if step["id"] in launched or status[step["id"]] in FINAL:
            continue
        if completed.issuperset(step["dependsOn"]):
            ready.append(step)
    return ready
