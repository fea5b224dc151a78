"""Test cards, card fingerprints and the pinned API version's charge, payment method and refund fields.

localstripe 1.15.10 calls every card `visa` and fingerprints it as the first 16 hex digits of
the SHA-1 of its number (`fingerprint()` in localstripe/resources.py). A bare hash of a card
number can be reversed by trying numbers, and Stripe's fingerprints are opaque. The shim
therefore serves an HMAC-SHA256 of localstripe's fingerprint under a fixed key. The same card
number gives the same fingerprint in every run, and different numbers give different ones.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from infra.local.emulators.stripe_api import LocalStripeError, StripeApiError, invalid_parameter
from infra.local.emulators.stripe_client import LocalStripeClient


@dataclass(frozen=True)
class TestCard:
    """A Stripe test card: its number, network brand and funding type."""

    number: str
    brand: str
    funding: str = "credit"


# Stripe's test PaymentMethod ids and their cards (https://docs.stripe.com/testing).
# localstripe 1.15.10 itself creates only pm_card_visa, pm_card_chargeCustomerFail and
# pm_card_visa_chargeDeclined, so the shim creates the others from their numbers.
TEST_CARDS: Final = {
    "pm_card_visa": TestCard("4242424242424242", "visa"),
    "pm_card_visa_debit": TestCard("4000056655665556", "visa", "debit"),
    "pm_card_mastercard": TestCard("5555555555554444", "mastercard"),
    "pm_card_unionpay": TestCard("6200000000000005", "unionpay"),
    # Attaches, then every charge is declined.
    "pm_card_chargeCustomerFail": TestCard("4000000000000341", "visa"),
    # Declined when it is attached.
    "pm_card_visa_chargeDeclined": TestCard("4000000000000002", "visa"),
}
LOCALSTRIPE_TEST_IDS: Final = frozenset(
    {"pm_card_visa", "pm_card_chargeCustomerFail", "pm_card_visa_chargeDeclined"}
)
TEST_CARD_EXPIRY: Final = {"exp_month": "12", "exp_year": "2034", "cvc": "123"}
# Not a secret, because the shim only ever handles test cards. A fixed key keeps fingerprints stable
# across runs, as Stripe's are.
FINGERPRINT_KEY: Final = b"idsentry-local-stripe-shim-card-fingerprint"
FINGERPRINT_ALPHABET: Final = string.ascii_letters + string.digits
LOCALSTRIPE_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
REFUND_REASONS: Final = ("duplicate", "fraudulent", "requested_by_customer")


def localstripe_fingerprint(number: str) -> str:
    """Return the fingerprint localstripe 1.15.10 gives a card number."""
    return hashlib.sha1(number.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


CARDS_BY_LOCALSTRIPE_FINGERPRINT: Final = {
    localstripe_fingerprint(card.number): card for card in TEST_CARDS.values()
}


def card_fingerprint(fingerprint: str) -> str:
    """Return the shim's fingerprint for localstripe's, or a fingerprint of the shim unchanged.

    The shim's fingerprints start with a letter, so they never look like localstripe's 16 hex
    digits, and reshaping an object twice leaves them as they are.
    """
    if not LOCALSTRIPE_FINGERPRINT.fullmatch(fingerprint):
        return fingerprint
    digest = hmac.new(FINGERPRINT_KEY, fingerprint.encode("ascii"), hashlib.sha256).digest()
    first = string.ascii_uppercase[digest[0] % len(string.ascii_uppercase)]
    rest = "".join(FINGERPRINT_ALPHABET[byte % len(FINGERPRINT_ALPHABET)] for byte in digest[1:16])
    return first + rest


def read_test_card(payment_method: Any, param: str = "payment_method") -> str:
    """Return `payment_method` if it is one of the Stripe test ids in `TEST_CARDS`."""
    if not isinstance(payment_method, str) or payment_method not in TEST_CARDS:
        raise invalid_parameter(param, "one of the test payment methods " + ", ".join(TEST_CARDS))
    return payment_method


def create_test_payment_method(
    localstripe: LocalStripeClient, test_id: str, customer: str | None = None
) -> dict[str, Any]:
    """Create a new PaymentMethod for a test id, attached to `customer` when one is given.

    Raises LocalStripeError, for example 402 `card_declined` when pm_card_visa_chargeDeclined
    is attached.
    """
    if test_id in LOCALSTRIPE_TEST_IDS:
        # Retrieving or attaching one of localstripe's test ids creates a new PaymentMethod.
        if customer is None:
            return localstripe.call("GET", f"/v1/payment_methods/{test_id}")
        return localstripe.call(
            "POST", f"/v1/payment_methods/{test_id}/attach", {"customer": customer}
        )

    card = TEST_CARDS[test_id]
    created = localstripe.call(
        "POST",
        "/v1/payment_methods",
        {"type": "card", "card": {"number": card.number, **TEST_CARD_EXPIRY}},
    )
    if customer is None:
        return created
    return localstripe.call(
        "POST",
        f"/v1/payment_methods/{quote(created['id'], safe='')}/attach",
        {"customer": customer},
    )


def reshape_payment_method(payment_method: dict[str, Any]) -> None:
    """Give a card PaymentMethod its test card's brand, the shim's fingerprint and pinned fields."""
    card = payment_method.get("card")
    if not isinstance(card, dict) or not isinstance(card.get("fingerprint"), str):
        return
    known = CARDS_BY_LOCALSTRIPE_FINGERPRINT.get(card["fingerprint"])
    if known is not None:
        card["brand"] = known.brand
        card["funding"] = known.funding
    card["fingerprint"] = card_fingerprint(card["fingerprint"])
    card.setdefault("display_brand", card.get("brand"))
    card.setdefault("networks", {"available": [card.get("brand")], "preferred": None})
    card.setdefault(
        "checks",
        {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
    )
    card.setdefault("wallet", None)


def card_details(payment_method: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return `payment_method_details` for a charge made with a reshaped card PaymentMethod."""
    card = payment_method.get("card")
    if not isinstance(card, Mapping):
        return None
    return {
        "type": "card",
        "card": {
            "brand": card.get("brand"),
            "checks": card.get("checks"),
            "country": card.get("country"),
            "exp_month": card.get("exp_month"),
            "exp_year": card.get("exp_year"),
            "fingerprint": card.get("fingerprint"),
            "funding": card.get("funding"),
            "last4": card.get("last4"),
            "network": card.get("brand"),
            "three_d_secure": None,
            "wallet": None,
        },
    }


