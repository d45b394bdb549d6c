"""flask_mailtrack._isotime: the one way times are written and read."""

from __future__ import annotations

import datetime
import math

import pytest
from flask_mailtrack._isotime import format_time
from flask_mailtrack._isotime import format_time_ms
from flask_mailtrack._isotime import parse_time
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("timestamp", "text"),
    [
        pytest.param(0, "1970-01-01T00:00:00Z", id="epoch"),
        pytest.param(1_700_000_000, "2023-11-14T22:13:20Z", id="seconds"),
        pytest.param(None, None, id="none"),
    ],
)
def test_format_time(timestamp: int | None, text: str | None) -> None:
    assert format_time(timestamp) == text
    if text is not None:
        assert parse_time(text) == timestamp


@given(
    st.one_of(
        st.integers(min_value=-62_135_596_800, max_value=253_402_300_799),
        st.floats(min_value=-1e10, max_value=1e11),
    )
)
def test_format_time_remembers_seconds_exactly(timestamp: float) -> None:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    expected = moment.isoformat().replace("+00:00", "Z")
    # The second call is answered from the seconds already formatted.
    assert format_time(timestamp) == format_time(timestamp) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1700000000", 1_700_000_000, id="number"),
        pytest.param(" 1700000000.5 ", 1_700_000_000.5, id="fraction-spaces"),
        pytest.param("2023-11-14T22:13:20z", 1_700_000_000, id="lower-z"),
        pytest.param("2023-11-14T23:13:20+01:00", 1_700_000_000, id="offset"),
        pytest.param("2023-11-14T22:13:20", 1_700_000_000, id="naive-is-utc"),
        pytest.param("2023-11-14", 1_699_920_000, id="date"),
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert math.isclose(parse_time(text), expected)


@pytest.mark.parametrize("text", ["", "yesterday", "nan", "inf", "2023-13-01"])
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


@pytest.mark.parametrize(
    ("timestamp", "text"),
    [
        pytest.param(1_700_000_000, "2023-11-14T22:13:20.000Z", id="second"),
        pytest.param(1_700_000_000.25, "2023-11-14T22:13:20.250Z", id="millis"),
        pytest.param(1_700_000_001.999, "2023-11-14T22:13:21.999Z", id="next"),
    ],
)
def test_format_time_ms(timestamp: float, text: str) -> None:
    assert format_time_ms(timestamp) == text
    assert math.isclose(parse_time(text), timestamp, abs_tol=0.001)
