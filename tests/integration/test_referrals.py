"""Referral codes at signup and the referrer's credit, against moto server: abuse cases first."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from idsentry.errors import RequestValidationError
from idsentry.models.plans import PlansConfig, ReferralConfig
from idsentry.services import referrals, signup
from idsentry.services.checkout import CheckoutDeps, start_checkout
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_signup_service import PEOPLE, FakeCheckout, Harness, _clear_table

pytestmark = pytest.mark.integration

REFERRAL = ReferralConfig(
    coupon="idsentry_referral_first_period", credit={"cny": 1000}, monthly_cap=2
)
FIRST_INVOICE = {"id": "in_first", "billing_reason": "subscription_create", "currency": "cny"}


class FakeCredits:
    """Customer balance transactions by idempotency key, as Stripe would keep them."""

    def __init__(self) -> None:
        self.created: dict[str, dict[str, Any]] = {}

    def create_balance_transaction(
        self, customer_id: str, params: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        created = {"id": f"cbtxn_{len(self.created)}", "customer": customer_id, **params}
        return self.created.setdefault(idempotency_key, created)


@pytest.fixture
def harness(local_service: LocalService) -> Iterator[Harness]:
    yield Harness(local_service, MovableClock())
    _clear_table(local_service)


def _subscribe(harness: Harness, person: str, **overrides: Any) -> dict[str, Any]:
    signup_id = harness.create(person, **overrides)
    return signup.verify_signup(harness.deps, signup_id, harness.send_code(signup_id))


def _make_paying(harness: Harness, subscriber_id: str, customer_id: str) -> None:
    harness.table.update(
        f"SUB#{subscriber_id}",
        "PROFILE",
        "SET monitored = :true, stripe_customer_id = :customer, billing_currency = :cny",
        values={":true": True, ":customer": customer_id, ":cny": "cny"},
    )


def _problem(error: RequestValidationError) -> tuple[str, str]:
    return error.problems[0].field, error.problems[0].code


def _referrer(harness: Harness) -> dict[str, Any]:
    wang = _subscribe(harness, "wang")
    _make_paying(harness, wang["subscriber_id"], "cus_wang")
    return wang


def test_verified_subscriber_gets_code(harness: Harness) -> None:
    result = _subscribe(harness, "wang")

    code = result["referral_code"]
    assert len(code) == referrals.CODE_LENGTH
    assert set(code) <= set(referrals.CODE_ALPHABET)
    owner = harness.table.get(f"REFCODE#{code}", "REFCODE")
    assert owner is not None and owner["subscriber_id"] == result["subscriber_id"]


def test_unknown_code_rejected(harness: Harness) -> None:
    with pytest.raises(RequestValidationError) as raised:
        harness.create("alice", referral_code="ZZZZ2222")

    assert _problem(raised.value) == ("referral_code", "referral_code.unknown")


def test_unpaid_referrer_code_rejected(harness: Harness) -> None:
    wang = _subscribe(harness, "wang")

    with pytest.raises(RequestValidationError) as raised:
        harness.create("alice", referral_code=wang["referral_code"])

    assert _problem(raised.value) == ("referral_code", "referral_code.unknown")


def test_same_mobile_is_self_referral(harness: Harness) -> None:
    wang = _referrer(harness)

    with pytest.raises(RequestValidationError) as raised:
        harness.create("alice", mobile=PEOPLE["wang"][2], referral_code=wang["referral_code"])

    assert _problem(raised.value) == ("referral_code", "referral_code.self")


def test_same_id_number_is_self_referral(harness: Harness) -> None:
    wang = _referrer(harness)

    with pytest.raises(RequestValidationError) as raised:
        harness.create(
            "alice", id_number=PEOPLE["wang"][1], referral_code=wang["referral_code"].lower()
        )

    assert _problem(raised.value) == ("referral_code", "referral_code.self")


def test_referee_checkout_gets_coupon(harness: Harness) -> None:
    wang = _referrer(harness)
    fake = FakeCheckout()
    plans = PlansConfig.model_validate(
        {
            "plans": {
                "monthly": {"mode": "subscription", "prices": {"cny": "idsentry_monthly_cny"}}
            },
            "referral": REFERRAL.model_dump(),
        }
    )
    deps = CheckoutDeps(harness.table, fake, plans, "http://127.0.0.1/ok", "http://127.0.0.1/no")
    harness.deps = replace(
        harness.deps,
        checkout=lambda subscriber, signup_id, plan, locale: start_checkout(
            deps, subscriber, signup_id, plan, locale
        ),
    )

    alice = _subscribe(harness, "alice", referral_code=wang["referral_code"])
    chen = _subscribe(harness, "chen")

    sessions = list(fake.sessions.values())
    assert sessions[0]["discounts"] == [{"coupon": REFERRAL.coupon}]
    assert "discounts" not in sessions[1]
    referral = harness.table.get(f"SUB#{alice['subscriber_id']}", "REFERRED_BY")
    assert referral is not None
    assert (referral["referrer_id"], referral["status"]) == (wang["subscriber_id"], "pending")
    assert harness.table.get(f"SUB#{chen['subscriber_id']}", "REFERRED_BY") is None


def _referred(harness: Harness, person: str, referrer: dict[str, Any]) -> str:
    return str(
        _subscribe(harness, person, referral_code=referrer["referral_code"])["subscriber_id"]
    )


def _reward(
    harness: Harness, credits: FakeCredits, referee: str, card: str = "fp_alice", **invoice: Any
) -> str | None:
    return referrals.reward_referrer(
        harness.table,
        credits,
        REFERRAL,
        referee,
        {**FIRST_INVOICE, **invoice},
        card,
        1_796_400_000,
    )


def test_first_invoice_credits_once(harness: Harness) -> None:
    wang = _referrer(harness)
    alice = _referred(harness, "alice", wang)
    credits = FakeCredits()

    first = _reward(harness, credits, alice)
    again = _reward(harness, credits, alice)

    assert (first, again) == ("credited", "credited")
    assert list(credits.created.values()) == [
        {
            "id": "cbtxn_0",
            "customer": "cus_wang",
            "amount": -1000,
            "currency": "cny",
            "description": "IDSentry referral credit",
            "metadata": {"referee_id": alice, "kind": "referral_credit"},
        }
    ]
    cap = harness.table.get(f"SUB#{wang['subscriber_id']}", "REFCAP#202612")
    assert cap is not None and cap["count"] == 1


def test_renewal_invoice_does_not_credit(harness: Harness) -> None:
    wang = _referrer(harness)
    alice = _referred(harness, "alice", wang)
    credits = FakeCredits()

    status = _reward(harness, credits, alice, billing_reason="subscription_cycle")

    assert status == "pending"
    assert credits.created == {}


def test_referrer_card_is_self_referral(harness: Harness) -> None:
    wang = _referrer(harness)
    referrals.record_payment(harness.table, wang["subscriber_id"], "cny", "fp_wang_card")
    alice = _referred(harness, "alice", wang)
    credits = FakeCredits()

    status = _reward(harness, credits, alice, card="fp_wang_card")

    assert status == "rejected"
    assert credits.created == {}
    referral = harness.table.get(f"SUB#{alice}", "REFERRED_BY")
    assert referral is not None and referral["reason"] == "same_card"


def test_monthly_cap_stops_credits(harness: Harness) -> None:
    wang = _referrer(harness)
    credits = FakeCredits()
    referees = [_referred(harness, person, wang) for person in ("alice", "chen")]
    PEOPLE["zhao"] = ("赵磊", "440106198807070010", "+8613700137007")
    assert harness.service.realname is not None
    harness.service.realname.add_identity(*PEOPLE["zhao"])
    try:
        referees.append(_referred(harness, "zhao", wang))
    finally:
        del PEOPLE["zhao"]

    statuses = [_reward(harness, credits, referee, card=f"fp_{referee}") for referee in referees]

    assert statuses == ["credited", "credited", "capped"]
    assert len(credits.created) == 2
