"""Entitlement per Stripe subscription status, including the past-due grace period."""

from __future__ import annotations

import pytest

from idsentry.services.entitlements import (
    DEFAULT_GRACE_SECONDS,
    UnknownSubscriptionStatusError,
    decide,
)

pytestmark = pytest.mark.unit

NOW = 1_796_400_000


@pytest.mark.parametrize(
    ("status", "monitored", "keep_data"),
    [
        ("trialing", True, True),
        ("active", True, True),
        ("incomplete", False, True),
        ("unpaid", False, True),
        ("paused", False, True),
        ("canceled", False, False),
        ("incomplete_expired", False, False),
    ],
)
def test_status_table(status: str, monitored: bool, keep_data: bool) -> None:
    entitlement = decide(status, NOW)

    assert entitlement.monitored is monitored
    assert entitlement.keep_data is keep_data
    assert entitlement.grace_until is None


def test_past_due_inside_grace() -> None:
    entitlement = decide("past_due", NOW, past_due_since=NOW - DEFAULT_GRACE_SECONDS + 1)

    assert entitlement.monitored is True
    assert entitlement.reason == "past_due_grace"
    assert entitlement.grace_until == NOW + 1


def test_past_due_grace_over() -> None:
    entitlement = decide("past_due", NOW, past_due_since=NOW - DEFAULT_GRACE_SECONDS)

    assert entitlement.monitored is False
    assert entitlement.reason == "past_due_grace_over"
    assert entitlement.keep_data is True


def test_past_due_first_seen_starts_grace() -> None:
    entitlement = decide("past_due", NOW)

    assert entitlement.monitored is True
    assert entitlement.grace_until == NOW + DEFAULT_GRACE_SECONDS


def test_custom_grace_period() -> None:
    assert decide("past_due", NOW, past_due_since=NOW - 10, grace_seconds=10).monitored is False


@pytest.mark.parametrize("status", ["", "Active", "expired", "canceling"])
def test_unknown_status_rejected(status: str) -> None:
    with pytest.raises(UnknownSubscriptionStatusError):
        decide(status, NOW)
