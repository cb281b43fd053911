"""One JSON object per log line; request fields come from `extra`, never from headers or bodies.

What must never reach a log line is cut out of every message and exception: SQL statements and their parameters (a
failed write's parameters can hold a user's data and password hash), values a database quotes back, password hashes
and memory addresses. An exception is logged as its type and redacted message; its traceback only at DEBUG level.

What a line is about comes from `log_context`: the middleware puts each request's id there, the executor each run's
id, step id, tool id, attempt and executor id, so that every line written while handling them carries them (a
thread or task started there inherits them) and one `grep` of a run id or request id finds its whole story.
"""

import asyncio
import contextlib
import contextvars
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

import orjson

# The only fields a line carries besides its message: ids, names from fixed sets, numbers. Never a user's text.
_FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "run_id",
    "chat_id",
    "workflow_id",
    "step_id",
    "tool_id",
    "attempt",
    "executor_id",
    "operation",
    "error",
    "retry_in_seconds",
    "signal",
    "runs",
    "grace_seconds",
)
_CONTEXT: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "runwire_log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add `fields` to every line logged in this context (and in tasks and threads started from it) while the block
    runs."""
    token = _CONTEXT.set({**_CONTEXT.get(), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def set_log_context(**fields: object) -> None:
    """Add `fields` to every further line of this context (a request's task, a step's task)."""
    _CONTEXT.set({**_CONTEXT.get(), **fields})


_REDACTIONS = (
    (re.compile(r"\[SQL: .*?\](?=\n|$)", re.DOTALL), "[SQL redacted]"),
    (re.compile(r"\[parameters: .*?\](?=\n|$)", re.DOTALL), "[parameters redacted]"),
    (re.compile(r"^DETAIL: .*$", re.MULTILINE), "DETAIL: [redacted]"),
    (re.compile(r"\$argon2[a-z]*\$[^\s'\"]*"), "[password hash redacted]"),
    (re.compile(r"\b0x[0-9a-fA-F]{4,}\b"), "0x[address]"),
)
# What every text any of _REDACTIONS changes contains: one search spares the five substitutions of most lines.
_REDACTABLE = re.compile(r"\[SQL: |\[parameters: |DETAIL: |\$argon2|0x[0-9a-fA-F]{4}")


def redact(text: str) -> str:
    if _REDACTABLE.search(text) is None:
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, *, traceback: bool = False) -> None:
        super().__init__()
        self.traceback = traceback

    def format(self, record: logging.LogRecord) -> str:
        # `extra` lands in the record's attributes.
        line = _line(record.created, record.levelname, record.name, redact(record.getMessage()), record.__dict__)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["exception"] = {"type": type(error).__qualname__, "message": redact(str(error))}
            if self.traceback:
                line["traceback"] = redact(self.formatException(record.exc_info))
        return _text(line)


def _text(line: dict[str, object]) -> str:
    return orjson.dumps(line, default=str).decode()


def _line(created: float, level: str, logger: str, message: str, given: Mapping[str, object]) -> dict[str, object]:
    """The line of a message already redacted."""
    line: dict[str, object] = {
        "time": _clock_text(created),
        "level": level.lower(),
        "logger": logger,
        "message": message,
    }
    context = _CONTEXT.get()
    for field in _FIELDS:
        if field in given:
            line[field] = given[field]
        elif field in context:
            line[field] = context[field]
    return line


_second_text: tuple[int, str] = (0, "")


def _clock_text(created: float) -> str:
    """`created` as an ISO 8601 time to the millisecond, in UTC; the text of the second made once a second."""
    global _second_text
    second, millisecond = divmod(int(created * 1000), 1000)
    if _second_text[0] != second:
        text = datetime.fromtimestamp(second, UTC).isoformat()
        _second_text = (second, f"{text[:19]}.%03d{text[19:]}")
    return _second_text[1] % millisecond


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs, and replaces when called again (other handlers stay)."""

    def write_lines(self, lines: list[str]) -> None:
        self.acquire()
        try:
            self.stream.write("".join(line + self.terminator for line in lines))
            self.flush()
        finally:
            self.release()


class AccessLog:
    """The line each request leaves in the `runwire.access` log. When it would go only to the handler that
    `configure_logging` installed, it is written to that handler's stream directly: the very line the handler would
    write, without the record, the look-ups and the layers of the logging machinery, which cost a cheap request a
    tenth of its time. Otherwise (another handler, a filter: a test capturing the log, say) it is logged as usual.

    Written directly, the lines of the requests an event loop's turn answers go out together at the start of its next
    turn: one write for all of them instead of one each. A line keeps the time it was made at. (A worker's own small
    server answers on a loop in another thread: the lines wait under a lock.)"""

    def __init__(self) -> None:
        self.logger = logging.getLogger("runwire.access")
        self._pending: list[str] = []
        self._pending_lock = threading.Lock()

    def write(self, fields: dict[str, object]) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        handler = self._sole_handler()
        if handler is None:
            self.logger.info("request", extra=fields)
        else:
            line = _text(_line(time.time(), "INFO", self.logger.name, "request", fields))
            with self._pending_lock:
                self._pending.append(line)
                first = len(self._pending) == 1
            if first:
                self._flush_soon(handler)

    def _flush_soon(self, handler: "_StderrHandler") -> None:
        try:
            asyncio.get_running_loop().call_soon(self._flush, handler)
        except RuntimeError:  # no event loop in this thread: at once
            self._flush(handler)

    def _flush(self, handler: "_StderrHandler") -> None:
        with self._pending_lock:
            lines, self._pending = self._pending, []
        handler.write_lines(lines)

    def _sole_handler(self) -> "_StderrHandler | None":
        logger, parent = self.logger, self.logger.parent
        if logger.handlers or logger.filters or not logger.propagate or parent is None or parent.propagate:
            return None
        if len(parent.handlers) != 1 or parent.filters:
            return None
        (handler,) = parent.handlers
        if type(handler) is not _StderrHandler or handler.filters or handler.level > logging.INFO:
            return None
        return handler


def configure_logging(level: str) -> None:
    # A line names neither its source line, nor its thread or process: not looking them up spares every line the
    # work (the logging documentation's own advice for speed).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(traceback=level.upper() == "DEBUG"))
    root = logging.getLogger("runwire")
    root.handlers[:] = [handler, *(kept for kept in root.handlers if not isinstance(kept, _StderrHandler))]
    root.setLevel(level.upper())
    root.propagate = False
