"""Opaque keyset cursors: the last row's sort key, as base64url-encoded JSON."""

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query

from runwire.errors import Invalid
from runwire.jsonlimits import json_problems

LimitParam = Annotated[int, Query(ge=1, le=100)]


def encode_cursor(key: Sequence[str | int]) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, parsers: Sequence[Callable[[Any], Any]]) -> list[Any]:
    """Decode a cursor whose key has one element per parser; anything else is a 400."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(key, list) or len(key) != len(parsers) or json_problems(key):
            raise ValueError("wrong shape")
        return [parse(value) for parse, value in zip(parsers, key, strict=True)]
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error, UnicodeError) as exc:
        raise Invalid("The cursor is not one this server issued.", details=[("cursor", "is invalid")]) from exc


def _aware_datetime(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("a cursor's time carries its zone")
    return moment.astimezone(UTC)


def _uuid(value: str) -> uuid.UUID:
    if not isinstance(value, str):
        raise TypeError("a cursor's id is text")
    return uuid.UUID(value)


def _sequence_number(value: int) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("a cursor's sequence number is a whole number")
    return value


def encode_sequence(seq: int) -> str:
    """The cursor of a list ordered by a sequence number."""
    return encode_cursor([seq])


def decode_sequence(cursor: str) -> int:
    seq: int
    (seq,) = decode_cursor(cursor, (_sequence_number,))
    return seq


def encode_newest_first(created_at: datetime, row_id: uuid.UUID) -> str:
    """The cursor of a list ordered by (created_at, id) descending."""
    return encode_cursor([created_at.isoformat(), str(row_id)])


def decode_newest_first(cursor: str) -> tuple[datetime, uuid.UUID]:
    created_at, row_id = decode_cursor(cursor, (_aware_datetime, _uuid))
    return created_at, row_id
