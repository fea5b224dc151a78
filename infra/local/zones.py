"""Time zones picked by the local hour they show now, so runs play the same at any hour.

Quiet hours defer alert SMS between 22:00 and 08:00 on the subscriber's clock. A test or the
demo that expects an SMS at once gives its subscriber a zone where it is mid-afternoon now,
and one that expects a deferral a zone where it is the middle of the night.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Hours far from both ends of the quiet window, so a long run does not cross one.
DAYTIME_HOUR = 14
NIGHT_HOUR = 2


def zone_at_hour(hour: int, now: datetime | None = None) -> str:
    """Return an IANA zone whose local hour is `hour` at `now` (default: the current time).

    The result is a fixed-offset `Etc/GMT±N` zone, whose sign is the reverse of the UTC offset
    by POSIX convention (UTC+8 is Etc/GMT-8), or Asia/Shanghai when it already shows `hour`.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    offset = (hour - moment.hour) % 24
    if offset > 14:
        offset -= 24
    if offset == 8:
        return "Asia/Shanghai"
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{-offset:+d}"


def daytime_zone(now: datetime | None = None) -> str:
    """Return a zone where it is mid-afternoon now: alert SMS go out at once."""
    return zone_at_hour(DAYTIME_HOUR, now)


def night_zone(now: datetime | None = None) -> str:
    """Return a zone where it is the middle of the night now: alert SMS wait for 08:00."""
    return zone_at_hour(NIGHT_HOUR, now)
