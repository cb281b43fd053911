"""Plugins: an installed package adds tools through the `runwire.tools` entry points; a plugin that
cannot be loaded is reported and skipped."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from runwire.tools import plugins, registry
from runwire.tools.base import ToolError
from tests.helpers import RecordingContext
from tests.plugins import installed_test_plugins


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[plugins.Plugins]:
    with installed_test_plugins(tmp_path_factory.mktemp("plugins")):
        found = plugins.load(reserved={tool.id for tool in registry.builtin_tools()})
        registry.install(found)
        yield found
        registry.uninstall(found)


def test_a_plugin_tool_joins_the_registry(loaded: plugins.Plugins) -> None:
    (shout,) = [tool for tool in loaded.tools if tool.id == "shout"]
    assert shout.source == "plugin:runwire-test-plugins"
    assert registry.get_tool("shout") is shout
    assert [tool.id for tool in registry.all_tools()][-1] == "shout"
    assert registry.input_schema(shout)["properties"]["text"]["maxLength"] == 10_000
    assert registry.literal_input_problems(shout, {"text": "hi", "times": 11}) == [
        ("inputs.times", "Input should be less than or equal to 10")
    ]
    assert registry.literal_input_problems(shout, {"text": "{{ input.x }}", "times": 2}) == []


def test_a_plugin_tool_runs_with_its_own_inputs_model(loaded: plugins.Plugins) -> None:
    shout = registry.get_tool("shout")
    assert shout is not None

    def run(inputs: dict[str, Any]) -> dict[str, object]:
        return asyncio.run(shout.run(registry.parse_inputs(shout, inputs), RecordingContext()))

    assert run({"text": "hey", "times": 2}) == {"text": "HEY HEY"}
    with pytest.raises(ToolError) as raised:
        run({"text": "a whisper"})
    assert (raised.value.code, raised.value.message) == ("too_quiet", "A whisper cannot be shouted.")
    with pytest.raises(ToolError, match="Input should be") as invalid:
        registry.parse_inputs(shout, {"text": 3})
    assert invalid.value.code == "invalid_inputs"


def test_failing_plugins_are_reported_and_skipped(loaded: plugins.Plugins) -> None:
    failures = {failure.entry_point: failure.message for failure in loaded.failures}
    assert set(failures) == {"missing_module", "not_a_tool", "takes_a_builtin_id", "fails_on_import"}
    assert "No module named 'runwire_test_plugins.nowhere'" in failures["missing_module"]
    assert "is not a runwire.tools.base.Tool" in failures["not_a_tool"]
    assert failures["takes_a_builtin_id"] == "the tool id 'delay' is taken"
    assert "RuntimeError: this plugin module fails as it is imported" in failures["fails_on_import"]
    assert registry.get_tool("delay") is registry.builtin_tools()[0]
