"""What a workflow's inputs refer to: step ids and top-level names, found by parsing the templates."""

import pytest

from runwire.templating.sandbox import (
    TemplateError,
    contains_template,
    is_template,
    referenced_roots,
    referenced_step_ids,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("{{ x }}", True), ("{% if x %}{% endif %}", True), ("a { b } c", False), ("{#", False), ("", False)],
)
def test_is_template(value: str, expected: bool) -> None:
    assert is_template(value) is expected


def test_contains_template_looks_inside_json() -> None:
    assert contains_template({"a": [1, {"b": "x {{ y }}"}]})
    assert not contains_template({"a": [1, {"b": "x"}], "c": None})


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("{{ steps.fetch.output.body }}", {"fetch"}),
        ('{{ steps["my-step"].output }}', {"my-step"}),
        ("{{ steps['a'].output }} and {{ steps.b.output.x }}", {"a", "b"}),
        ("{% for item in steps.list.output.items %}{{ item }}{% endfor %}", {"list"}),
        ("{{ steps.a.output if input.flag else steps.b.output }}", {"a", "b"}),
        ("{{ input.steps.fake }}", set()),
        ("{{ input.x }}", set()),
        ("steps.plain.output", set()),
        (42, set()),
        ({"h": {"Authorization": "{{ steps.auth.output.token }}"}, "l": ["{{ steps.c.output }}", 1]}, {"auth", "c"}),
    ],
)
def test_referenced_step_ids(value: object, ids: set[str]) -> None:
    assert referenced_step_ids(value) == ids


@pytest.mark.parametrize(
    ("value", "roots"),
    [
        ("{{ input.a }} {{ steps.b.output }}", {"input", "steps"}),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", set()),
        ("{% set x = 1 %}{{ x }}", set()),
        (["{{ secret }}", {"k": "{{ os.environ }}"}], {"secret", "os"}),
        ("no template", set()),
    ],
)
def test_referenced_roots(value: object, roots: set[str]) -> None:
    assert referenced_roots(value) == roots


@pytest.mark.parametrize("value", ["{{ steps.a.output ", ["ok", {"k": "{% if %}"}]])
def test_syntax_errors_are_reported(value: object) -> None:
    with pytest.raises(TemplateError, match="invalid template") as raised:
        referenced_step_ids(value)
    assert "line 1" in raised.value.message
    with pytest.raises(TemplateError):
        referenced_roots(value)
