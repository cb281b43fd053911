"""The contract's limits on JSON data, wherever it comes from (a request body, a run input, a step's output):
integers within ±(2^53 - 1), finite floats, no NUL character in any string or key, and nesting no deeper than
MAX_DEPTH (every JSON writer has a limit of its own: orjson's is 255 levels)."""

import math
from collections.abc import Iterator

MAX_SAFE_INTEGER = 2**53 - 1
MAX_PROBLEMS = 20
MAX_DEPTH = 100
TOO_DEEP = f"arrays and objects must not nest deeper than {MAX_DEPTH} levels"

Problem = tuple[str, str]


def json_problems(value: object, root: str = "") -> list[Problem]:
    """(field path, message) for each value that breaks the limits, at most MAX_PROBLEMS of them. Walks without
    recursion, so that nesting of any depth is checked rather than exhausting the stack."""
    problems: list[Problem] = []
    for path, problem in _walk(value, root):
        problems.append((path or "body", problem))
        if len(problems) == MAX_PROBLEMS:
            break
    return problems


def _walk(value: object, root: str) -> Iterator[Problem]:
    pending: list[tuple[str, object, int]] = [(root, value, 0)]
    while pending:
        path, item, depth = pending.pop()
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, int):
            if abs(item) > MAX_SAFE_INTEGER:
                yield path, f"integers must lie within ±{MAX_SAFE_INTEGER} (2^53 - 1)"
        elif isinstance(item, float):
            if not math.isfinite(item):
                yield path, "numbers must be finite"
        elif isinstance(item, str):
            if "\x00" in item:
                yield path, "text must not contain a NUL character (\\u0000)"
        elif isinstance(item, dict | list | tuple) and depth == MAX_DEPTH:
            yield path, TOO_DEEP
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and "\x00" in key:
                    yield child_path.replace("\x00", "\\u0000"), "keys must not contain a NUL character (\\u0000)"
                pending.append((child_path, child, depth + 1))
        elif isinstance(item, list | tuple):
            for index in reversed(range(len(item))):
                pending.append((f"{path}[{index}]", item[index], depth + 1))
