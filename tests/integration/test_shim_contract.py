"""The objects the local Stripe shim serves carry the fields the billing consumer reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from idsentry.services.billing import FIELDS_READ
from infra.local.emulators.stripe import TEST_API_KEY, LocalStripe
from infra.local.emulators.stripe_shim import StripeShim

pytestmark = pytest.mark.integration

# Fields that Stripe itself leaves out unless asked: the consumer reads them with a fallback.
OPTIONAL = {("invoice", "payments")}


@pytest.fixture(scope="module")
def shim() -> Iterator[StripeShim]:
    with LocalStripe() as local, StripeShim(local.base_url) as started:
        yield started


@pytest.fixture(scope="module")
def paid(shim: StripeShim) -> dict[str, dict[str, Any]]:
    client = stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": shim.base_url}, max_network_retries=0
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
    subscription = client.v1.subscriptions.retrieve(completed["subscription"]).to_dict()
    invoice_id = subscription["latest_invoice"]
    invoice = client.v1.invoices.retrieve(
        invoice_id if isinstance(invoice_id, str) else invoice_id["id"]
    ).to_dict()
    charge_field = invoice.get("charge")
    charge_id = charge_field if isinstance(charge_field, str) else charge_field["id"]
    return {
        "checkout.session": client.v1.checkout.sessions.retrieve(session.id).to_dict(),
        "subscription": subscription,
        "subscription_item": subscription["items"]["data"][0],
        "invoice": invoice,
        "charge": client.v1.charges.retrieve(charge_id).to_dict(),
    }


@pytest.mark.parametrize(
    "object_name", ["checkout.session", "subscription", "subscription_item", "invoice", "charge"]
)
def test_shim_object_has_fields_read(paid: dict[str, dict[str, Any]], object_name: str) -> None:
    served = paid[object_name]

    missing = [
        field
        for field in FIELDS_READ[object_name]
        if field not in served and (object_name, field) not in OPTIONAL
    ]

    assert not missing, f"the shim's {object_name} lacks {missing}"
