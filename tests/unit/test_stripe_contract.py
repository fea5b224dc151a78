"""The Stripe fields the billing consumer reads exist in the SDK's pinned API version."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from stripe._charge import Charge
from stripe._dispute import Dispute
from stripe._invoice import Invoice
from stripe._payment_intent import PaymentIntent
from stripe._subscription import Subscription
from stripe._subscription_item import SubscriptionItem
from stripe.checkout._session import Session

from idsentry.adapters.stripe_gateway import API_VERSION
from idsentry.services.billing import FIELDS_READ

pytestmark = pytest.mark.unit

# The SDK's resource classes are generated from the API version it pins, so their annotations
# are that version's fields.
RESOURCE_CLASSES: dict[str, type[Any]] = {
    "checkout.session": Session,
    "subscription": Subscription,
    "subscription_item": SubscriptionItem,
    "invoice": Invoice,
    "charge": Charge,
    "dispute": Dispute,
    "payment_intent": PaymentIntent,
}


def _fields(resource: type[Any]) -> set[str]:
    names: set[str] = set()
    for klass in resource.__mro__:
        names.update(getattr(klass, "__annotations__", {}))
    return names


def test_gateway_pins_sdk_version() -> None:
    assert API_VERSION == stripe.api_version


def test_every_object_has_a_class() -> None:
    assert set(FIELDS_READ) == set(RESOURCE_CLASSES)


@pytest.mark.parametrize("object_name", sorted(FIELDS_READ))
def test_fields_exist_in_pinned_version(object_name: str) -> None:
    missing = set(FIELDS_READ[object_name]) - _fields(RESOURCE_CLASSES[object_name])

    assert not missing, f"{object_name} has no {sorted(missing)} in API version {API_VERSION}"


def test_removed_field_is_caught() -> None:
    # current_period_end moved from the subscription onto its items; reading it from the
    # subscription would be a contract violation that this check reports.
    assert "current_period_end" not in _fields(Subscription)
