"""Every reason a workflow's steps can be refused, each as a (field, message) entry."""

from runwire.templating import sandbox
from runwire.tools import registry
from runwire.workflows import dag
from runwire.workflows.schemas import MAX_STEPS, StepDef

TEMPLATE_ROOTS = frozenset({"input", "steps"})


def step_problems(steps: list[StepDef]) -> list[dag.Problem]:
    problems = dag.structure_problems(steps, max_steps=MAX_STEPS)
    upstream = dag.ancestors(steps) if not problems else {}
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        tool = registry.get_tool(step.tool_id)
        if tool is None:
            problems.append((f"{where}.toolId", f"unknown tool '{step.tool_id}'"))
        else:
            problems += [
                (f"{where}.{field}", message) for field, message in registry.literal_input_problems(tool, step.inputs)
            ]
        problems += _template_problems(step, where, upstream.get(step.id))
    return problems


def reply_problems(reply: str | None, steps: list[StepDef]) -> list[dag.Problem]:
    """A reply template is rendered over `input` and every step's output once the run's steps are done."""
    if reply is None:
        return []
    try:
        roots = sandbox.referenced_roots(reply)
        referenced = sandbox.referenced_step_ids(reply)
    except sandbox.TemplateError as exc:
        return [("reply", exc.message)]
    problems = [
        ("reply", f"'{root}' is not defined; templates can use 'input' and 'steps'")
        for root in sorted(roots - TEMPLATE_ROOTS)
    ]
    known = {step.id for step in steps}
    return problems + [("reply", f"step '{ref}' is not a step of this workflow") for ref in sorted(referenced - known)]


def _template_problems(step: StepDef, where: str, upstream: set[str] | None) -> list[dag.Problem]:
    problems: list[dag.Problem] = []
    for name, value in step.inputs.items():
        field = f"{where}.inputs.{name}"
        try:
            roots = sandbox.referenced_roots(value)
            referenced = sandbox.referenced_step_ids(value)
        except sandbox.TemplateError as exc:
            problems.append((field, exc.message))
            continue
        for root in sorted(roots - TEMPLATE_ROOTS):
            problems.append((field, f"'{root}' is not defined; templates can use 'input' and 'steps'"))
        if upstream is None:
            continue
        for ref in sorted(referenced - upstream):
            problems.append((field, f"step '{ref}' is not upstream of step '{step.id}'"))
    return problems
