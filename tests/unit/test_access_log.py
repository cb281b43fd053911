"""The access line written straight to the handler `configure_logging` installs is the line the logging machinery
would have written through that handler; with a filter or another handler, the line goes through the machinery."""

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from runwire.logs import AccessLog, configure_logging, log_context

FIELDS: dict[str, object] = {"request_id": "r1", "method": "GET", "path": "/api/x", "status": 200, "duration_ms": 1.5}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    runwire = logging.getLogger("runwire")
    kept = (runwire.handlers[:], runwire.level, runwire.propagate)
    runwire.handlers[:] = []
    configure_logging("INFO")
    (handler,) = runwire.handlers
    assert isinstance(handler, logging.StreamHandler)
    written = io.StringIO()
    handler.setStream(written)
    try:
        yield written
    finally:
        runwire.handlers[:], runwire.level, runwire.propagate = kept


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_direct_line_is_the_handlers_line(stream: io.StringIO) -> None:
    access = AccessLog()
    with log_context(run_id="run-1", request_id="from-context"):
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


def test_with_a_filter_the_line_goes_through_logging(stream: io.StringIO) -> None:
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
