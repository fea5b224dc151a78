"""Integration tests of the Stripe shim's coupons, promotion codes and Checkout discounts."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from infra.local.emulators.stripe import TEST_API_KEY, LocalStripe
from infra.local.emulators.stripe_shim import StripeApiError, StripeShim
from tests.integration.stripe_support import LoopbackOnlyClient, WebhookReceiver, verified_events

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "whsec_shim_promotions_test"
SUCCESS_URL = "http://127.0.0.1:9/done"


@pytest.fixture
def shim() -> Iterator[StripeShim]:
    with (
        LocalStripe() as local_stripe,
        StripeShim(local_stripe.base_url, retry_delays=(0.05,), rng=random.Random(5)) as server,
    ):
        yield server


@pytest.fixture
def client(shim: StripeShim) -> stripe.StripeClient:
    return stripe.StripeClient(
        TEST_API_KEY,
        base_addresses={"api": shim.base_url},
        http_client=LoopbackOnlyClient(),
        max_network_retries=0,
    )


def monthly_price(client: stripe.StripeClient, currency: str = "cny") -> stripe.Price:
    return client.v1.prices.create(
        params={
            "currency": currency,
            "unit_amount": 1800,
            "recurring": {"interval": "month"},
            "product_data": {"name": "IDSentry monthly"},
        }
    )


def report_price(client: stripe.StripeClient) -> stripe.Price:
    return client.v1.prices.create(
        params={"currency": "cny", "unit_amount": 2900, "product_data": {"name": "Deep report"}}
    )


def checkout(
    client: stripe.StripeClient,
    price: stripe.Price,
    discount: dict[str, str],
    customer: str | None = None,
) -> stripe.checkout.Session:
    params: dict[str, Any] = {
        "mode": "subscription" if price.recurring else "payment",
        "line_items": [{"price": price.id}],
        "discounts": [discount],
        "success_url": SUCCESS_URL,
    }
    if customer is not None:
        params["customer"] = customer
    return client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]


def promotion_code(client: stripe.StripeClient, coupon: str, **params: Any) -> stripe.PromotionCode:
    return client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon}, **params}
    )


# -- coupons ----------------------------------------------------------------------------------


def test_coupon_variants(client: stripe.StripeClient) -> None:
    referral = client.v1.coupons.create(
        params={"id": "idsentry_referral_first_period", "percent_off": 50, "duration": "once"}
    )
    fixed = client.v1.coupons.create(
        params={"amount_off": 300, "currency": "cny", "duration": "forever", "name": "Loyalty"}
    )
    repeating = client.v1.coupons.create(
        params={
            "percent_off": 12.5,
            "duration": "repeating",
            "duration_in_months": 3,
            "max_redemptions": 2,
        }
    )

    fetched = client.v1.coupons.retrieve("idsentry_referral_first_period")

    assert referral.id == "idsentry_referral_first_period"
    assert fetched.percent_off == 50
    assert fetched.duration == "once"
    assert fetched.times_redeemed == 0
    assert fetched.valid is True
    assert fixed.amount_off == 300
    assert fixed.currency == "cny"
    assert fixed.duration == "forever"
    assert fixed.name == "Loyalty"
    assert len(fixed.id) == 8
    assert repeating.duration_in_months == 3
    assert repeating.percent_off == 12.5
    assert repeating.max_redemptions == 2
    assert {coupon.id for coupon in client.v1.coupons.list().data} == {
        referral.id,
        fixed.id,
        repeating.id,
    }


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"percent_off": 50, "amount_off": 100, "currency": "cny"}, "percent_off"),
        ({"duration": "once"}, "percent_off"),
        ({"amount_off": 100}, "currency"),
        ({"percent_off": 150}, "percent_off"),
        ({"percent_off": 10, "duration": "repeating"}, "duration_in_months"),
        ({"percent_off": 10, "duration": "once", "duration_in_months": 2}, "duration_in_months"),
        ({"percent_off": 10, "duration": "weekly"}, "duration"),
        ({"percent_off": 10, "redeem_by": 1_000_000_000}, "redeem_by"),
        ({"percent_off": 10, "applies_to": {"products": ["prod_1"]}}, "applies_to"),
    ],
)
def test_coupon_rejects_input(
    client: stripe.StripeClient, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.coupons.create(params=params)  # type: ignore[arg-type]

    assert raised.value.param == param
    assert client.v1.coupons.list().data == []


def test_coupon_id_taken(client: stripe.StripeClient) -> None:
    client.v1.coupons.create(params={"id": "spring", "percent_off": 10})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.coupons.create(params={"id": "spring", "percent_off": 20})

    assert raised.value.code == "resource_already_exists"
    assert client.v1.coupons.retrieve("spring").percent_off == 10


# -- promotion codes --------------------------------------------------------------------------


def test_promotion_code_create_list_update(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create(params={"percent_off": 20, "duration": "once"})
    other = client.v1.coupons.create(params={"percent_off": 30, "duration": "once"})
    customer = client.v1.customers.create()
    expires_at = int(time.time()) + 3600

    created = promotion_code(
        client,
        coupon.id,
        code="FRIEND-2026",
        max_redemptions=5,
        expires_at=expires_at,
        customer=customer.id,
        metadata={"campaign": "referral"},
        restrictions={
            "first_time_transaction": True,
            "minimum_amount": 1000,
            "minimum_amount_currency": "cny",
        },
    )
    generated = promotion_code(client, other.id)
    by_code = client.v1.promotion_codes.list(params={"code": "friend-2026"})
    by_coupon = client.v1.promotion_codes.list(params={"coupon": other.id})
    expanded = client.v1.promotion_codes.retrieve(
        created.id, params={"expand": ["promotion.coupon"]}
    )
    updated = client.v1.promotion_codes.update(
        created.id, params={"active": False, "metadata": {"campaign": "", "batch": "1"}}
    )
    inactive = client.v1.promotion_codes.list(params={"active": False})

    assert created.id.startswith("promo_")
    assert created.object == "promotion_code"
    assert created.code == "FRIEND-2026"
    assert created.active is True
    assert created.promotion.type == "coupon"
    assert created.promotion.coupon == coupon.id
    assert created.customer == customer.id
    assert created.expires_at == expires_at
    assert created.max_redemptions == 5
    assert created.times_redeemed == 0
    assert created.restrictions.first_time_transaction is True
    assert created.restrictions.minimum_amount == 1000
    assert created.restrictions.minimum_amount_currency == "cny"
    assert created.metadata is not None
    assert created.metadata.to_dict() == {"campaign": "referral"}
    assert len(generated.code) == 8
    assert [code.id for code in by_code.data] == [created.id]
    assert [code.id for code in by_coupon.data] == [generated.id]
    assert isinstance(expanded.promotion.coupon, stripe.Coupon)
    assert expanded.promotion.coupon.percent_off == 20
    assert updated.active is False
    assert updated.metadata is not None
    assert updated.metadata.to_dict() == {"batch": "1"}
    assert [code.id for code in inactive.data] == [created.id]


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"promotion": {"type": "coupon", "coupon": "missing"}}, "promotion[coupon]", "resource_missing"),
        ({"code": "NO SPACES"}, "code", None),
        ({"expires_at": 1_000_000_000}, "expires_at", None),
        ({"max_redemptions": 0}, "max_redemptions", None),
        ({"customer": "cus_missing"}, "customer", "resource_missing"),
        ({"restrictions": {"minimum_amount": 100}}, "restrictions[minimum_amount_currency]", "parameter_missing"),
    ],
)  # fmt: skip
def test_promotion_code_rejects_input(
    client: stripe.StripeClient, params: dict[str, Any], param: str, code: str | None
) -> None:
    coupon = client.v1.coupons.create(params={"percent_off": 20})
    full = {"promotion": {"type": "coupon", "coupon": coupon.id}, **params}

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.promotion_codes.create(params=full)  # type: ignore[arg-type]

    assert raised.value.param == param
    assert raised.value.code == code
    assert client.v1.promotion_codes.list().data == []


def test_promotion_code_missing_promotion(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.promotion_codes.create(params={"code": "SPRING"})  # type: ignore[typeddict-item]

    assert raised.value.param == "promotion"
    assert raised.value.code == "parameter_missing"


def test_promotion_code_unique_while_active(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create(params={"percent_off": 20})
    first = promotion_code(client, coupon.id, code="SPRING")

    with pytest.raises(stripe.InvalidRequestError) as raised:
        promotion_code(client, coupon.id, code="spring")
    client.v1.promotion_codes.update(first.id, params={"active": False})
    second = promotion_code(client, coupon.id, code="spring")
    with pytest.raises(stripe.InvalidRequestError) as reactivate:
        client.v1.promotion_codes.update(first.id, params={"active": True})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.promotion_codes.retrieve("promo_missing")

    assert raised.value.param == "code"
    assert second.active is True
    assert reactivate.value.param == "code"
    assert unknown.value.http_status == 404


# -- Checkout discounts -----------------------------------------------------------------------


def test_coupon_discounts_first_invoice_only(client: stripe.StripeClient, shim: StripeShim) -> None:
    coupon = client.v1.coupons.create(params={"id": "referral", "percent_off": 50})
    customer = client.v1.customers.create()
    session = checkout(client, monthly_price(client), {"coupon": "referral"}, customer.id)

    completed, _ = shim.pay_checkout_session(session.id)
    subscription = client.v1.subscriptions.retrieve(completed["subscription"])
    invoice = client.v1.invoices.retrieve(str(subscription.latest_invoice))
    renewal = shim.renew_subscription(subscription.id)

    assert session.amount_subtotal == 1800
    assert session.amount_total == 900
    assert session.total_details is not None
    assert session.total_details.amount_discount == 900
    assert session.discounts is not None
    assert session.discounts[0].coupon == coupon.id
    assert subscription.discounts is not None
    [discount_id] = subscription.discounts
    assert isinstance(discount_id, str)
    assert discount_id.startswith("di_")
    assert invoice.billing_reason == "subscription_create"
    assert invoice.amount_paid == 900
    assert invoice.subtotal == 1800
    assert invoice.discounts == [discount_id]
    assert invoice.total_discount_amounts is not None
    assert invoice.total_discount_amounts[0].amount == 900
    assert renewal["amount_paid"] == 1800
    assert renewal["discounts"] == []
    assert client.v1.subscriptions.retrieve(subscription.id).discounts == []
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1


def test_forever_discount_renews(client: stripe.StripeClient, shim: StripeShim) -> None:
    client.v1.coupons.create(
        params={"id": "loyal", "amount_off": 300, "currency": "cny", "duration": "forever"}
    )
    session = checkout(client, monthly_price(client), {"coupon": "loyal"})

    completed, _ = shim.pay_checkout_session(session.id)
    renewal = shim.renew_subscription(completed["subscription"])

    assert session.amount_total == 1500
    assert renewal["amount_paid"] == 1500
    assert renewal["subtotal"] == 1800
    [discount_id] = renewal["discounts"]
    assert client.v1.subscriptions.retrieve(completed["subscription"]).discounts == [discount_id]


def test_promotion_code_payment_mode(client: stripe.StripeClient, shim: StripeShim) -> None:
    coupon = client.v1.coupons.create(
        params={"amount_off": 500, "currency": "cny", "duration": "once"}
    )
    code = promotion_code(client, coupon.id, code="REPORT5", max_redemptions=1)
    session = checkout(client, report_price(client), {"promotion_code": code.id})

    completed, _ = shim.pay_checkout_session(session.id)

    assert session.amount_total == 2400
    assert session.discounts is not None
    assert session.discounts[0].promotion_code == code.id
    intent = client.v1.payment_intents.retrieve(completed["payment_intent"])
    assert intent.amount == 2400
    assert client.v1.promotion_codes.retrieve(code.id).times_redeemed == 1
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1
    with pytest.raises(stripe.InvalidRequestError) as exhausted:
        checkout(client, report_price(client), {"promotion_code": code.id})
    assert exhausted.value.error is not None
    assert exhausted.value.error.type == "invalid_request_error"
    assert exhausted.value.param == "discounts[0][promotion_code]"
    assert "maximum number of redemptions" in str(exhausted.value.user_message)


def test_promotion_code_exhausted_at_payment(client: stripe.StripeClient, shim: StripeShim) -> None:
    coupon = client.v1.coupons.create(params={"percent_off": 10})
    code = promotion_code(client, coupon.id, max_redemptions=1)
    price = report_price(client)
    first = checkout(client, price, {"promotion_code": code.id})
    second = checkout(client, price, {"promotion_code": code.id})

    shim.pay_checkout_session(first.id)
    with pytest.raises(StripeApiError) as raised:
        shim.pay_checkout_session(second.id)

    assert raised.value.status == 400
    assert raised.value.param == "discounts[0][promotion_code]"
    assert client.v1.checkout.sessions.retrieve(second.id).status == "open"
    assert client.v1.promotion_codes.retrieve(code.id).times_redeemed == 1


def test_full_discount_sends_invoice_paid(client: stripe.StripeClient, shim: StripeShim) -> None:
    receiver = WebhookReceiver()
    shim.configure_webhook(receiver.url, WEBHOOK_SECRET, ["invoice.paid"])
    client.v1.coupons.create(params={"id": "free_month", "percent_off": 100})
    session = checkout(client, monthly_price(client), {"coupon": "free_month"})

    completed, _ = shim.pay_checkout_session(session.id)
    shim.flush()
    events = verified_events(receiver.deliveries, WEBHOOK_SECRET)
    receiver.close()

    assert session.amount_total == 0
    invoice = client.v1.invoices.retrieve(completed["invoice"])
    assert invoice.status == "paid"
    assert invoice.amount_paid == 0
    assert [event["data"]["object"]["id"] for event in events] == [invoice.id]
    assert client.v1.subscriptions.retrieve(completed["subscription"]).status == "active"


@pytest.mark.parametrize(
    ("case", "param", "code"),
    [
        ("unknown_coupon", "discounts[0][coupon]", "resource_missing"),
        ("unknown_code", "discounts[0][promotion_code]", "resource_missing"),
        ("inactive_code", "discounts[0][promotion_code]", None),
        ("other_customer", "discounts[0][promotion_code]", None),
        ("minimum_amount", "discounts[0][promotion_code]", None),
        ("currency", "discounts[0][coupon]", None),
        ("with_allow_promotion_codes", "discounts", None),
        ("two_discounts", "discounts", None),
        ("both_fields", "discounts[0][coupon]", None),
    ],
)
def test_checkout_discount_rejected(
    client: stripe.StripeClient, case: str, param: str, code: str | None
) -> None:
    percent = client.v1.coupons.create(params={"id": "ten", "percent_off": 10})
    client.v1.coupons.create(
        params={"id": "usd_off", "amount_off": 100, "currency": "usd", "duration": "once"}
    )
    customer = client.v1.customers.create()
    stranger = client.v1.customers.create()
    inactive = promotion_code(client, percent.id, active=False)
    personal = promotion_code(client, percent.id, customer=stranger.id)
    minimum = promotion_code(
        client,
        percent.id,
        restrictions={"minimum_amount": 5000, "minimum_amount_currency": "cny"},
    )
    discounts: dict[str, Any] = {
        "unknown_coupon": [{"coupon": "missing"}],
        "unknown_code": [{"promotion_code": "promo_missing"}],
        "inactive_code": [{"promotion_code": inactive.id}],
        "other_customer": [{"promotion_code": personal.id}],
        "minimum_amount": [{"promotion_code": minimum.id}],
        "currency": [{"coupon": "usd_off"}],
        "with_allow_promotion_codes": [{"coupon": "ten"}],
        "two_discounts": [{"coupon": "ten"}, {"coupon": "ten"}],
        "both_fields": [{"coupon": "ten", "promotion_code": minimum.id}],
    }
    params: dict[str, Any] = {
        "mode": "subscription",
        "customer": customer.id,
        "line_items": [{"price": monthly_price(client).id}],
        "discounts": discounts[case],
    }
    if case == "with_allow_promotion_codes":
        params["allow_promotion_codes"] = True

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]

    assert raised.value.http_status == 400
    assert raised.value.param == param
    assert raised.value.code == code


def test_first_time_restriction(client: stripe.StripeClient, shim: StripeShim) -> None:
    coupon = client.v1.coupons.create(params={"percent_off": 10})
    code = promotion_code(client, coupon.id, restrictions={"first_time_transaction": True})
    customer = client.v1.customers.create()
    newcomer = checkout(client, report_price(client), {"promotion_code": code.id}, customer.id)
    shim.pay_checkout_session(newcomer.id)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        checkout(client, report_price(client), {"promotion_code": code.id}, customer.id)

    assert raised.value.param == "discounts[0][promotion_code]"
    assert "first-time" in str(raised.value.user_message)


def test_promotion_code_expires() -> None:
    now = [2_000_000_000.0]
    with (
        LocalStripe() as local_stripe,
        StripeShim(local_stripe.base_url, clock=lambda: now[0]) as shim,
    ):
        client = stripe.StripeClient(
            TEST_API_KEY,
            base_addresses={"api": shim.base_url},
            http_client=LoopbackOnlyClient(),
            max_network_retries=0,
        )
        coupon = client.v1.coupons.create(params={"percent_off": 10})
        code = promotion_code(client, coupon.id, expires_at=int(now[0]) + 60)
        price = report_price(client)
        before = checkout(client, price, {"promotion_code": code.id})

        now[0] += 120
        with pytest.raises(stripe.InvalidRequestError) as raised:
            checkout(client, price, {"promotion_code": code.id})
        with pytest.raises(StripeApiError) as at_payment:
            shim.pay_checkout_session(before.id)

    assert before.amount_total == 2610
    assert raised.value.param == "discounts[0][promotion_code]"
    assert "expired" in str(raised.value.user_message)
    assert at_payment.value.param == "discounts[0][promotion_code]"
