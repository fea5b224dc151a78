"""Unit tests for the SMS abuse-limit decisions and the fixed time buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from idsentry.services.limits import (
    DAY_SECONDS,
    SmsSend,
    china_day_bucket,
    day_bucket,
    decide_code_send,
    decide_notice_send,
    hour_bucket,
    live_sends,
)

pytestmark = pytest.mark.unit

NOW = 1_800_000_000
RESEND = 60
CAP = 4


def otp(age: int) -> SmsSend:
    return SmsSend(kind="otp", sent_at=NOW - age)


def notice(age: int) -> SmsSend:
    return SmsSend(kind="notice", sent_at=NOW - age)


def test_live_sends_window_edges() -> None:
    sends = [notice(DAY_SECONDS), otp(DAY_SECONDS - 1), notice(10), otp(DAY_SECONDS + 1)]

    live = live_sends(sends, NOW)

    assert live == [otp(DAY_SECONDS - 1), notice(10)]


def test_live_sends_oldest_first() -> None:
    sends = [otp(5), notice(500), otp(50)]

    assert [send.sent_at for send in live_sends(sends, NOW)] == [NOW - 500, NOW - 50, NOW - 5]


@pytest.mark.parametrize(
    ("sends", "retry_after"),
    [
        ([otp(59)], 1),
        ([otp(1)], 59),
        ([otp(0)], 60),
        ([otp(3600), otp(30)], 30),
        ([otp(30), notice(5)], 30),
    ],
)
def test_code_resend_interval_rejected(sends: list[SmsSend], retry_after: int) -> None:
    decision = decide_code_send(sends, NOW, RESEND, CAP)

    assert not decision.allowed
    assert decision.code == "limit.resend_interval"
    assert decision.retry_after == retry_after


@pytest.mark.parametrize(
    "sends",
    [
        [],
        [otp(60)],
        [otp(61)],
        [notice(1)],
        [notice(0), notice(1)],
        [otp(3600), otp(120), notice(5)],
    ],
)
def test_code_send_allowed(sends: list[SmsSend]) -> None:
    decision = decide_code_send(sends, NOW, RESEND, CAP)

    assert decision.allowed
    assert decision.code is None
    assert decision.retry_after == 0


@pytest.mark.parametrize(
    ("sends", "retry_after"),
    [
        # With four codes, the oldest leaves the window 24 h after it was sent.
        ([otp(7200), otp(5400), otp(3600), otp(1800)], DAY_SECONDS - 7200),
        # Codes and notices share the cap.
        ([notice(7200), otp(5400), notice(3600), otp(1800)], DAY_SECONDS - 7200),
        ([notice(400), notice(300), notice(200), notice(100)], DAY_SECONDS - 400),
        # The oldest send leaves the window in one second.
        ([otp(DAY_SECONDS - 1), otp(5000), otp(4000), otp(3000)], 1),
        # Two requests raced to five live sends, so a slot frees when the second oldest leaves.
        ([otp(9000), otp(8000), otp(7000), otp(6000), otp(5000)], DAY_SECONDS - 8000),
    ],
)
def test_code_daily_cap_rejected(sends: list[SmsSend], retry_after: int) -> None:
    decision = decide_code_send(sends, NOW, RESEND, CAP)

    assert not decision.allowed
    assert decision.code == "limit.daily_sms_cap"
    assert decision.retry_after == retry_after


def test_code_cap_send_leaves_at_24h() -> None:
    sends = [otp(DAY_SECONDS), otp(5000), otp(4000), otp(3000)]

    assert decide_code_send(sends, NOW, RESEND, CAP).allowed


def test_code_cap_follows_setting() -> None:
    sends = [otp(5000), otp(4000)]

    assert decide_code_send(sends, NOW, RESEND, daily_cap=3).allowed
    assert not decide_code_send(sends, NOW, RESEND, daily_cap=2).allowed


@pytest.mark.parametrize(
    "sends",
    [
        [],
        [notice(100)],
        [notice(200), otp(100)],
        [notice(DAY_SECONDS), notice(300), notice(200)],
    ],
)
def test_notice_allowed(sends: list[SmsSend]) -> None:
    decision = decide_notice_send(sends, NOW, CAP)

    assert decision.allowed
    assert decision.retry_after == 0


@pytest.mark.parametrize(
    ("sends", "retry_after"),
    [
        # Notices stop at cap - 1, so one slot stays free for a code.
        ([notice(300), notice(200), notice(100)], DAY_SECONDS - 300),
        ([otp(300), notice(200), notice(100)], DAY_SECONDS - 300),
        ([otp(DAY_SECONDS - 1), notice(200), notice(100)], 1),
        # With four live sends, two must leave before a notice fits again.
        ([otp(400), otp(300), notice(200), notice(100)], DAY_SECONDS - 300),
    ],
)
def test_notice_cap_rejected(sends: list[SmsSend], retry_after: int) -> None:
    decision = decide_notice_send(sends, NOW, CAP)

    assert not decision.allowed
    assert decision.code == "limit.daily_sms_cap"
    assert decision.retry_after == retry_after


def test_notice_cap_keeps_code_slot() -> None:
    sends = [notice(3000), notice(2000), notice(1000)]

    assert not decide_notice_send(sends, NOW, CAP).allowed
    assert decide_code_send(sends, NOW, RESEND, CAP).allowed
    assert not decide_code_send([*sends, otp(500)], NOW, RESEND, CAP).allowed


def test_notice_cap_one_empty_window() -> None:
    decision = decide_notice_send([], NOW, daily_cap=1)

    assert not decision.allowed
    assert decision.code == "limit.daily_sms_cap"


def test_notice_cap_one_with_send() -> None:
    decision = decide_notice_send([otp(100)], NOW, daily_cap=1)

    assert not decision.allowed
    assert decision.code == "limit.daily_sms_cap"


SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("moment", "label", "seconds_left"),
    [
        (datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC), "2026030110", 3600),
        (datetime(2026, 3, 1, 10, 59, 59, tzinfo=UTC), "2026030110", 1),
        (datetime(2026, 3, 1, 10, 59, 59, 900_000, tzinfo=UTC), "2026030110", 1),
        # 08:30:15 in Shanghai (UTC+8) is 00:30:15 UTC.
        (datetime(2026, 3, 1, 8, 30, 15, tzinfo=SHANGHAI), "2026030100", 1785),
        # 07:59 in Shanghai on 1 March is still 28 February in UTC.
        (datetime(2026, 3, 1, 7, 59, 0, tzinfo=SHANGHAI), "2026022823", 60),
        # 20:15 in New York (UTC-5 in January) is 01:15 UTC the next day.
        (datetime(2026, 1, 5, 20, 15, 0, tzinfo=NEW_YORK), "2026010601", 2700),
    ],
)
def test_hour_bucket(moment: datetime, label: str, seconds_left: int) -> None:
    assert hour_bucket(moment) == (label, seconds_left)


@pytest.mark.parametrize(
    ("moment", "label", "seconds_left"),
    [
        (datetime(2026, 3, 1, 0, 0, 0, tzinfo=UTC), "20260301", DAY_SECONDS),
        (datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC), "20260301", 1),
        (datetime(2026, 2, 28, 23, 59, 59, 999_999, tzinfo=UTC), "20260228", 1),
        # 07:00 in Shanghai is 23:00 UTC on the day before.
        (datetime(2026, 3, 1, 7, 0, 0, tzinfo=SHANGHAI), "20260228", 3600),
        (datetime(2026, 3, 1, 8, 0, 0, tzinfo=SHANGHAI), "20260301", DAY_SECONDS),
        (datetime(2026, 1, 5, 20, 15, 0, tzinfo=NEW_YORK), "20260106", DAY_SECONDS - 4500),
    ],
)
def test_day_bucket(moment: datetime, label: str, seconds_left: int) -> None:
    assert day_bucket(moment) == (label, seconds_left)


@pytest.mark.parametrize(
    ("moment", "label", "seconds_left"),
    [
        (datetime(2026, 3, 1, 0, 0, 0, tzinfo=SHANGHAI), "20260301", DAY_SECONDS),
        (datetime(2026, 3, 1, 23, 59, 59, tzinfo=SHANGHAI), "20260301", 1),
        # 16:00 UTC is midnight in China, the start of the next day there.
        (datetime(2026, 2, 28, 15, 59, 59, tzinfo=UTC), "20260228", 1),
        (datetime(2026, 2, 28, 16, 0, 0, tzinfo=UTC), "20260301", DAY_SECONDS),
        (datetime(2026, 12, 31, 20, 0, 0, tzinfo=UTC), "20270101", 20 * 3600),
        (datetime(2026, 1, 5, 20, 15, 0, tzinfo=NEW_YORK), "20260106", DAY_SECONDS - 33300),
    ],
)
def test_china_day_bucket(moment: datetime, label: str, seconds_left: int) -> None:
    assert china_day_bucket(moment) == (label, seconds_left)


def test_hour_bucket_rounds_up() -> None:
    moment = datetime(2026, 3, 1, 10, 30, 0, 500_000, tzinfo=UTC)

    label, seconds_left = hour_bucket(moment)

    retry_at = moment + timedelta(seconds=seconds_left)
    assert hour_bucket(retry_at)[0] != label
