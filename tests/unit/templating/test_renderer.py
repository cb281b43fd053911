"""The template workers: real processes, bounded in time, memory and output, killed on cancel."""

import asyncio
from collections.abc import Iterator

import pytest

from runwire.templating.renderer import RenderLimits, TemplateRenderer
from runwire.templating.sandbox import INVALID_TEMPLATE, TEMPLATE_LIMIT, TemplateError

SPIN = "{% for i in range(20000) %}{% for j in range(20000) %}{% endfor %}{% endfor %}"
LIMITS = RenderLimits(timeout_seconds=1.0, memory_bytes=128 * 1024 * 1024, max_output_bytes=64 * 1024)


@pytest.fixture
def renderer() -> Iterator[TemplateRenderer]:
    pool = TemplateRenderer(LIMITS, workers=1)
    pool.start()
    yield pool
    pool.stop()


def render_text(renderer: TemplateRenderer, template: str) -> str:
    return asyncio.run(renderer.render_text(template, {"input": {"n": 2}}))


def failure(renderer: TemplateRenderer, template: str) -> TemplateError:
    with pytest.raises(TemplateError) as raised:
        render_text(renderer, template)
    return raised.value


def test_values_keep_their_type_and_text_is_text(renderer: TemplateRenderer) -> None:
    value = asyncio.run(renderer.render_value({"a": "{{ input.n * 2 }}", "b": ["x{{ input.n }}"]}, {"input": {"n": 2}}))
    assert value == {"a": 4, "b": ["x2"]}
    assert render_text(renderer, "{{ input.n }}") == "2"


def test_a_render_past_its_time_is_killed_and_the_next_one_gets_a_fresh_worker(renderer: TemplateRenderer) -> None:
    error = failure(renderer, SPIN)
    assert (error.code, error.message) == (TEMPLATE_LIMIT, "the template did not finish within 1 seconds")
    assert render_text(renderer, "after") == "after"


@pytest.mark.parametrize(
    "template",
    ["{{ ('x' * 1000000)|center(200000000)|length }}", "{{ 'x' * 40000 }}{{ 'y' * 40000 }}"],
    ids=["memory", "output"],
)
def test_memory_and_output_are_bounded(renderer: TemplateRenderer, template: str) -> None:
    assert failure(renderer, template).code == TEMPLATE_LIMIT
    assert render_text(renderer, "still here") == "still here"


def test_template_mistakes_are_invalid_template(renderer: TemplateRenderer) -> None:
    error = failure(renderer, "{{ input.missing }}")
    assert error.code == INVALID_TEMPLATE and "'missing'" in error.message


def test_cancelling_a_render_frees_its_worker_at_once() -> None:
    pool = TemplateRenderer(RenderLimits(60.0, LIMITS.memory_bytes, LIMITS.max_output_bytes), workers=1)
    pool.start()

    async def cancel_then_render() -> str:
        spinning = asyncio.ensure_future(pool.render_text(SPIN, {}))
        await asyncio.sleep(0.3)
        spinning.cancel()
        with pytest.raises(asyncio.CancelledError):
            await spinning
        # The only worker was spinning for up to 60 s: this render gets one only because the first was killed.
        return await asyncio.wait_for(pool.render_text("next", {}), timeout=20)

    try:
        assert asyncio.run(cancel_then_render()) == "next"
    finally:
        pool.stop()


def test_a_new_workers_start_is_not_charged_to_the_render() -> None:
    # Far less time than a worker takes to start: only the render itself is timed.
    pool = TemplateRenderer(
        RenderLimits(timeout_seconds=0.05, memory_bytes=LIMITS.memory_bytes, max_output_bytes=64), workers=2
    )
    try:
        assert render_text(pool, "{{ input.n }}") == "2"  # starts a worker, no warm one
    finally:
        pool.stop()
