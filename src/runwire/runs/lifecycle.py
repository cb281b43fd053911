"""What the executor asks of the record: each function is one transaction, run inside one DBOS step.

Each is idempotent, because a DBOS step can run again after a crash that came between our commit and DBOS's
checkpoint: a step already started is not started twice, a step already ended is reported as it ended.
"""

import uuid
from typing import Any, TypedDict

from sqlalchemy.orm import Session

from runwire.db import utcnow
from runwire.runs import service
from runwire.runs.models import StepRun, WorkflowRun
from runwire.runs.states import Status, is_final
from runwire.templating.sandbox import contains_template
from runwire.tools import registry
from runwire.workflows import dag
from runwire.workflows.models import WorkflowVersion
from runwire.workflows.schemas import StepDef

MAX_LOG_ENTRIES = 200
RUN_NOT_FOUND = "run_not_found"


class PlannedStep(TypedDict):
    id: str
    dependsOn: list[str]
    status: str


class StepStart(TypedDict):
    toolId: str
    # The rendered inputs, or None while the definition's templates (`templateInputs`) are still to be rendered.
    inputs: dict[str, Any] | None
    templateInputs: dict[str, Any]
    timeoutSeconds: float | None
    retries: int
    templateContext: dict[str, Any]


def _definitions(run: WorkflowRun, *, session: Session) -> list[StepDef]:
    version = session.get(WorkflowVersion, (run.workflow_id, run.workflow_version))
    assert version is not None, "a run's pinned version is never deleted"
    return [StepDef.model_validate(step) for step in version.steps]


def start_run(run_id: uuid.UUID, *, session: Session) -> list[PlannedStep] | str | None:
    """Mark the run running and return its steps in dependency order; None when it has already ended,
    RUN_NOT_FOUND when no committed run has that id."""
    run = service.lock_run(run_id, session=session)
    if run is None:
        return RUN_NOT_FOUND
    if is_final(run.status):
        return None
    if run.status == Status.PENDING:
        service.transition_run(run, Status.RUNNING, session=session)
    depends_on = {step.id: step.depends_on for step in _definitions(run, session=session)}
    return [
        PlannedStep(id=step.step_id, dependsOn=depends_on[step.step_id], status=step.status)
        for step in service.run_steps(run.id, session=session)
    ]


def _step(run: WorkflowRun, step_id: str, *, session: Session) -> StepRun:
    step = session.get(StepRun, (run.id, step_id))
    assert step is not None, f"run {run.id} has no step {step_id}"
    return step


def _template_context(run: WorkflowRun, definitions: list[StepDef], step_id: str, session: Session) -> dict[str, Any]:
    upstream = dag.ancestors(definitions)[step_id]
    outputs = {
        step.step_id: {"output": step.output}
        for step in service.run_steps(run.id, session=session)
        if step.step_id in upstream and step.status == Status.COMPLETED
    }
    return {"input": run.input, "steps": outputs}


def begin_step(run_id: uuid.UUID, step_id: str, *, session: Session) -> StepStart | str:
    """Start a step and count its first attempt; return what the attempt needs, or the status the step already
    ended with."""
    run = service.lock_run(run_id, session=session)
    if run is None:
        return Status.CANCELLED
    step = _step(run, step_id, session=session)
    if is_final(step.status):
        return step.status
    if is_final(run.status):
        return Status.CANCELLED
    definitions = _definitions(run, session=session)
    definition = next(d for d in definitions if d.id == step_id)
    context = _template_context(run, definitions, step_id, session)
    if step.status == Status.PENDING:
        service.transition_step(run, step, Status.RUNNING, session=session)
        if not _has_templates(definition):
            step.inputs = definition.inputs
    step.attempts += 1  # the first attempt, or the one that repeats an attempt a crash interrupted
    return StepStart(
        toolId=step.tool_id,
        inputs=step.inputs,
        templateInputs=definition.inputs,
        timeoutSeconds=definition.timeout_seconds,
        retries=definition.retries or 0,
        templateContext=context,
    )


