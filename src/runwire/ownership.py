"""The one rule for user-owned, soft-deleted resources: missing or deleted is 404, someone else's is 403."""

import uuid
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

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


def lock_owned(resource: OwnedT, *, noun: str, session: Session) -> OwnedT:
    """Lock the resource's row for this transaction and re-read it: a concurrent writer may have changed or
    deleted it since it was loaded. Writers that must not interleave on one resource call this first."""
    session.refresh(resource, with_for_update=True)
    if resource.deleted_at is not None:
        raise NotFound(f"{noun.capitalize()} not found.")
    return resource
