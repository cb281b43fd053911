"""Step inputs as sandboxed Jinja2 templates: parsing, dependency discovery and rendering (pure, no I/O).

Rendering runs a user's code: the server never calls `render_value` or `render_text` itself, but hands them to a
template worker process (`templating.renderer`), which bounds their time and memory.
"""

import math
import re
from collections.abc import ItemsView, Iterator, KeysView, Mapping, Set, ValuesView
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.environment import Template, TemplateExpression
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Bounds for the operators that can allocate without limit in one step (`'a' * 10**9`, `9 ** 10**9`);
# the sandbox already bounds range().
_MAX_REPEATED_LENGTH = 1_000_000
_MAX_EXPONENT = 1_000


INVALID_TEMPLATE = "invalid_template"
TEMPLATE_LIMIT = "template_limit"


class TemplateError(Exception):
    """A template that cannot be parsed or rendered; `message` is meant for the workflow's author, `code` is the
    failed step's error code."""

    def __init__(self, message: str, code: str = INVALID_TEMPLATE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _Undefined(StrictUndefined):
    """StrictUndefined whose message names the missing key instead of Python types ("'dict object' ...")."""

    @property
    def _undefined_message(self) -> str:
        name, obj = self._undefined_name, self._undefined_obj
        if self._undefined_hint or not isinstance(obj, Mapping | list):
            return str(super()._undefined_message)
        if isinstance(obj, list):
            return f"there is no item {name!r} in a list of {len(obj)} item(s)"
        keys = ", ".join(sorted(map(str, obj))[:20]) or "none"
        return f"there is no key {name!r} (available: {keys})"


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # The context is JSON data: `input.items` means the key "items", not the dict method.
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"exponents above {_MAX_EXPONENT} are not allowed")
        if operator == "*" and _repeated_length(left, right) > _MAX_REPEATED_LENGTH:
            raise SecurityError(f"repeating a text or list beyond {_MAX_REPEATED_LENGTH} items is not allowed")
        return super().call_binop(context, operator, left, right)


def _repeated_length(left: object, right: object) -> int:
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(times, int):
            return len(sequence) * times
    return 0


def _shown_as_data(value: object) -> object:
    """What a `{{ ... }}` in text shows: data only. A method, a generator or any other Python object would show
    its repr (with a memory address), so it is an error instead; iterators and views become lists."""
    if isinstance(value, Undefined | str | int | float) or value is None:
        return value
    if isinstance(value, Iterator | range | Set | KeysView | ValuesView | ItemsView):
        value = list(value)
    _require_data(value)
    return value


def _require_data(value: object) -> None:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif not (item is None or isinstance(item, str | int | float)):
            raise TemplateError(f"the template shows a Python object (a {type(item).__name__}), not data")


_env = _Environment(undefined=_Undefined, autoescape=False, finalize=_shown_as_data)


def is_template(value: str) -> bool:
    return "{{" in value or "{%" in value


def contains_template(value: object) -> bool:
    """True when any string inside the JSON value is a template."""
    return any(True for _ in _template_strings(value))


def referenced_step_ids(value: object) -> set[str]:
    """Step ids the templates in `value` read, as `steps.<id>` or `steps["<id>"]`."""
    found: set[str] = set()
    for source in _template_strings(value):
        for node in _read_only_tree(source).find_all((nodes.Getattr, nodes.Getitem)):
            match node:
                case nodes.Getattr(node=nodes.Name(name="steps"), attr=str(step_id)):
                    found.add(step_id)
                case nodes.Getitem(node=nodes.Name(name="steps"), arg=nodes.Const(value=str(step_id))):
                    found.add(step_id)
    return found


def referenced_roots(value: object) -> set[str]:
    """Free top-level names the templates in `value` read; the environment's helpers (range, ...) excluded."""
    roots: set[str] = set()
    for source in _template_strings(value):
        roots |= find_undeclared_variables(_read_only_tree(source))
    return roots.difference(_env.globals)


def render_value(value: object, context: Mapping[str, object], *, max_chars: int) -> object:
    """Render every template string in a JSON value; a lone `{{ expression }}` keeps its value's JSON type. Text
    longer than `max_chars` is a TEMPLATE_LIMIT error."""
    if isinstance(value, Mapping):
        return {key: render_value(item, context, max_chars=max_chars) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, context, max_chars=max_chars) for item in value]
    if not isinstance(value, str) or not is_template(value):
        return value
    compiled = _compile(value)
    if isinstance(compiled, TemplateExpression):
        with _template_errors():
            return _to_json(compiled(context))
    return _render_bounded(compiled, context, max_chars)


