"""render_value / render_text: typed lone expressions, text otherwise, and every failure as TemplateError."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runwire.templating import sandbox
from runwire.templating.sandbox import TemplateError

MAX_CHARS = 1_000_000


def render_value(value: object, context: dict[str, object]) -> object:
    return sandbox.render_value(value, context, max_chars=MAX_CHARS)


def render_text(template: str, context: dict[str, object]) -> str:
    return sandbox.render_text(template, context, max_chars=MAX_CHARS)


CONTEXT: dict[str, object] = {
    "input": {"n": 3, "x": 1.5, "flag": True, "nothing": None, "name": "Ada", "tags": ["a", "b"], "obj": {"k": 1}},
    "steps": {"fetch": {"output": {"status": 200, "body": {"items": [{"id": 7}]}}}},
}


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("{{ input.n }}", 3),
        ("{{ input.x }}", 1.5),
        ("{{ input.flag }}", True),
        ("{{ input.nothing }}", None),
        ("{{ input.name }}", "Ada"),
        ("{{ input.tags }}", ["a", "b"]),
        ("{{ input.obj }}", {"k": 1}),
        ("  {{input.n}}\n", 3),
        ("{{- input.n -}}", 3),
        ("{# a note #}{{ input.n }}", 3),
        ("{{ steps.fetch.output.body['items'][0].id }}", 7),
        ('{{ steps["fetch"].output.status }}', 200),
        ("{{ input.n + 1 }}", 4),
        ("{{ (1, 2) }}", [1, 2]),
        ("{{ input.tags | map('upper') }}", ["A", "B"]),
        ("{{ {'a': input.tags | length} }}", {"a": 2}),
        ("{{ input.name | safe }}", "Ada"),
    ],
)
def test_a_lone_expression_keeps_its_json_type(template: str, value: object) -> None:
    result = render_value(template, CONTEXT)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("n={{ input.n }}", "n=3"),
        ("{{ input.n }}{{ input.n }}", "33"),
        ("{{ input.tags }} and more", "['a', 'b'] and more"),
        ("{% for t in input.tags %}<{{ t }}>{% endfor %}", "<a><b>"),
        ("{% if input.flag %}yes{% endif %}", "yes"),
    ],
)
def test_anything_else_renders_to_text(template: str, text: str) -> None:
    assert render_value(template, CONTEXT) == text
    assert render_text(template, CONTEXT) == text


def test_render_text_never_types_a_lone_expression() -> None:
    assert render_text("{{ input.n }}", CONTEXT) == "3"


def test_keys_win_over_dict_methods() -> None:
    context: dict[str, object] = {"input": {"items": [1, 2], "keys": "k", "get": {"x": 1}}}
    assert render_value("{{ input.items }}", context) == [1, 2]
    assert render_value("{{ input.keys }}-{{ input.get.x }}", context) == "k-1"
    assert render_value("{{ input.get.items() | list }}", context) == [["x", 1]]


def test_json_structures_are_walked_and_plain_values_pass_through() -> None:
    value = {"a": ["{{ input.n }}", "plain {", 2, None, False], "b": {"c": "id-{{ input.n }}"}, "d": 1.5}
    assert render_value(value, CONTEXT) == {"a": [3, "plain {", 2, None, False], "b": {"c": "id-3"}, "d": 1.5}


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("{{ input.missing }}", "'missing'"),
        ("{{ input.obj.k.deeper }}", "'deeper'"),
        ("{{ input.tags[5] }}", "5"),
        ("{{ steps.other.output }}", "'other'"),
        ("{{ nobody }}", "'nobody'"),
        ("hello {{ input.missing }}", "'missing'"),
        ("{{ input.missing | upper }}", "'missing'"),
    ],
)
def test_missing_names_are_errors_that_say_what_is_missing(template: str, named: str) -> None:
    with pytest.raises(TemplateError) as raised:
        render_value(template, CONTEXT)
    assert named in raised.value.message
    assert "dict object" not in raised.value.message


def test_a_missing_step_lists_the_steps_that_are_there() -> None:
    with pytest.raises(TemplateError, match="available: fetch"):
        render_value("{{ steps.other.output }}", CONTEXT)


class _Secretive:
    _private = "hidden"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ input.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ obj._private }}",
        "text {{ obj._private }}",
        "{{ input.tags.append(1) }}",
        "{{ 'a' * 100000000 }}",
        "{{ 9 ** 999999 }}",
    ],
)
def test_sandbox_escapes_are_refused(template: str) -> None:
    with pytest.raises(TemplateError) as raised:
        render_value(template, {**CONTEXT, "obj": _Secretive()})
    assert "not allowed" in raised.value.message


@pytest.mark.parametrize("template", ["{{ input.n / 0 }}", "{{ input.name + 1 }}"])
def test_runtime_errors_are_template_errors(template: str) -> None:
    with pytest.raises(TemplateError, match="the template failed"):
        render_value(template, CONTEXT)


@pytest.mark.parametrize("template", ["{{ cycler }}", "{{ 1e400 }}", "{{ {1: 2} }}"])
def test_values_without_a_json_form_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        render_value(template, CONTEXT)


@pytest.mark.parametrize("template", ["{{ input.n ", "{% if %}", "{{ input.n }}{% endfor %}"])
def test_syntax_errors_are_template_errors(template: str) -> None:
    with pytest.raises(TemplateError, match="invalid template"):
        render_value(template, CONTEXT)
    with pytest.raises(TemplateError, match="invalid template"):
        render_text(template, CONTEXT)


def json_values(text: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text
    return st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
    )


@given(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text())
def test_a_scalar_comes_back_with_its_type(value: object) -> None:
    result = render_value("{{ input.x }}", {"input": {"x": value}})
    assert type(result) is type(value)
    assert result == value


@given(json_values(st.text()))
def test_any_json_value_comes_back_unchanged(value: object) -> None:
    assert render_value("{{ input.x }}", {"input": {"x": value}}) == value


@given(json_values(st.text(st.characters(exclude_characters="{"))))
def test_values_without_templates_pass_through(value: object) -> None:
    assert render_value(value, {}) == value
