"""One JSON object per log line; request fields come from `extra`, never from headers or bodies."""

import json
import logging
import sys
from datetime import UTC, datetime

_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "run_id", "step_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _FIELDS:
            if hasattr(record, field):
                line[field] = getattr(record, field)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("runwire")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
