"""One JSON object per log line; request fields come from `extra`, never from headers or bodies.

What must never reach a log line is cut out of every message and exception: SQL statements and their parameters (a
failed write's parameters can hold a user's data and password hash), values a database quotes back, password hashes
and memory addresses. An exception is logged as its type and redacted message; its traceback only at DEBUG level.

What a line is about comes from `log_context`: the middleware puts each request's id there, the executor each run's
id, step id, tool id, attempt and executor id, so that every line written while handling them carries them (a
thread or task started there inherits them) and one `grep` of a run id or request id finds its whole story.
"""

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

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
# One encoder for every line (json.dumps makes a new one per call when given `default`).
_ENCODER = json.JSONEncoder(default=str)


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
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        given, context = record.__dict__, _CONTEXT.get()  # `extra` lands in the record's attributes
        for field in _FIELDS:
            if field in given:
                line[field] = given[field]
            elif field in context:
                line[field] = context[field]
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["exception"] = {"type": type(error).__qualname__, "message": redact(str(error))}
            if self.traceback:
                line["traceback"] = redact(self.formatException(record.exc_info))
        return _ENCODER.encode(line)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs, and replaces when called again (other handlers stay)."""


def configure_logging(level: str) -> None:
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(traceback=level.upper() == "DEBUG"))
    root = logging.getLogger("runwire")
    root.handlers[:] = [handler, *(kept for kept in root.handlers if not isinstance(kept, _StderrHandler))]
    root.setLevel(level.upper())
    root.propagate = False
