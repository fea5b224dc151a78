"""Time helpers; services take a clock argument so tests can move time without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]
SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc_now() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def epoch(moment: datetime) -> int:
    """Return whole seconds since the Unix epoch."""
    return int(moment.timestamp())
