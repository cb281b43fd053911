"""Pure graph rules for a workflow's steps: structure checks and dependency order."""

from collections.abc import Sequence
from heapq import heappop, heappush
from typing import Protocol


class StepNode(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def depends_on(self) -> list[str]: ...


Problem = tuple[str, str]


def structure_problems(steps: Sequence[StepNode], *, max_steps: int) -> list[Problem]:
    """Repeated ids, missing dependencies, cycles and too many steps, one entry per problem."""
    problems: list[Problem] = []
    if len(steps) > max_steps:
        problems.append(("steps", f"a workflow has at most {max_steps} steps, this one has {len(steps)}"))
    seen: set[str] = set()
    for index, step in enumerate(steps):
        if step.id in seen:
            problems.append((f"steps[{index}].id", f"step id '{step.id}' is used more than once"))
        seen.add(step.id)
    for index, step in enumerate(steps):
        for dep in step.depends_on:
            if dep not in seen:
                problems.append((f"steps[{index}].dependsOn", f"step '{step.id}' depends on missing step '{dep}'"))
            elif dep == step.id:
                problems.append((f"steps[{index}].dependsOn", f"step '{step.id}' depends on itself"))
    if not problems:
        stuck = set(seen) - set(dependency_order(steps))
        for index, step in enumerate(steps):
            if step.id in stuck:
                problems.append((f"steps[{index}].dependsOn", f"step '{step.id}' is part of a dependency cycle"))
    return problems


def dependency_order(steps: Sequence[StepNode]) -> list[str]:
    """Every step after all it depends on, ties by definition order; steps on a cycle are left out."""
    index = {step.id: i for i, step in enumerate(steps)}
    waiting_on = {step.id: len(set(step.depends_on)) for step in steps}
    dependents: dict[str, list[str]] = {step.id: [] for step in steps}
    for step in steps:
        for dep in set(step.depends_on):
            if dep in dependents:
                dependents[dep].append(step.id)
    ready = [index[s] for s, count in waiting_on.items() if count == 0]
    order: list[str] = []
    while ready:
        step_id = steps[heappop(ready)].id
        order.append(step_id)
        for child in dependents[step_id]:
            waiting_on[child] -= 1
            if waiting_on[child] == 0:
                heappush(ready, index[child])
    return order


def ancestors(steps: Sequence[StepNode]) -> dict[str, set[str]]:
    """For each step, every step upstream of it (direct and transitive); the graph must be acyclic."""
    by_id = {step.id: step for step in steps}
    result: dict[str, set[str]] = {}
    for step_id in dependency_order(steps):
        upstream: set[str] = set()
        for dep in by_id[step_id].depends_on:
            upstream |= {dep} | result[dep]
        result[step_id] = upstream
    return result
