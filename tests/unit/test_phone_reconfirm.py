"""Unit tests of phone reconfirmation: due dates, selection, the SMS state and the e-mail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from idsentry.clock import SHANGHAI, epoch
from idsentry.services.notify import account_page_link
from idsentry.services.phone_reconfirm import (
    DueSubscriber,
    due_before,
    due_subscribers,
    months_between,
)
from idsentry.services.preferences import Preferences, preferences_from_item
from idsentry.templates import render_email

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
CUTOFF = due_before(NOW, 6)
ACCOUNT_PAGE = "https://d111111abcdef8.cloudfront.net/account/"


def shanghai(*parts: int) -> int:
    return epoch(datetime(*parts, tzinfo=SHANGHAI))  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "months", "expected"),
    [
        # 2026-12-04 20:00 in China, six months back.
        (NOW, 6, (2026, 6, 4, 20, 0)),
        # A day the earlier month lacks becomes its last day.
        (datetime(2026, 8, 31, 4, 0, tzinfo=UTC), 6, (2026, 2, 28, 12, 0)),
        (datetime(2028, 8, 31, 4, 0, tzinfo=UTC), 6, (2028, 2, 29, 12, 0)),
        # Across a year boundary, in China time (UTC 2027-01-31 20:00 is 1 February there).
        (datetime(2027, 1, 31, 20, 0, tzinfo=UTC), 1, (2027, 1, 1, 4, 0)),
        (NOW, 24, (2024, 12, 4, 20, 0)),
    ],
)
def test_due_before_calendar_months(now: datetime, months: int, expected: tuple[int, ...]) -> None:
    assert due_before(now, months) == shanghai(*expected)


def test_due_before_rejects_zero() -> None:
    with pytest.raises(ValueError, match="invalid months 0"):
        due_before(NOW, 0)


@pytest.mark.parametrize(
    ("confirmed", "months"),
    [
        ((2026, 6, 4, 20, 0), 6),
        ((2026, 6, 4, 20, 1), 5),
        ((2025, 12, 4, 20, 0), 12),
        ((2026, 12, 1, 0, 0), 1),
    ],
)
def test_months_between(confirmed: tuple[int, ...], months: int) -> None:
    assert months_between(shanghai(*confirmed), NOW) == months


def items(
    subscriber_id: str, profile: dict[str, Any] | None, prefs: dict[str, Any] | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    if profile is not None:
        found[(f"SUB#{subscriber_id}", "PROFILE")] = profile
    if prefs is not None:
        found[(f"SUB#{subscriber_id}", "PREFS")] = prefs
    return found


def test_due_when_confirmed_before_cutoff() -> None:
    found = items("sbr_a", {"mobile_confirmed_at": CUTOFF - 1, "created_at": 1})

    assert due_subscribers(found, ["sbr_a"], CUTOFF) == [DueSubscriber("sbr_a", CUTOFF - 1, True)]


def test_not_due_at_cutoff() -> None:
    found = items("sbr_a", {"mobile_confirmed_at": CUTOFF, "created_at": 1})

    assert due_subscribers(found, ["sbr_a"], CUTOFF) == []


def test_created_at_when_never_recorded() -> None:
    found = items("sbr_a", {"created_at": CUTOFF - 10})

    assert due_subscribers(found, ["sbr_a"], CUTOFF) == [DueSubscriber("sbr_a", CUTOFF - 10, False)]


@pytest.mark.parametrize("state", ["opted_out", "invalid", "unconfirmed"])
def test_not_due_unless_sms_ok(state: str) -> None:
    found = items("sbr_a", {"mobile_confirmed_at": 1}, {"sms_state": state})

    assert due_subscribers(found, ["sbr_a"], CUTOFF) == []


def test_missing_profile_skipped() -> None:
    assert due_subscribers(items("sbr_a", None, {"sms_state": "ok"}), ["sbr_a"], CUTOFF) == []


def test_unconfirmed_stops_sms() -> None:
    preferences = preferences_from_item({"sms_state": "unconfirmed"})

    assert preferences.may_sms(alert=False) is False
    assert preferences.may_sms(alert=True) is False
    assert preferences.may_email(None) is True
    assert Preferences().may_sms(alert=False) is True


@pytest.mark.parametrize(
    ("locale", "words"),
    [("zh-CN", ("6 个月", "登录", "回复本邮件")), ("en", ("6 months", "sign in", "reply"))],
)
def test_reconfirm_email_both_locales(locale: Any, words: tuple[str, ...]) -> None:
    link = account_page_link(ACCOUNT_PAGE, locale)
    message = render_email(
        "phone_reconfirm", locale, masked_mobile="138****8001", months="6", link=link
    )

    assert "138****8001" in message.text
    assert "138****8001" in message.html
    for word in words:
        assert word in message.text
    assert f'lang="{locale}"' in message.html
    assert link in message.text
    assert f'<a href="{link}">' in message.html


@pytest.mark.parametrize(
    ("page", "locale", "expected"),
    [
        (ACCOUNT_PAGE, "zh-CN", ACCOUNT_PAGE),
        (ACCOUNT_PAGE, "en", "https://d111111abcdef8.cloudfront.net/en/account/"),
        (
            "http://127.0.0.1:3000/signup/account/",
            "en",
            "http://127.0.0.1:3000/signup/en/account/",
        ),
    ],
)
def test_account_link_per_locale(page: str, locale: Any, expected: str) -> None:
    assert account_page_link(page, locale) == expected
