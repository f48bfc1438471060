"""The one duration format: a whole number and one unit (s, m, h, d, w)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from credwarden.durations import (
    DURATION_PATTERN,
    DurationError,
    cel_seconds,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0s", timedelta(0)),
        ("1s", timedelta(seconds=1)),
        ("15m", timedelta(minutes=15)),
        ("720h", timedelta(days=30)),
        ("90d", timedelta(days=90)),
        ("2w", timedelta(days=14)),
        ("999999d", timedelta(days=999999)),
        ("0000090d", None),  # seven digits: too long
    ],
)
def test_parse_duration_accepts_number_and_unit(text: str, expected: timedelta | None) -> None:
    if expected is None:
        with pytest.raises(DurationError):
            parse_duration(text)
    else:
        assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "90",
        "d",
        "1.5h",
        "1h30m",
        "-1d",
        "+1d",
        "90D",
        "90 d",
        " 90d",
        "90d ",
        "1y",
        "1ms",
        "P90D",
        "1234567s",
        "٩٠d",  # Arabic-Indic digits are digits to str.isdigit, not to the format
        "９０d",  # full-width digits
    ],
)
def test_parse_duration_rejects_other_forms_with_a_helpful_message(text: str) -> None:
    with pytest.raises(DurationError) as raised:
        parse_duration(text)
    message = str(raised.value)
    assert repr(text) in message
    assert "e.g." in message and "90d" in message


@pytest.mark.parametrize("value", [None, 90, 90.0, ["90d"], b"90d"])
def test_parse_duration_rejects_non_strings(value: object) -> None:
    with pytest.raises(DurationError):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["90d\n", "15m\n"])
def test_parse_duration_rejects_a_trailing_newline_as_a_duration_error(text: str) -> None:
    # `$` in the pattern also matches before a final newline; the value must still be
    # refused with DurationError (the documented error), not a bare int() ValueError.
    with pytest.raises(DurationError):
        parse_duration(text)


def test_duration_error_is_a_value_error() -> None:
    # pydantic turns ValueErrors raised in validators into field errors
    assert issubclass(DurationError, ValueError)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=400), "400d"),
        (timedelta(days=14), "14d"),  # days, not weeks: messages speak in days
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=61), "61s"),
        (timedelta(0), "0s"),
    ],
)
def test_format_duration_uses_the_largest_whole_unit(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize("text", ["1s", "59s", "15m", "720h", "25h", "90d", "2w", "999999d"])
def test_format_then_parse_round_trips(text: str) -> None:
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


def test_pattern_is_anchored_for_the_api_server() -> None:
    assert DURATION_PATTERN.startswith("^") and DURATION_PATTERN.endswith("$")


@pytest.mark.parametrize("text", ["0s", "45s", "15m", "720h", "90d", "2w", "999999w"])
def test_cel_seconds_agrees_with_parse_duration(text: str) -> None:
    celpy = pytest.importorskip("celpy")
    environment = celpy.Environment()
    expression = cel_seconds("self.d")
    # the Kubernetes strings library provides substring(); emulate it for cel-python
    program = environment.program(
        environment.compile(expression),
        functions={"substring": lambda s, start, end: celpy.celtypes.StringType(s[start:end])},
    )
    activation = {"self": celpy.json_to_cel({"d": text})}
    assert int(program.evaluate(activation)) == int(parse_duration(text).total_seconds())
