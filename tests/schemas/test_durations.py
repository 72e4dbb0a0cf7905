"""Durations in log lines."""

from __future__ import annotations

import pytest

from schemas.durations import format_duration


@pytest.mark.parametrize("seconds, shown", [
    (0, "0 s"), (0.4, "0 s"), (59.4, "59 s"), (59.6, "1 min 00 s"), (125, "2 min 05 s"), (3599, "59 min 59 s"),
    (3600, "1 h 00 min"), (7620, "2 h 07 min"), (-3, "0 s"),
])
def test_durations_read_in_the_largest_sensible_units(seconds, shown):
    assert format_duration(seconds) == shown
