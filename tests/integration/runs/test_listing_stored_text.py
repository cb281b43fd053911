"""The run list shapes UUIDs and timestamps from their stored form (`listing._uuid`, `listing._ts`) exactly as
`str(uuid)` and `schemas.format_timestamp` would from the objects SQLAlchemy builds, on SQLite and PostgreSQL."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from runwire.runs import listing
from runwire.schemas import format_timestamp

MOMENTS = [
    datetime(2024, 2, 4, 12, 0, 0, 0, tzinfo=UTC),
    datetime(2024, 2, 4, 12, 0, 0, 999, tzinfo=UTC),
    datetime(2024, 2, 4, 12, 0, 0, 123456, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_timestamp_stored_by_sqlite_is_shown_as_format_timestamp_shows_it(moment: datetime) -> None:
    stored = moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite storage format
    assert listing._ts(stored) == format_timestamp(moment)


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_timestamp_from_the_postgresql_driver_is_shown_in_utc(moment: datetime) -> None:
    elsewhere = moment.astimezone(timezone(timedelta(hours=-5)))
    assert listing._ts(elsewhere) == format_timestamp(moment)
    assert listing._ts(moment.replace(tzinfo=None)) == format_timestamp(moment)


def test_a_timestamp_in_another_text_form_is_parsed_and_no_timestamp_stays_null() -> None:
    assert listing._ts("2024-02-04 12:00:00") == "2024-02-04T12:00:00.000Z"
    assert listing._ts(None) is None


def test_a_uuid_is_shown_canonical_from_its_stored_hex_or_the_driver_object() -> None:
    value = uuid.uuid4()
    assert listing._uuid(value.hex) == str(value)
    assert listing._uuid(value) == str(value)