class PaymentMethodCache:
    """Card details of PaymentMethods by id, read from localstripe once: they never change."""

    def __init__(self, localstripe: LocalStripeClient) -> None:
        self._localstripe = localstripe
        self._lock = threading.Lock()
        self._details: dict[str, dict[str, Any] | None] = {}

    def details(self, payment_method_id: str) -> dict[str, Any] | None:
        """Return the charge's `payment_method_details` for a PaymentMethod, or None if unknown."""
        with self._lock:
            if payment_method_id in self._details:
                return self._details[payment_method_id]
        try:
            payment_method = self._localstripe.call(
                "GET", f"/v1/payment_methods/{quote(payment_method_id, safe='')}"
            )
        except LocalStripeError:
            return None
        reshape_payment_method(payment_method)
        details = card_details(payment_method)
        with self._lock:
            self._details[payment_method_id] = details
        return details


def reshape_charge(charge: dict[str, Any], details: dict[str, Any] | None, disputed: bool) -> None:
    """Add the pinned version's charge fields that localstripe lacks."""
    succeeded = charge.get("status") == "succeeded"
    charge["payment_method_details"] = details
    charge["disputed"] = disputed
    charge.setdefault(
        "amount_captured", charge.get("amount") if succeeded and charge.get("captured") else 0
    )
    charge.setdefault(
        "billing_details",
        {"address": None, "email": None, "name": None, "phone": None, "tax_id": None},
    )
    charge.setdefault(
        "outcome",
        {
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": None if succeeded else "generic_decline",
            "risk_level": "normal",
            "seller_message": "Payment complete."
            if succeeded
            else "The bank did not return any further details with this decline.",
            "type": "authorized" if succeeded else "issuer_declined",
        },
    )


def read_refund_reason(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if value not in REFUND_REASONS:
        raise invalid_parameter("reason", "one of " + ", ".join(REFUND_REASONS))
    return str(value)


def check_refundable(charge: Mapping[str, Any], amount: int | None, disputed: bool) -> None:
    """Reject a refund of a disputed, fully refunded or smaller charge, as Stripe does."""
    charge_id = charge.get("id")
    if disputed:
        raise StripeApiError(
            400,
            f"Charge {charge_id} has been charged back; cannot issue a refund.",
            code="charge_disputed",
        )
    remaining = int(charge.get("amount") or 0) - int(charge.get("amount_refunded") or 0)
    if remaining <= 0:
        raise StripeApiError(
            400, f"Charge {charge_id} has already been refunded.", code="charge_already_refunded"
        )
    if amount is not None and amount > remaining:
        raise StripeApiError(
            400,
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining}).",
            param="amount",
        )
