"""Unit tests for quiet hours: the window edges, midnight, a DST zone and unknown zone names."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from idsentry.services.preferences import DEFAULT_TIMEZONE
from idsentry.services.quiet_hours import (
    QUIET_END,
    QUIET_START,
    in_quiet_window,
    quiet_until,
    resolve_timezone,
)

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def shanghai(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def test_window_bounds() -> None:
    assert QUIET_START.hour == 22
    assert QUIET_END.hour == 8


def test_start_of_window_is_quiet() -> None:
    until = quiet_until(shanghai(2026, 12, 4, 22), "Asia/Shanghai")

    assert until == shanghai(2026, 12, 5, 8)


def test_just_before_start_is_not_quiet() -> None:
    moment = shanghai(2026, 12, 4, 21, 59) + timedelta(seconds=59)

    assert quiet_until(moment, "Asia/Shanghai") is None


def test_just_before_end_is_quiet() -> None:
    until = quiet_until(shanghai(2026, 12, 5, 7, 59), "Asia/Shanghai")

    assert until == shanghai(2026, 12, 5, 8)


def test_end_of_window_is_not_quiet() -> None:
    assert quiet_until(shanghai(2026, 12, 5, 8), "Asia/Shanghai") is None


def test_daytime_is_not_quiet() -> None:
    assert quiet_until(shanghai(2026, 12, 5, 13, 30), "Asia/Shanghai") is None


def test_before_midnight_waits_for_next_day() -> None:
    until = quiet_until(shanghai(2026, 12, 4, 23, 30), "Asia/Shanghai")

    assert until == shanghai(2026, 12, 5, 8)


def test_after_midnight_waits_for_same_day() -> None:
    until = quiet_until(shanghai(2026, 12, 5, 0, 30), "Asia/Shanghai")

    assert until == shanghai(2026, 12, 5, 8)


def test_result_is_utc() -> None:
    until = quiet_until(shanghai(2026, 12, 4, 23, 30), "Asia/Shanghai")

    assert until is not None
    assert until.tzinfo is UTC
    assert until == datetime(2026, 12, 5, 0, 0, tzinfo=UTC)


def test_utc_input_uses_subscriber_zone() -> None:
    # 15:00 UTC is 23:00 in Shanghai and 10:00 in New York.
    moment = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)

    assert quiet_until(moment, "Asia/Shanghai") == shanghai(2026, 12, 5, 8)
    assert quiet_until(moment, "America/New_York") is None


def test_year_end_rolls_over() -> None:
    until = quiet_until(shanghai(2026, 12, 31, 22, 15), "Asia/Shanghai")

    assert until == shanghai(2027, 1, 1, 8)


def test_dst_start_keeps_local_end() -> None:
    # New York moves from EST (UTC-5) to EDT (UTC-4) at 02:00 on 2026-03-08, so the night is
    # one hour shorter and 08:00 local is 12:00 UTC.
    moment = datetime(2026, 3, 7, 23, 30, tzinfo=NEW_YORK)

    until = quiet_until(moment, "America/New_York")

    assert until == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert until - moment == timedelta(hours=7, minutes=30)


def test_dst_end_keeps_local_end() -> None:
    # New York moves back to EST at 02:00 on 2026-11-01, so 08:00 local is 13:00 UTC.
    moment = datetime(2026, 10, 31, 23, 0, tzinfo=NEW_YORK)

    until = quiet_until(moment, "America/New_York")

    assert until == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert until - moment == timedelta(hours=10)


def test_dst_repeated_hour_is_quiet() -> None:
    # 06:30 UTC is the second 01:30 in New York that night, on EST.
    moment = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)

    assert quiet_until(moment, "America/New_York") == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus",
        "asia/shanghai",
        "",
        "America",
        "../etc/localtime",
        "/etc/localtime",
        "x" * 300,
    ],
)
def test_unknown_zone_uses_default(name: str, caplog: pytest.LogCaptureFixture) -> None:
    moment = shanghai(2026, 12, 4, 23, 30)

    with caplog.at_level(logging.WARNING, logger="idsentry.services.quiet_hours"):
        until = quiet_until(moment, name)

    assert until == shanghai(2026, 12, 5, 8)
    assert [record.getMessage() for record in caplog.records] == [
        "unknown time zone, using the default"
    ]


def test_unknown_zone_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    name = "Subscriber/13800138000"

    with caplog.at_level(logging.DEBUG, logger="idsentry.services.quiet_hours"):
        resolve_timezone(name)

    (record,) = caplog.records
    assert "13800138000" not in record.getMessage()
    assert "13800138000" not in str(record.__dict__)
    assert record.__dict__["timezone"] == DEFAULT_TIMEZONE


def test_known_zone_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="idsentry.services.quiet_hours"):
        zone = resolve_timezone("America/New_York")

    assert zone == NEW_YORK
    assert caplog.records == []


def test_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        quiet_until(datetime(2026, 12, 4, 23, 30), "Asia/Shanghai")


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"),
    [(21, 59, False), (22, 0, True), (23, 59, True), (0, 0, True), (7, 59, True), (8, 0, False)],
)
def test_window_membership(hour: int, minute: int, quiet: bool) -> None:
    assert in_quiet_window(time(hour, minute)) is quiet
