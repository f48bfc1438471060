"""The one duration format credwarden accepts everywhere: a whole number and one unit.

`15m`, `720h`, `90d`, `2w`. One unit only, so the CRD's CEL rules can compare two
durations on the API server (they convert both to seconds with `substring`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NoReturn

DURATION_PATTERN = r"^[0-9]{1,6}(s|m|h|d|w)$"
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# fullmatch: in Python `$` also matches before a trailing newline
_DURATION_RE = re.compile(DURATION_PATTERN.strip("^$"))


class DurationError(ValueError):
    """A duration string that is not `<number><unit>`."""


def parse_duration(text: str) -> timedelta:
    """Parse `90d` into a timedelta; raise DurationError with the expected form."""
    if not isinstance(text, str):  # checked first: the cache below needs a hashable key
        _invalid(text)
    return _parse_duration(text)


# The engine parses the same dozen policy durations for every credential; timedelta is
# immutable, so one parsed value can be shared. Invalid input raises and is not cached.
@lru_cache(maxsize=1024)
def _parse_duration(text: str) -> timedelta:
    if not _DURATION_RE.fullmatch(text):
        _invalid(text)
    return timedelta(seconds=int(text[:-1]) * UNIT_SECONDS[text[-1]])


def _invalid(text: object) -> NoReturn:
    raise DurationError(
        f"invalid duration {text!r}: expected a whole number and one unit "
        "(s, m, h, d or w), e.g. 15m, 720h, 90d"
    )


# The calendar's ends, for arithmetic that would overflow (a year-9999 timestamp, a
# 999999w limit): a deadline past the end of time is "never", before its start "always".
END_OF_TIME = datetime.max.replace(tzinfo=UTC)
START_OF_TIME = datetime.min.replace(tzinfo=UTC)


def add(moment: datetime, delta: timedelta) -> datetime:
    try:
        return moment + delta
    except OverflowError:
        return END_OF_TIME if delta > timedelta(0) else START_OF_TIME


def subtract(moment: datetime, delta: timedelta) -> datetime:
    try:
        return moment - delta
    except OverflowError:
        return START_OF_TIME if delta > timedelta(0) else END_OF_TIME


def format_duration(delta: timedelta) -> str:
    """Render a timedelta in the largest whole unit (for messages), e.g. `400d`."""
    seconds = int(delta.total_seconds())
    for unit in ("d", "h", "m"):
        size = UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cel_seconds(field: str) -> str:
    """A CEL expression giving the number of seconds in duration field `field`.

    Runs on the API server; `substring` is in the Kubernetes CEL strings library.
    """
    number = f"int({field}.substring(0, {field}.size() - 1))"
    unit = (
        f"({field}.endsWith('w') ? 604800 : {field}.endsWith('d') ? 86400 : "
        f"{field}.endsWith('h') ? 3600 : {field}.endsWith('m') ? 60 : 1)"
    )
    return f"({number} * {unit})"
