import pytest

from runwire.jsonlimits import MAX_DEPTH, MAX_PROBLEMS, MAX_SAFE_INTEGER, TOO_DEEP, json_problems


@pytest.mark.parametrize(
    "value",
    [None, True, 0, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 1.5, "text", {"a": [1, {"b": "c"}]}, []],
)
def test_values_within_the_limits_pass(value: object) -> None:
    assert json_problems(value) == []


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (2**64, "body"),
        ({"n": -(2**64)}, "n"),
        ({"n": MAX_SAFE_INTEGER + 1}, "n"),
        ({"x": [1, float("nan")]}, "x[1]"),
        ({"x": float("inf")}, "x"),
        ({"x": {"y": "a\x00b"}}, "x.y"),
        ({"a\x00": 1}, "a\\u0000"),
    ],
)
def test_each_breach_is_named_by_its_path(value: object, field: str) -> None:
    problems = json_problems(value)
    assert [path for path, _ in problems] == [field]


def test_deep_nesting_is_walked_without_recursion() -> None:
    value: object = "\x00"
    for _ in range(100_000):
        value = [value]
    (problem,) = json_problems(value)
    assert problem[0].endswith("[0]")


def test_problems_are_capped() -> None:
    assert len(json_problems(["\x00"] * 1000)) == MAX_PROBLEMS


def test_nesting_is_bounded() -> None:
    value: object = 1
    for _ in range(MAX_DEPTH):
        value = [value]
    assert json_problems(value) == []
    assert json_problems({"a": value}) == [("a" + "[0]" * (MAX_DEPTH - 1), TOO_DEEP)]
