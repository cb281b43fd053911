"""The one rule for user-owned, soft-deleted resources: missing or deleted is 404, someone else's is 403."""

import uuid
from datetime import datetime
from typing import Protocol, TypeVar

from runwire.errors import Forbidden, NotFound


class Owned(Protocol):
    user_id: uuid.UUID
    deleted_at: datetime | None


OwnedT = TypeVar("OwnedT", bound=Owned)


def require_owned(resource: OwnedT | None, *, user_id: uuid.UUID, noun: str) -> OwnedT:
    if resource is None or resource.deleted_at is not None:
        raise NotFound(f"{noun.capitalize()} not found.")
    if resource.user_id != user_id:
        raise Forbidden(f"You cannot access another user's {noun}.")
    return resource
