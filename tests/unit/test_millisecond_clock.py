"""The clock of the chat reads' session read: utcnow(), as one object throughout each millisecond."""

import time
from datetime import UTC

from runwire.db import MillisecondClock, utcnow


def test_the_clock_tells_utcnow_and_keeps_its_object_for_the_millisecond() -> None:
    clock = MillisecondClock()
    before, now, after = utcnow(), clock.now(), utcnow()
    assert before <= now <= after and now.tzinfo is UTC and now.microsecond % 1000 == 0
    again = clock.now()
    assert again is now or again > now
    time.sleep(0.002)
    assert clock.now() > now
