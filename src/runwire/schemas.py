"""Building blocks every domain's API schemas share."""

import uuid
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel


def format_timestamp(value: datetime) -> str:
    """`2024-02-04T12:00:00.000Z`: UTC with milliseconds, as the contract shows."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]
UUIDStr = Annotated[uuid.UUID, PlainSerializer(str, return_type=str)]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class ApiInput(ApiModel):
    model_config = ConfigDict(extra="forbid")


T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    data: T
