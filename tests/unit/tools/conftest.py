"""A real HTTP server on 127.0.0.1 and a recording ToolContext for the tool tests."""

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from runwire.templating.renderer import TemplateRenderer
from runwire.tools.base import ToolContext
from tests.helpers import RecordingContext, ToolServerHandler, serving


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """The base URL, http://127.0.0.1:<port>."""
    with serving() as url:
        yield url


@pytest.fixture
def hits() -> Callable[[], int]:
    """How many requests /count has answered so far."""
    return lambda: ToolServerHandler.hits


@pytest.fixture
def progress() -> list[tuple[int, str]]:
    """What the context made by `make_ctx` was told through report_progress."""
    return []


@pytest.fixture
def make_ctx(progress: list[tuple[int, str]], template_renderer: TemplateRenderer) -> Callable[..., ToolContext]:
    """A context with the given fields; 127.0.0.1 is allowed unless `allowed_hosts` says otherwise."""

    def make(**fields: Any) -> ToolContext:
        allowed = frozenset({"127.0.0.1"})
        return replace(RecordingContext(allowed_hosts=allowed, progress=progress, renderer=template_renderer), **fields)

    return make


@pytest.fixture
def ctx(make_ctx: Callable[..., ToolContext]) -> ToolContext:
    return make_ctx()