def _has_templates(definition: StepDef) -> bool:
    """Whether any input the engine renders holds a template (the tool renders its `raw_inputs` itself)."""
    raw = raw_inputs(definition.tool_id)
    return any(contains_template(value) for name, value in definition.inputs.items() if name not in raw)


def raw_inputs(tool_id: str) -> frozenset[str]:
    tool = registry.get_tool(tool_id)
    return tool.raw_inputs if tool is not None else frozenset()


def record_inputs(run_id: uuid.UUID, step_id: str, inputs: dict[str, Any], *, session: Session) -> None:
    """Store a running step's rendered inputs (rendered outside any transaction); kept if already stored."""
    run = service.lock_run(run_id, session=session)
    if run is None:
        return
    step = _step(run, step_id, session=session)
    if step.status == Status.RUNNING and step.inputs is None:
        step.inputs = inputs


def _fail_step(run: WorkflowRun, step: StepRun, error: dict[str, str], *, session: Session) -> None:
    service.transition_step(run, step, Status.FAILED, error=error, session=session)
    message = f"Step '{step.step_id}' failed: {error['message']}"
    service.fail_run(run, service.error_info("step_failed", message), session=session)


def _append_log(step: StepRun, message: str) -> None:
    if len(step.logs) < MAX_LOG_ENTRIES:
        step.logs = [*step.logs, {"at": utcnow().isoformat(), "message": message}]


def start_retry(run_id: uuid.UUID, step_id: str, *, session: Session) -> bool:
    """Count a further attempt; False when the step is no longer running (so the attempt must not happen)."""
    run = service.lock_run(run_id, session=session)
    if run is None:
        return False
    step = _step(run, step_id, session=session)
    if step.status != Status.RUNNING:
        return False
    step.attempts += 1
    return True


def log_step(run_id: uuid.UUID, step_id: str, message: str, *, session: Session) -> None:
    run = service.lock_run(run_id, session=session)
    if run is not None:
        _append_log(_step(run, step_id, session=session), message)


def report_progress(run_id: uuid.UUID, step_id: str, progress: int, message: str, *, session: Session) -> None:
    run = service.lock_run(run_id, session=session)
    if run is None or is_final(run.status):
        return
    step = _step(run, step_id, session=session)
    if step.status != Status.RUNNING:
        return
    _append_log(step, f"{progress}% {message}")
    data = {"stepId": step_id, "progress": progress, "message": message}
    service.append_event(run, "step_progress", data, session=session)


def finish_step(
    run_id: uuid.UUID,
    step_id: str,
    *,
    output: Any = None,
    error: dict[str, str] | None = None,
    session: Session,
) -> str:
    """Record a step's result; a failure fails the run. Returns the step's final status."""
    run = service.lock_run(run_id, session=session)
    if run is None:
        return Status.CANCELLED
    step = _step(run, step_id, session=session)
    if step.status != Status.RUNNING or is_final(run.status):
        return step.status if is_final(step.status) else Status.CANCELLED
    if error is None:
        service.transition_step(run, step, Status.COMPLETED, output=output, session=session)
    else:
        _fail_step(run, step, error, session=session)
    return step.status


def finish_run(run_id: uuid.UUID, *, session: Session) -> str | None:
    """End a run whose steps have all ended; a run already ended is left as it is."""
    run = service.lock_run(run_id, session=session)
    if run is None:
        return None
    if not is_final(run.status):
        steps = service.run_steps(run.id, session=session)
        if all(step.status == Status.COMPLETED for step in steps):
            service.transition_run(run, Status.COMPLETED, session=session)
        else:
            unfinished = ", ".join(step.step_id for step in steps if step.status != Status.COMPLETED)
            error = service.error_info("executor_error", f"The run ended with unfinished steps: {unfinished}.")
            service.fail_run(run, error, session=session)
    return run.status


def abandon_run(run_id: uuid.UUID, message: str, *, session: Session) -> None:
    """Fail a run that can no longer be executed (its durable workflow failed or vanished)."""
    run = service.lock_run(run_id, session=session)
    if run is not None and not is_final(run.status):
        service.fail_run(run, service.error_info("executor_error", message), session=session)
