"""The objects the local Stripe shim serves carry the fields the billing consumer reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from idsentry.adapters.stripe_gateway import StripeSdkGateway
from idsentry.services.billing import FIELDS_READ
from infra.local.emulators.stripe import TEST_API_KEY, LocalStripe
from infra.local.emulators.stripe_shim import StripeShim
from tests.integration.stripe_support import LoopbackOnlyClient

pytestmark = pytest.mark.integration

# Fields that Stripe itself leaves out unless asked: the consumer reads them with a fallback.
OPTIONAL = {("invoice", "payments")}


@pytest.fixture(scope="module")
def shim() -> Iterator[StripeShim]:
    with LocalStripe() as local, StripeShim(local.base_url) as started:
        yield started


@pytest.fixture(scope="module")
def served(shim: StripeShim) -> dict[str, dict[str, Any]]:
    """Buy, renew, refund and dispute, then read each object as the billing consumer does."""
    client = stripe.StripeClient(
        TEST_API_KEY,
        base_addresses={"api": shim.base_url},
        http_client=LoopbackOnlyClient(),
        max_network_retries=0,
    )
    price = client.v1.prices.create(
        params={
            "unit_amount": 1800,
            "currency": "cny",
            "recurring": {"interval": "month"},
            "product_data": {"name": "IDSentry monthly"},
        }
    )
    customer = client.v1.customers.create(params={"metadata": {"subscriber_id": "sbr_contract"}})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "client_reference_id": "sbr_contract",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "http://127.0.0.1/success",
            "cancel_url": "http://127.0.0.1/cancel",
        }
    )
    completed, _ = shim.pay_checkout_session(session.id)
    renewal = shim.renew_subscription(completed["subscription"])
    report = client.v1.prices.create(
        params={"unit_amount": 2900, "currency": "cny", "product_data": {"name": "Deep report"}}
    )
    purchase = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer.id,
            "client_reference_id": "sbr_contract",
            "line_items": [{"price": report.id, "quantity": 1}],
            "payment_intent_data": {"metadata": {"subscriber_id": "sbr_contract"}},
            "success_url": "http://127.0.0.1/success",
        }
    )
    purchased, _ = shim.pay_checkout_session(purchase.id)

    # The consumer's own reads, with the same parameters and expansions.
    gateway = StripeSdkGateway(TEST_API_KEY, shim.base_url)
    subscription = gateway.subscription(completed["subscription"])
    first_invoice = gateway.invoice(completed["invoice"])
    charge_id = first_invoice["charge"]["id"]
    client.v1.refunds.create(params={"charge": charge_id, "amount": 500})
    dispute = shim.create_dispute(charge_id)
    shim.close_dispute(dispute["id"], won=True)
    return {
        "checkout.session": gateway.checkout_session(session.id),
        "payment-mode checkout.session": gateway.checkout_session(purchase.id),
        "payment_intent": gateway.payment_intent(purchased["payment_intent"]),
        "subscription": subscription,
        "subscription_item": subscription["items"]["data"][0],
        "invoice": first_invoice,
        "renewal invoice": gateway.invoice(renewal["id"]),
        "charge": gateway.charge(charge_id),
        "dispute": gateway.dispute(dispute["id"]),
    }


# Each object the shim serves above, by the FIELDS_READ entry it must satisfy.
VARIANTS = {
    "checkout.session": "checkout.session",
    "payment-mode checkout.session": "checkout.session",
    "payment_intent": "payment_intent",
    "subscription": "subscription",
    "subscription_item": "subscription_item",
    "invoice": "invoice",
    "renewal invoice": "invoice",
    "charge": "charge",
    "dispute": "dispute",
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_shim_object_has_fields_read(served: dict[str, dict[str, Any]], variant: str) -> None:
    object_name = VARIANTS[variant]
    found = served[variant]

    missing = [
        field
        for field in FIELDS_READ[object_name]
        if field not in found and (object_name, field) not in OPTIONAL
    ]

    assert not missing, f"the shim's {variant} lacks {missing}"


def test_every_object_read_is_covered() -> None:
    missing = set(FIELDS_READ) - set(VARIANTS.values())

    assert not missing, f"no object the shim serves is checked for {sorted(missing)}"


def test_shim_values_read(served: dict[str, dict[str, Any]]) -> None:
    charge = served["charge"]
    dispute = served["dispute"]

    assert served["payment-mode checkout.session"]["payment_status"] == "paid"
    assert served["payment_intent"]["metadata"] == {"subscriber_id": "sbr_contract"}
    # localstripe expands latest_charge where Stripe returns its id; the consumer reads both.
    latest_charge = served["payment_intent"]["latest_charge"]
    assert (latest_charge if isinstance(latest_charge, str) else latest_charge["id"]).startswith(
        "ch_"
    )
    assert served["invoice"]["billing_reason"] == "subscription_create"
    assert served["renewal invoice"]["billing_reason"] == "subscription_cycle"
    assert served["renewal invoice"]["status"] == "paid"
    assert [refund["amount"] for refund in charge["refunds"]["data"]] == [500]
    assert charge["balance_transaction"]["object"] == "balance_transaction"
    assert charge["payment_method_details"]["card"]["fingerprint"]
    assert dispute["status"] == "won"
    assert dispute["charge"] == charge["id"]
    assert [movement["reporting_category"] for movement in dispute["balance_transactions"]] == [
        "dispute",
        "dispute_reversal",
    ]
