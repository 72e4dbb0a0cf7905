"""Durations as a person reads them in a log line: "45 s", "4 min 05 s", "2 h 07 min"."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """Whole seconds under a minute, minutes and seconds under an hour, else hours and minutes."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
