"""Quiet hours: when a non-critical alert SMS must wait, and until when, in the subscriber's zone."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from idsentry.services.preferences import DEFAULT_TIMEZONE

logger = logging.getLogger(__name__)

# The window starts at QUIET_START local time and ends at QUIET_END the next morning. Both are
# wall-clock times, so the window keeps its local hours when a zone moves to or from DST.
QUIET_START = time(22, 0)
QUIET_END = time(8, 0)


def resolve_timezone(name: str) -> ZoneInfo:
    """Return the IANA zone `name`, or Asia/Shanghai when no such zone exists."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ZoneInfo raises ValueError for malformed keys and OSError for a directory such as
        # "America" or an over-long name. The name itself is not logged, because a
        # subscriber's setting may contain anything.
        logger.warning("unknown time zone, using the default", extra={"timezone": DEFAULT_TIMEZONE})
        return ZoneInfo(DEFAULT_TIMEZONE)


def in_quiet_window(local: time) -> bool:
    """Return whether the wall-clock time `local` falls in the quiet window."""
    if QUIET_START > QUIET_END:
        return local >= QUIET_START or local < QUIET_END
    return QUIET_START <= local < QUIET_END


def quiet_until(now: datetime, timezone: str) -> datetime | None:
    """Return when the quiet hours around `now` end, in UTC, or None outside quiet hours.

    `now` must be timezone-aware. The end is the next QUIET_END on the local clock of
    `timezone`: the same morning after midnight, the next morning before it.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    zone = resolve_timezone(timezone)
    local = now.astimezone(zone)
    if not in_quiet_window(local.time()):
        return None

    end = datetime.combine(local.date(), QUIET_END, tzinfo=zone)
    if end <= local:
        # Combining the wall-clock date and time, and not adding 24 hours, keeps the end at
        # QUIET_END local time across a DST change.
        end = datetime.combine(local.date() + timedelta(days=1), QUIET_END, tzinfo=zone)
    return end.astimezone(UTC)
