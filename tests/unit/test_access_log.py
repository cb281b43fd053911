"""The access line written straight to the handler `configure_logging` installs is the line the logging machinery
would have written through that handler; with a filter or another handler, the line goes through the machinery."""

import asyncio
import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from runwire.logs import AccessLog, configure_logging, log_context

FIELDS: dict[str, object] = {"request_id": "r1", "method": "GET", "path": "/api/x", "status": 200, "duration_ms": 1.5}


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def stream() -> Iterator[CountingStream]:
    runwire = logging.getLogger("runwire")
    kept = (runwire.handlers[:], runwire.level, runwire.propagate)
    runwire.handlers[:] = []
    configure_logging("INFO")
    (handler,) = runwire.handlers
    assert isinstance(handler, logging.StreamHandler)
    written = CountingStream()
    handler.setStream(written)
    try:
        yield written
    finally:
        runwire.handlers[:], runwire.level, runwire.propagate = kept


@contextlib.contextmanager
def installed_handler_alone(stream: CountingStream) -> Iterator[None]:
    """Only the installed handler (the one writing to `stream`), without those pytest adds to every logger that does
    not propagate while a test runs."""
    runwire = logging.getLogger("runwire")
    kept = runwire.handlers[:]
    runwire.handlers[:] = [handler for handler in kept if getattr(handler, "stream", None) is stream]
    try:
        yield
    finally:
        runwire.handlers[:] = kept


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_direct_line_is_the_handlers_line(stream: CountingStream) -> None:
    access = AccessLog()
    with installed_handler_alone(stream), log_context(run_id="run-1", request_id="from-context"):
        assert access._sole_handler() is not None  # so the next line is written directly
        access.write(FIELDS)
        logging.getLogger("runwire.access").info("request", extra=FIELDS)
    direct, through_logging = lines(stream)
    assert list(direct) == list(through_logging)
    for line in (direct, through_logging):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", str(line.pop("time")))
    assert (
        direct
        == through_logging
        == {
            "level": "info",
            "logger": "runwire.access",
            "message": "request",
            **FIELDS,
            "run_id": "run-1",
        }
    )


def test_with_a_filter_the_line_goes_through_logging(stream: CountingStream) -> None:
    access, logger = AccessLog(), logging.getLogger("runwire.access")
    seen: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return True

    logger.addFilter(keep)
    try:
        access.write(FIELDS)
    finally:
        logger.removeFilter(keep)
    assert [record.getMessage() for record in seen] == ["request"]
    assert [line["request_id"] for line in lines(stream)] == ["r1"]

    logging.getLogger("runwire").setLevel("WARNING")
    access.write(FIELDS)
    assert len(lines(stream)) == 1


def test_the_lines_of_one_loop_turn_go_out_together_at_the_next(stream: CountingStream) -> None:
    access = AccessLog()

    async def answer_three() -> str:
        for request_id in ("r1", "r2", "r3"):
            access.write({**FIELDS, "request_id": request_id})
        within_the_turn = stream.getvalue()
        await asyncio.sleep(0)  # the loop's next turn
        return within_the_turn

    with installed_handler_alone(stream):
        assert asyncio.run(answer_three()) == ""
        assert [line["request_id"] for line in lines(stream)] == ["r1", "r2", "r3"]
        assert stream.writes == 1
        access.write(FIELDS)  # no loop running in this thread: at once
    assert [line["request_id"] for line in lines(stream)] == ["r1", "r2", "r3", "r1"]
