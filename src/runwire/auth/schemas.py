from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from runwire.schemas import ApiInput, ApiModel, Timestamp, UUIDStr

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _lower(value: str) -> str:
    return value.lower()


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=EMAIL_PATTERN),
    AfterValidator(_lower),
]


class SignUp(ApiInput):
    email: Email
    password: str = Field(min_length=8, max_length=1024)
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class SignIn(ApiInput):
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320), AfterValidator(_lower)]
    password: str = Field(max_length=1024)


class UserRead(ApiModel):
    id: UUIDStr
    email: str
    name: str
    created_at: Timestamp


class UserEnvelope(ApiModel):
    user: UserRead


class SessionInfo(ApiModel):
    expires_at: Timestamp


class SessionEnvelope(ApiModel):
    user: UserRead
    session: SessionInfo


class Authenticated(ApiModel):
    """The user and session a request's cookie names."""

    user_id: UUIDStr
    session_id: UUIDStr
    expires_at: datetime
