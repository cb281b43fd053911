"""Building blocks every domain's API schemas share."""

import uuid
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, Strict
from pydantic.alias_generators import to_camel


def format_timestamp(value: datetime) -> str:
    """`2024-02-04T12:00:00.000Z`: UTC with milliseconds, as the contract shows."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]
# Lax even in strict inputs: a UUID arrives as text.
UUIDStr = Annotated[uuid.UUID, Strict(False), PlainSerializer(str, return_type=str)]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class ApiInput(ApiModel):
    """A request body: unknown fields refused, and strict, so that no boolean or text passes for a number."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorInfo(ApiModel):
    """Why a run, a step or a reply failed."""

    code: str
    message: str


T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    data: T
