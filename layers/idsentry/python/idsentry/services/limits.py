"""Abuse limits: decisions from counters and send windows, with the seconds until a retry works."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from idsentry.clock import SHANGHAI

DAY_SECONDS = 24 * 3600
# Codes keep this many of the shared per-number SMS slots for themselves: alerts and notices
# may use the rest, so a subscriber can always still sign in.
SLOTS_RESERVED_FOR_CODES = 1


@dataclass(frozen=True)
class SmsSend:
    """One SMS counted against a number's rolling 24-hour cap."""

    kind: str  # "otp" or "notice"
    sent_at: int  # epoch seconds


@dataclass(frozen=True)
class LimitDecision:
    """Whether a send may go ahead, and if not, the message code and seconds until it may."""

    allowed: bool
    code: str | None = None
    retry_after: int = 0


ALLOWED = LimitDecision(allowed=True)


def parse_sends(raw: list[str]) -> list[SmsSend]:
    """Read the stored form of a send window, "kind:epoch" per send."""
    sends = []
    for entry in raw:
        kind, _, sent_at = entry.partition(":")
        sends.append(SmsSend(kind=kind, sent_at=int(sent_at)))
    return sends


def live_sends(sends: list[SmsSend], now: int) -> list[SmsSend]:
    """Return the sends inside the rolling 24-hour window ending at `now`, oldest first."""
    return sorted((s for s in sends if s.sent_at > now - DAY_SECONDS), key=lambda s: s.sent_at)


def decide_code_send(
    sends: list[SmsSend], now: int, resend_interval: int, daily_cap: int
) -> LimitDecision:
    """Decide whether one more one-time code may go to a number with these recent sends."""
    window = live_sends(sends, now)

    last_code = max((s.sent_at for s in window if s.kind == "otp"), default=None)
    if last_code is not None and now - last_code < resend_interval:
        return LimitDecision(False, "limit.resend_interval", resend_interval - (now - last_code))

    if len(window) >= daily_cap:
        # The oldest send leaving the window frees the next slot.
        oldest = window[len(window) - daily_cap]
        return LimitDecision(False, "limit.daily_sms_cap", oldest.sent_at + DAY_SECONDS - now)
    return ALLOWED


def decide_notice_send(sends: list[SmsSend], now: int, daily_cap: int) -> LimitDecision:
    """Decide whether an alert or notice SMS may go to a number, keeping slots for codes."""
    window = live_sends(sends, now)
    notice_cap = max(daily_cap - SLOTS_RESERVED_FOR_CODES, 0)
    if len(window) >= notice_cap:
        if notice_cap == 0 or not window:
            # Every slot is kept for codes: notices never go out by SMS with this cap.
            return LimitDecision(False, "limit.daily_sms_cap", DAY_SECONDS)
        oldest = window[len(window) - notice_cap]
        return LimitDecision(False, "limit.daily_sms_cap", oldest.sent_at + DAY_SECONDS - now)
    return ALLOWED


def hour_bucket(moment: datetime) -> tuple[str, int]:
    """Return the fixed one-hour window label of `moment` and the seconds until it ends."""
    start = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=1)
    return start.strftime("%Y%m%d%H"), max(math.ceil((end - moment).total_seconds()), 1)


def day_bucket(moment: datetime) -> tuple[str, int]:
    """Return the UTC day label of `moment` and the seconds until that day ends."""
    start = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    return start.strftime("%Y%m%d"), max(math.ceil((end - moment).total_seconds()), 1)


def china_day_bucket(moment: datetime) -> tuple[str, int]:
    """Return the date of `moment` in China (UTC+8, yyyymmdd) and the seconds until it ends."""
    local = moment.astimezone(SHANGHAI)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    return start.strftime("%Y%m%d"), max(math.ceil((end - moment).total_seconds()), 1)