def render_text(template: str, context: Mapping[str, object], *, max_chars: int) -> str:
    return _render_bounded(_compile_text(template), context, max_chars)


def _render_bounded(compiled: Template, context: Mapping[str, object], max_chars: int) -> str:
    """Render piece by piece, stopping as soon as the text outgrows `max_chars`."""
    pieces: list[str] = []
    size = 0
    with _template_errors():
        for piece in compiled.generate(context):
            size += len(piece)
            if size > max_chars:
                raise TemplateError(f"the template's text is longer than {max_chars} characters", TEMPLATE_LIMIT)
            pieces.append(piece)
    return "".join(pieces)


def _template_strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        if is_template(value):
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _template_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _template_strings(item)


def _parse(source: str) -> nodes.Template:
    """A new syntax tree: compiling a tree folds its constants in place, so a compiled tree is never shared."""
    try:
        tree = _env.parse(source)
    except TemplateSyntaxError as error:
        raise TemplateError(f"invalid template: {error.message} (line {error.lineno})") from None
    except RecursionError:
        raise TemplateError(_TOO_DEEP) from None
    _check_depth(tree)
    return tree


# Deeper trees would exhaust the stack of whatever walks them next (reference analysis, Python's compiler).
MAX_TREE_DEPTH = 200
_TOO_DEEP = f"invalid template: it is nested more than {MAX_TREE_DEPTH} levels deep"


def _check_depth(tree: nodes.Node) -> None:
    pending = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_TREE_DEPTH:
            raise TemplateError(_TOO_DEEP)
        pending.extend((child, depth + 1) for child in node.iter_child_nodes())


# Trees only read, for the references; never compiled.
_read_only_tree = lru_cache(maxsize=1024)(_parse)


@lru_cache(maxsize=1024)
def _compile(source: str) -> Template | TemplateExpression:
    body = _parse(source.strip()).body
    if len(body) == 1 and isinstance(body[0], nodes.Output) and len(body[0].nodes) == 1:
        expression = body[0].nodes[0]
        if not isinstance(expression, nodes.TemplateData):
            # What env.compile_expression builds, made from the node already parsed: re-slicing the source
            # would have to mimic the lexer ({{- x -}}, comments around the expression).
            assign = nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)
            return TemplateExpression(_from_tree(nodes.Template([assign], lineno=1)), False)
    return _compile_text(source)


@lru_cache(maxsize=1024)
def _compile_text(source: str) -> Template:
    return _from_tree(_parse(source))


def _from_tree(tree: nodes.Template) -> Template:
    try:
        return _env.from_string(tree)
    except (RecursionError, MemoryError, SyntaxError, ValueError) as error:
        # Python's own compiler refuses what Jinja's parser took (too many nested blocks, too deep an expression).
        raise TemplateError(f"invalid template: it is too complex to compile ({type(error).__name__})") from None


@contextmanager
def _template_errors() -> Iterator[None]:
    """Turn anything a template raises while rendering into TemplateError."""
    try:
        yield
    except TemplateError:
        raise
    except SecurityError as error:
        raise TemplateError(f"the template is not allowed to do that: {error}") from None
    except (MemoryError, RecursionError) as error:
        kind = "memory" if isinstance(error, MemoryError) else "nesting depth"
        raise TemplateError(f"the template ran out of {kind} while rendering", TEMPLATE_LIMIT) from None
    except UndefinedError as error:
        raise TemplateError(f"the template refers to something missing: {error}") from None
    except Exception as error:
        raise TemplateError(f"the template failed: {_MEMORY_ADDRESS.sub('0x…', str(error))}") from None


# Python's reprs name objects by address; an error message never shows one.
_MEMORY_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")


def _to_json(value: object) -> object:
    """The expression's value as JSON data, or TemplateError when it has no JSON form."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TemplateError(f"the expression's value {value} is not a valid JSON number")
        return value
    if isinstance(value, str):
        return str(value)  # drops str subclasses such as Markup
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise TemplateError("the expression's value has an object key that is not a string")
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | range | Iterator):
        return [_to_json(item) for item in value]
    raise TemplateError(f"the expression's value (a {type(value).__name__}) is not JSON data")
