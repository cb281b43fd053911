"""What the list endpoints serve, checked against the database read directly: the chat's list at the same version,
the user's list as it stands."""

import uuid
from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.runs import listing

ListGet = Callable[[], tuple[dict[str, Any], str]]  # the body and the ETag one GET of the list answered

QUIET_STEPS = [
    {"id": "one", "toolId": "delay", "inputs": {"seconds": 0.4}},
    {"id": "two", "toolId": "delay", "inputs": {"seconds": 0.4}, "dependsOn": ["one"]},
    {"id": "three", "toolId": "template", "inputs": {"template": "done"}, "dependsOn": ["two"]},
]


def version_of(etag: str) -> int:
    return int(etag.strip('"').split("-", 1)[0])


def database_list(engine: sa.Engine, chat_id: str) -> tuple[dict[str, Any], int]:
    """The list as the database holds it now, built afresh (no cache), and the chat's version it was read at."""
    with engine.connect() as connection:
        page = listing.list_chat_runs(uuid.UUID(chat_id), listing.RunFilter(), connection=connection)
    return orjson.loads(orjson.dumps({"data": {"workflowRuns": page.runs}})), page.version


def assert_served_as_stored(engine: sa.Engine, chat_id: str, gets: list[ListGet], attempts: int = 50) -> int:
    """Each GET's body equals the database's list at the version its ETag names (reading again until the two
    versions meet, as the run moves on); returns how many comparisons were made."""
    compared = 0
    for get in gets:
        for _ in range(attempts):
            body, etag = get()
            stored, version = database_list(engine, chat_id)
            if version == version_of(etag):
                assert body == stored
                compared += 1
                break
        else:
            raise AssertionError(f"the served and stored versions never met in {attempts} reads")
    return compared


# The user's list as its route reads it without query parameters.
NEWEST_FIRST = listing.UserRunFilter(
    statuses=None,
    workflow_id=None,
    chat_id=None,
    created_after=None,
    created_before=None,
    descending=True,
    limit=50,
    after=None,
)


def database_user_list(engine: sa.Engine, user_id: str) -> dict[str, Any]:
    """The user's list (`NEWEST_FIRST`) as the database holds it now, as its route would answer it."""
    with Session(engine) as session:
        runs, next_cursor = listing.list_user_runs(uuid.UUID(user_id), NEWEST_FIRST, session=session)
    body: dict[str, Any] = orjson.loads(orjson.dumps({"data": {"workflowRuns": runs, "nextCursor": next_cursor}}))
    return body
