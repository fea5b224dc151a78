"""Billing after the first payment, over the local stack: renewals, notices, referrals, links."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import stripe

from idsentry.crypto import Pepper
from idsentry.services.billing_links import billing_url
from infra.local.emulators.stripe import TEST_API_KEY
from infra.local.emulators.stripe_shim import StripeShim
from infra.local.service import LocalService
from tests.e2e.conftest import (
    IDENTITIES,
    RecordCollector,
    sign_up_and_verify,
    signup_body,
    wait_for_sms,
    watch_handler_logs,
)

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 30.0
CHEN = {
    "name": "陈静",
    "id_number": "320103197506187775",
    "mobile": "+8613600136006",
    "email": "chen.jing@example.com",
}
LI = {
    "name": "李娜",
    "id_number": "440304199208154565",
    "mobile": "+8613700137003",
    "email": "li.na@example.com",
}


@pytest.fixture(scope="module")
def billing_service(log_records: RecordCollector) -> Iterator[LocalService]:
    with LocalService(port=0, identities_path=IDENTITIES) as started:
        watch_handler_logs(started, log_records)
        yield started


def _shim(service: LocalService) -> StripeShim:
    assert service.stripe_shim is not None
    return service.stripe_shim


def _stripe(service: LocalService) -> Any:
    return stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": _shim(service).base_url}, max_network_retries=0
    )


def _item(service: LocalService, pk: str, sk: str) -> dict[str, Any]:
    assert service.stack is not None
    found = service.stack.runtime.client("dynamodb").get_item(
        TableName="idsentry-local", Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    )
    return {name: next(iter(value.values())) for name, value in found.get("Item", {}).items()}


def _ledger(service: LocalService, subscriber_id: str) -> list[tuple[str, int]]:
    assert service.stack is not None
    items = service.stack.runtime.client("dynamodb").query(
        TableName="idsentry-local",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :ledger)",
        ExpressionAttributeValues={
            ":pk": {"S": f"SUB#{subscriber_id}"},
            ":ledger": {"S": "LEDGER#"},
        },
        ConsistentRead=True,
    )["Items"]
    return [(item["kind"]["S"], int(item["amount"]["N"])) for item in items]


def _until(check: Callable[[], Any], event: str) -> Any:
    give_up = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < give_up:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {WAIT_SECONDS} s waiting for {event}")


def _status(service: LocalService, subscriber_id: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        profile = _item(service, f"SUB#{subscriber_id}", "PROFILE")
        return profile if profile.get("status") == status else None

    result: dict[str, Any] = _until(reached, f"status {status}")
    return result


def _subscribe(
    service: LocalService, person: dict[str, str], card: str = "pm_card_visa", **extra: Any
) -> dict[str, Any]:
    verified = sign_up_and_verify(service, signup_body(**person, **extra))
    paid = requests.post(
        verified["next_step"]["checkout_url"] + "/pay",
        data={"payment_method": card},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert paid.status_code == 200, paid.text
    _shim(service).flush()
    _status(service, verified["subscriber_id"], "active")
    return verified


def _emails_to(service: LocalService, address: str, subject: str) -> list[dict[str, Any]]:
    return [
        email
        for email in service.sent_emails()
        if address in email["to"] and email["subject"] == subject
    ]


def test_failed_renewal_recovers(billing_service: LocalService) -> None:
    shim = _shim(billing_service)
    chen = _subscribe(billing_service, CHEN)
    profile = _item(billing_service, f"SUB#{chen['subscriber_id']}", "PROFILE")
    shim.set_default_payment_method(profile["stripe_customer_id"], "pm_card_chargeCustomerFail")

    shim.set_delivery(duplicate=True, shuffle=True)
    try:
        invoice = shim.renew_subscription(profile["subscription_id"])
        shim.flush()
    finally:
        shim.set_delivery()

    past_due = _status(billing_service, chen["subscriber_id"], "past_due")
    assert past_due["monitored"] is True
    notices = _until(
        lambda: _emails_to(billing_service, CHEN["email"], "订阅续费扣款失败 - 身份哨兵"),
        "the payment-failed e-mail",
    )
    assert len(notices) == 1
    sms = wait_for_sms(billing_service, CHEN["mobile"], count=2)
    assert "扣款失败" in sms[-1]["body"]
    link = re.search(r"http://127\.0\.0\.1:\d+/v1/billing/[A-Za-z0-9_.-]+", notices[0]["body"])
    assert link is not None
    opened = requests.get(link.group(0), allow_redirects=False, timeout=30)
    assert opened.status_code == 303
    assert opened.headers["location"].startswith(f"{shim.base_url}/portal/")

    shim.set_default_payment_method(profile["stripe_customer_id"], "pm_card_visa")
    _stripe(billing_service).v1.invoices.pay(invoice["id"])
    shim.flush()

    _status(billing_service, chen["subscriber_id"], "active")
    dunning = _until(
        lambda: _item(
            billing_service, f"SUB#{chen['subscriber_id']}", f"DUNNING#{invoice['id']}"
        ).get("resolved"),
        "the failed invoice resolved",
    )
    assert dunning is True
    assert sorted(_ledger(billing_service, chen["subscriber_id"])) == [
        ("invoice_paid", 1800),
        ("invoice_paid", 1800),
    ]


def test_referral_discount_and_credit(billing_service: LocalService) -> None:
    wang = _subscribe(billing_service, {"email": "wang.referrer@example.com"})

    # Another person pays with another card: the same card would be a self-referral.
    li = _subscribe(
        billing_service, LI, card="pm_card_mastercard", referral_code=wang["referral_code"]
    )

    # The subscription can turn active before the invoice.paid event is applied.
    ledger = _until(lambda: _ledger(billing_service, li["subscriber_id"]), "the referee's payment")
    assert ledger == [("invoice_paid", 900)]
    referral = _until(
        lambda: (lambda item: item if item.get("status") == "credited" else None)(
            _item(billing_service, f"SUB#{li['subscriber_id']}", "REFERRED_BY")
        ),
        "the referral credit",
    )
    assert referral["referrer_id"] == wang["subscriber_id"]
    wang_profile = _item(billing_service, f"SUB#{wang['subscriber_id']}", "PROFILE")
    customer = _stripe(billing_service).v1.customers.retrieve(wang_profile["stripe_customer_id"])
    assert customer.balance == -1000


def test_deep_report_bought_by_link(billing_service: LocalService) -> None:
    shim = _shim(billing_service)
    buyer = _subscribe(
        billing_service,
        {
            "name": "Alice Li",
            "id_number": "310104198512120023",
            "mobile": "+8613900139002",
            "email": "alice.li@example.com",
        },
    )
    link = billing_url(
        Pepper.from_secret(billing_service.pepper),
        billing_service.public_base_url,
        buyer["subscriber_id"],
        "deep_report",
        int(time.time()),
    )

    opened = requests.get(link, allow_redirects=False, timeout=30)
    checkout_page = opened.headers["location"]
    paid = requests.post(checkout_page + "/pay", headers={"Accept": "application/json"}, timeout=30)
    shim.flush()

    assert opened.status_code == 303
    assert paid.status_code == 200, paid.text
    session_id = paid.json()["checkout_session"]["id"]
    purchase = _until(
        lambda: _item(billing_service, f"SUB#{buyer['subscriber_id']}", f"PURCHASE#{session_id}"),
        "the purchase record",
    )
    assert (purchase["plan"], purchase["amount"]) == ("deep_report", "2900")
    assert ("purchase_paid", 2900) in _ledger(billing_service, buyer["subscriber_id"])
