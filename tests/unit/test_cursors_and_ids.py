import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runwire.errors import Invalid
from runwire.ids import parse_uuid
from runwire.pagination import decode_newest_first, decode_sequence, encode_newest_first, encode_sequence


@given(st.uuids())
def test_any_uuid_in_any_case_parses(value: uuid.UUID) -> None:
    assert parse_uuid(str(value).upper(), "chatId") == value
    assert parse_uuid(str(value), "chatId") == value


@given(st.text(max_size=60))
def test_non_uuid_text_is_invalid(text: str) -> None:
    try:
        expected = uuid.UUID(text) if len(text) == 36 else None
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(Invalid):
            parse_uuid(text, "chatId")
    else:
        assert parse_uuid(text, "chatId") == expected


@given(st.datetimes(timezones=st.just(UTC)), st.uuids())
def test_newest_first_cursor_round_trips(moment: datetime, row_id: uuid.UUID) -> None:
    assert decode_newest_first(encode_newest_first(moment, row_id)) == (moment, row_id)


@given(st.integers(min_value=0, max_value=2**40))
def test_sequence_cursor_round_trips(seq: int) -> None:
    assert decode_sequence(encode_sequence(seq)) == seq


@given(st.text(max_size=80))
def test_garbage_sequence_cursor_is_invalid_never_a_crash(text: str) -> None:
    try:
        seq = decode_sequence(text)
    except Invalid:
        return
    assert type(seq) is int and 0 <= seq < 2**53


@given(st.text(max_size=80))
def test_garbage_cursor_is_invalid_never_a_crash(text: str) -> None:
    try:
        moment, row_id = decode_newest_first(text)
    except Invalid:
        return
    assert moment.tzinfo is not None and isinstance(row_id, uuid.UUID)
