"""What a run started by a message says back: the words of its assistant message, for each way a run can end.

A workflow's `reply` template is rendered by the template workers before the run's final transaction, which is
handed the text; the rest is decided here, in plain Python, inside that transaction.
"""

from typing import Any

import orjson

from runwire.runs.states import Status

CANCELLED_ERROR = {"code": "cancelled", "message": "The run was cancelled before it finished."}


def default_reply(last_output: Any) -> str:
    """A workflow without a `reply`: the `text` of its last step in dependency order, else that output as JSON."""
    if isinstance(last_output, dict) and isinstance(last_output.get("text"), str):
        text: str = last_output["text"]
        return text
    return orjson.dumps(last_output).decode()


def ended_reply(target: Status, error: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The content and error of the reply a failed or cancelled run leaves."""
    if target is Status.FAILED and error is not None:
        return f"The workflow run failed: {error['message']}", error
    return "The workflow run was cancelled before it could answer.", CANCELLED_ERROR
