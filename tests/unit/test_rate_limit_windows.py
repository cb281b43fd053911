"""The sliding window's arithmetic: when a hit is refused, and how long until one more would be allowed."""

import pytest

from runwire.ratelimits.service import Rule, retry_after

RULE = Rule("writes", limit=3, window_seconds=60)


@pytest.mark.parametrize(
    ("previous", "current", "elapsed", "expected"),
    [
        (0, 3, 10.0, 0),  # within the limit
        (6, 1, 50.0, 0),  # 6 * 10/60 + 1 = 2
        (0, 4, 10.0, 80),  # the rest of this window (50 s), then a 4 * (1 - 2/4) = 30 s slide into the next
        # Just past an edge the previous window's hits count almost whole (3 * 59.5/60 + 1 > 3); a next hit is
        # allowed once 3 * (1 - t/60) + 2 <= 3, at t = 40.
        (3, 1, 0.5, 40),
        # With 2 of 3 used here, a third is allowed only once the previous window has slid out whole.
        (4, 2, 15.0, 45),
    ],
)
def test_retry_after(previous: int, current: int, elapsed: float, expected: int) -> None:
    assert retry_after(RULE, previous=previous, current=current, elapsed=elapsed) == expected
