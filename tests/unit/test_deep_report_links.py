"""Unit tests of the account's deep report link: who gets one, and what it opens."""

from __future__ import annotations

import json
from typing import Any

import pytest

from idsentry.crypto import Pepper
from idsentry.errors import ConflictError, NotFoundError, ServiceUnavailableError
from idsentry.services import deep_report_links
from idsentry.services.billing_links import read_billing_link

pytestmark = pytest.mark.unit

WANG = "sbr_01M91B4ABG36G2R8D4PV2HM6CG"
BASE_URL = "https://idsentry.example.com"
NOW = 1796416892
PEPPER = Pepper.from_secret({"current": "1", "1": "unit-test-pepper-" + "x" * 40})
PLANS = {
    "default_currency": "cny",
    "plans": {
        "monthly": {"mode": "subscription", "prices": {"cny": "idsentry_monthly_cny"}},
        "deep_report": {"mode": "payment", "prices": {"cny": "idsentry_deep_report_cny"}},
    },
}
PAID_PROFILE = {"status": "active", "stripe_customer_id": "cus_Test123"}


class MemoryTable:
    def __init__(self, profile: dict[str, Any] | None) -> None:
        self.profile = profile

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        assert (pk, sk) == (f"SUB#{WANG}", "PROFILE")
        return self.profile


def link(profile: dict[str, Any] | None, plans: dict[str, Any] | None = PLANS) -> dict[str, Any]:
    return deep_report_links.deep_report_link(
        MemoryTable(profile),  # type: ignore[arg-type]
        lambda: PEPPER,
        BASE_URL,
        None if plans is None else json.dumps(plans),
        WANG,
        NOW,
    )


def test_link_buys_deep_report() -> None:
    result = link(PAID_PROFILE)

    token = result["url"].removeprefix(f"{BASE_URL}/v1/billing/")
    assert read_billing_link(PEPPER, token, NOW) == (WANG, "deep_report")
    assert result["expires_at"] == "2026-12-11T20:41:32+00:00"


@pytest.mark.parametrize(
    "profile",
    [
        {"status": "pending_payment", "stripe_customer_id": "cus_Test123"},
        {"status": "active"},
        {**PAID_PROFILE, "stripe_customer_deleted": True},
    ],
)
def test_link_needs_paid_subscription(profile: dict[str, Any]) -> None:
    with pytest.raises(ConflictError) as raised:
        link(profile)

    assert raised.value.code == "deep_report.needs_subscription"


@pytest.mark.parametrize(
    "plans",
    [
        None,
        {"default_currency": "cny", "plans": {"monthly": PLANS["plans"]["monthly"]}},
    ],
)
def test_link_when_not_offered(plans: dict[str, Any] | None) -> None:
    with pytest.raises(ServiceUnavailableError) as raised:
        link(PAID_PROFILE, plans)

    assert raised.value.code == "deep_report.not_offered"


@pytest.mark.parametrize("profile", [None, {**PAID_PROFILE, "deletion_requested_at": NOW}])
def test_link_without_account(profile: dict[str, Any] | None) -> None:
    with pytest.raises(NotFoundError) as raised:
        link(profile)

    assert raised.value.code == "account.not_found"
