"""Integration tests of the Stripe shim in front of localstripe, driven through the official stripe SDK."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import stripe

from idsentry.services.stripe_signature import SignatureError, parse_header, verify
from infra.local.emulators.stripe import TEST_API_KEY, LocalStripe
from infra.local.emulators.stripe_shim import StripeShim, WebhookDelivery
from tests.integration.stripe_support import (
    Delivery,
    LoopbackOnlyClient,
    WebhookReceiver,
    http_call,
)

pytestmark = pytest.mark.integration

# stripe-python 16.1.0 pins this version (stripe/_api_version.py).
PINNED_API_VERSION = "2026-10-28.endive"
WEBHOOK_SECRET = "whsec_shim_test"
WAIT_SECONDS = 10.0
# Nothing listens on port 9 (discard). The shim only redirects browsers there and never calls it.
SUCCESS_URL = "http://127.0.0.1:9/done?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "http://127.0.0.1:9/cancel"
COMPLETED = "checkout.session.completed"


@pytest.fixture
def emulator() -> Iterator[LocalStripe]:
    with LocalStripe() as local_stripe:
        yield local_stripe


@pytest.fixture
def shim(emulator: LocalStripe) -> Iterator[StripeShim]:
    # Short retries keep the retry tests quick, and the seed fixes the shuffled order.
    with StripeShim(emulator.base_url, retry_delays=(0.05, 0.1), rng=random.Random(7)) as server:
        yield server


@pytest.fixture
def client(shim: StripeShim) -> stripe.StripeClient:
    return stripe.StripeClient(
        TEST_API_KEY,
        base_addresses={"api": shim.base_url},
        http_client=LoopbackOnlyClient(),
        max_network_retries=0,
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    webhook_receiver = WebhookReceiver()
    yield webhook_receiver
    webhook_receiver.close()


def create_price(
    client: stripe.StripeClient,
    *,
    recurring: bool = True,
    lookup_key: str | None = None,
    amount: int = 1800,
) -> stripe.Price:
    params: dict[str, Any] = {
        "currency": "cny",
        "unit_amount": amount,
        "product_data": {"name": "IDSentry monthly" if recurring else "IDSentry report"},
    }
    if recurring:
        params["recurring"] = {"interval": "month"}
    if lookup_key is not None:
        params["lookup_key"] = lookup_key
    return client.v1.prices.create(params=params)  # type: ignore[arg-type]


def session_params(
    price_id: str, customer_id: str | None, mode: str, locale: str = "zh"
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": mode,
        "client_reference_id": "sbr_001",
        "line_items": [{"price": price_id, "quantity": 1}],
        "payment_method_types": ["card"],
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "locale": locale,
        "metadata": {"subscriber_id": "sbr_001", "plan": "monthly"},
        "allow_promotion_codes": True,
    }
    if customer_id is not None:
        params["customer"] = customer_id
    if mode == "subscription":
        params["subscription_data"] = {"metadata": {"subscriber_id": "sbr_001", "plan": "monthly"}}
    return params


def create_session(
    client: stripe.StripeClient,
    price_id: str,
    customer_id: str | None,
    mode: str = "subscription",
    locale: str = "zh",
) -> stripe.checkout.Session:
    params = session_params(price_id, customer_id, mode, locale)
    return client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]


def pay(shim: StripeShim, session_id: str) -> dict[str, Any]:
    """Complete a session through the control call and return its JSON."""
    result = http_call(
        f"{shim.base_url}/checkout/{session_id}/pay",
        "POST",
        headers={"Accept": "application/json"},
    )
    assert result.status == 200, result.text
    document: dict[str, Any] = result.json()
    return document


def subscribe(
    client: stripe.StripeClient, shim: StripeShim
) -> tuple[stripe.Price, stripe.Customer, dict[str, Any]]:
    """Buy a monthly price through a subscription-mode Checkout Session."""
    price = create_price(client)
    customer = client.v1.customers.create(params={"metadata": {"subscriber_id": "sbr_001"}})
    session = create_session(client, price.id, customer.id)
    return price, customer, pay(shim, session.id)


def verified_event(delivery: Delivery, secret: str = WEBHOOK_SECRET) -> dict[str, Any]:
    verify(delivery.body, delivery.signature, [secret], now=int(time.time()))
    return delivery.event()


def test_price_recurring_create_retrieve(client: stripe.StripeClient) -> None:
    created = create_price(client, lookup_key="idsentry_monthly_cny")

    fetched = client.v1.prices.retrieve(created.id)

    assert fetched.id.startswith("price_")
    assert fetched.object == "price"
    assert fetched.type == "recurring"
    assert fetched.active is True
    assert fetched.currency == "cny"
    assert fetched.unit_amount == 1800
    assert fetched.lookup_key == "idsentry_monthly_cny"
    assert fetched.livemode is False
    assert fetched.metadata.to_dict() == {}
    assert fetched.recurring is not None
    assert fetched.recurring.interval == "month"
    assert fetched.recurring.interval_count == 1
    assert isinstance(fetched.product, str)
    assert client.v1.products.retrieve(fetched.product).name == "IDSentry monthly"
    # The recurring price is a localstripe Plan with the same id.
    assert client.v1.plans.retrieve(created.id).amount == 1800


def test_price_one_time_stays_in_shim(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "IDSentry report"})

    created = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 990, "product": product.id}
    )

    fetched = client.v1.prices.retrieve(created.id)
    assert fetched.type == "one_time"
    assert fetched.recurring is None
    assert fetched.product == product.id
    assert fetched.unit_amount == 990
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.plans.retrieve(created.id)


def test_price_from_localstripe_plan(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "IDSentry yearly"})
    plan = client.v1.plans.create(
        params={"product": product.id, "amount": 18000, "currency": "cny", "interval": "year"}
    )

    price = client.v1.prices.retrieve(plan.id)

    assert price.id == plan.id
    assert price.type == "recurring"
    assert price.unit_amount == 18000
    assert price.recurring is not None
    assert price.recurring.interval == "year"


def test_price_list_lookup_keys(client: stripe.StripeClient, shim: StripeShim) -> None:
    monthly = create_price(client, lookup_key="monthly")
    yearly = create_price(client, lookup_key="yearly", amount=18000)
    report = create_price(client, recurring=False, lookup_key="report", amount=990)

    listed = client.v1.prices.list(params={"lookup_keys": ["monthly", "report"]})
    active = client.v1.prices.list(params={"lookup_keys": ["yearly"], "active": True, "limit": 1})
    everything = client.v1.prices.list()

    assert sorted(price.id for price in listed.data) == sorted([monthly.id, report.id])
    assert [price.id for price in active.data] == [yearly.id]
    # Newest first, as Stripe lists.
    assert [price.id for price in everything.data] == [report.id, yearly.id, monthly.id]

    # The `lookup_keys[]` form works as well as the SDK's `lookup_keys[0]`.
    query = urlencode([("lookup_keys[]", "yearly"), ("lookup_keys[]", "monthly")])
    raw = http_call(
        f"{shim.base_url}/v1/prices?{query}",
        headers={"Authorization": f"Bearer {TEST_API_KEY}"},
    )
    assert raw.status == 200
    assert sorted(price["id"] for price in raw.json()["data"]) == sorted([monthly.id, yearly.id])


def test_price_list_paging(client: stripe.StripeClient) -> None:
    prices = [create_price(client, amount=100 * n) for n in range(1, 4)]

    first = client.v1.prices.list(params={"limit": 2})
    second = client.v1.prices.list(params={"limit": 2, "starting_after": first.data[-1].id})

    assert [price.id for price in first.data] == [prices[2].id, prices[1].id]
    assert first.has_more is True
    assert [price.id for price in second.data] == [prices[0].id]
    assert second.has_more is False


def test_price_lookup_key_conflict(client: stripe.StripeClient) -> None:
    first = create_price(client, lookup_key="monthly")

    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_price(client, lookup_key="monthly")
    moved = client.v1.prices.create(
        params={
            "currency": "cny",
            "unit_amount": 2800,
            "product_data": {"name": "IDSentry monthly"},
            "recurring": {"interval": "month"},
            "lookup_key": "monthly",
            "transfer_lookup_key": True,
        }
    )

    assert raised.value.param == "lookup_key"
    assert client.v1.prices.retrieve(first.id).lookup_key is None
    listed = client.v1.prices.list(params={"lookup_keys": ["monthly"]})
    assert [price.id for price in listed.data] == [moved.id]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"unit_amount": 100, "product_data": {"name": "x"}}, "currency"),
        ({"currency": "cny", "product_data": {"name": "x"}}, "unit_amount"),
        ({"currency": "cny", "unit_amount": -1, "product_data": {"name": "x"}}, "unit_amount"),
        ({"currency": "zzz", "unit_amount": 100, "product_data": {"name": "x"}}, "currency"),
        ({"currency": "cny", "unit_amount": 100}, "product"),
        ({"currency": "cny", "unit_amount": 100, "product": "prod_missing"}, "product"),
        (
            {"currency": "cny", "unit_amount": 100, "product_data": {"name": ""}},
            "product_data[name]",
        ),
        (
            {
                "currency": "cny",
                "unit_amount": 100,
                "product_data": {"name": "x"},
                "recurring": {"interval": "fortnight"},
            },
            "recurring[interval]",
        ),
        (
            {"currency": "cny", "unit_amount": 100, "product_data": {"name": "x"}, "colour": "red"},
            "colour",
        ),
    ],
)
def test_price_create_rejects_input(
    client: stripe.StripeClient, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.prices.create(params=params)  # type: ignore[arg-type]

    assert raised.value.param == param
    assert client.v1.prices.list().data == []


def test_price_unknown_id(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.prices.retrieve("price_missing")

    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"


@pytest.mark.parametrize("mode", ["subscription", "payment"])
def test_checkout_idempotency_key(client: stripe.StripeClient, mode: str) -> None:
    price = create_price(client, recurring=mode == "subscription")
    customer = client.v1.customers.create()
    params = session_params(price.id, customer.id, mode)

    first = client.v1.checkout.sessions.create(
        params=params,  # type: ignore[arg-type]
        options={"idempotency_key": f"checkout-{mode}"},
    )
    again = client.v1.checkout.sessions.create(
        params=params,  # type: ignore[arg-type]
        options={"idempotency_key": f"checkout-{mode}"},
    )
    other = client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]

    assert again.id == first.id
    assert again.url == first.url
    assert other.id != first.id
    changed = {**params, "client_reference_id": "sbr_002"}
    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(
            params=changed,  # type: ignore[arg-type]
            options={"idempotency_key": f"checkout-{mode}"},
        )


@pytest.mark.parametrize("mode", ["subscription", "payment"])
def test_checkout_session_shape(client: stripe.StripeClient, shim: StripeShim, mode: str) -> None:
    price = create_price(client, recurring=mode == "subscription")
    customer = client.v1.customers.create()

    created = create_session(client, price.id, customer.id, mode)
    fetched = client.v1.checkout.sessions.retrieve(created.id)

    assert fetched.id.startswith("cs_test_")
    assert fetched.object == "checkout.session"
    assert fetched.status == "open"
    assert fetched.payment_status == "unpaid"
    assert fetched.url == f"{shim.base_url}/checkout/{created.id}"
    assert fetched.mode == mode
    assert fetched.customer == customer.id
    assert fetched.client_reference_id == "sbr_001"
    assert fetched.subscription is None
    assert fetched.payment_intent is None
    assert fetched.amount_total == 1800
    assert fetched.currency == "cny"
    assert fetched.metadata is not None
    assert fetched.metadata.to_dict() == {"subscriber_id": "sbr_001", "plan": "monthly"}
    assert fetched.livemode is False
    assert fetched.locale == "zh"
    assert fetched.payment_method_types == ["card"]
    assert fetched.allow_promotion_codes is True
    assert fetched.expires_at > fetched.created


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"mode": "setup"}, "mode"),
        ({"locale": "zh-CN"}, "locale"),
        ({"customer": "cus_missing"}, "customer"),
        ({"line_items": []}, "line_items"),
        ({"line_items": [{"price": "price_missing"}]}, "line_items[0][price]"),
        ({"line_items": [{"price": "PRICE", "quantity": 0}]}, "line_items[0][quantity]"),
        ({"success_url": "javascript:alert(1)"}, "success_url"),
        ({"discounts": [{"coupon": "x"}]}, "discounts"),
    ],
)
def test_checkout_rejects_input(
    client: stripe.StripeClient, change: dict[str, Any], param: str
) -> None:
    price = create_price(client)
    params = {**session_params(price.id, None, "subscription"), **change}
    if change.get("line_items"):
        params["line_items"] = [
            {**item, "price": price.id if item["price"] == "PRICE" else item["price"]}
            for item in change["line_items"]
        ]

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]

    assert raised.value.param == param


def test_checkout_mode_price_mismatch(client: stripe.StripeClient) -> None:
    monthly = create_price(client)
    report = create_price(client, recurring=False)

    with pytest.raises(stripe.InvalidRequestError) as subscription_error:
        create_session(client, report.id, None, "subscription")
    with pytest.raises(stripe.InvalidRequestError) as payment_error:
        create_session(client, monthly.id, None, "payment")
    payment_params = session_params(report.id, None, "payment")
    payment_params["subscription_data"] = {"metadata": {"plan": "report"}}
    with pytest.raises(stripe.InvalidRequestError) as data_error:
        client.v1.checkout.sessions.create(params=payment_params)  # type: ignore[arg-type]

    assert subscription_error.value.param == "line_items[0][price]"
    assert payment_error.value.param == "line_items[0][price]"
    assert data_error.value.param == "subscription_data"


@pytest.mark.parametrize(
    ("locale", "accept_language", "lang", "button", "amount"),
    [
        ("zh", "", "zh-CN", "使用测试卡付款", "¥18.00 每月"),
        ("en", "", "en", "Pay with test card", "CN¥18.00 per month"),
        ("auto", "en-US,en;q=0.9", "en", "Pay with test card", "CN¥18.00 per month"),
        ("auto", "zh-CN,zh;q=0.9", "zh-CN", "使用测试卡付款", "¥18.00 每月"),
    ],
)
def test_checkout_page_locale(
    client: stripe.StripeClient,
    locale: str,
    accept_language: str,
    lang: str,
    button: str,
    amount: str,
) -> None:
    price = create_price(client)
    session = create_session(client, price.id, None, locale=locale)
    assert session.url is not None

    page = http_call(session.url, headers={"Accept-Language": accept_language})

    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert f'<html lang="{lang}">' in page.text
    assert button in page.text
    assert amount in page.text
    assert "IDSentry monthly" in page.text
    assert f'action="/checkout/{session.id}/pay"' in page.text
    assert f'href="{CANCEL_URL}"' in page.text


def test_checkout_page_unknown_session(shim: StripeShim) -> None:
    page = http_call(f"{shim.base_url}/checkout/cs_test_missing")

    assert page.status == 404
    assert '<html lang="zh-CN">' in page.text


def test_checkout_subscription_completes(client: stripe.StripeClient, shim: StripeShim) -> None:
    price, customer, result = subscribe(client, shim)
    session_id = result["checkout_session"]["id"]

    completed = client.v1.checkout.sessions.retrieve(session_id)

    assert completed.status == "complete"
    assert completed.payment_status == "paid"
    assert completed.customer == customer.id
    assert isinstance(completed.subscription, str)
    assert completed.subscription.startswith("sub_")
    assert result["checkout_session"]["subscription"] == completed.subscription

    subscription = client.v1.subscriptions.retrieve(completed.subscription)
    assert subscription.status == "active"
    assert subscription.customer == customer.id
    assert subscription.metadata.to_dict() == {"subscriber_id": "sbr_001", "plan": "monthly"}
    items = subscription["items"].data
    assert len(items) == 1
    assert items[0].current_period_end > items[0].current_period_start
    assert items[0].price.id == price.id
    assert items[0].price.object == "price"
    assert items[0].price.recurring is not None
    assert items[0].price.recurring.interval == "month"

    invoice = client.v1.invoices.retrieve(str(completed.invoice))
    assert invoice.status == "paid"
    assert invoice.amount_paid == 1800


def test_checkout_payment_completes(client: stripe.StripeClient, shim: StripeShim) -> None:
    price = create_price(client, recurring=False, amount=990)
    customer = client.v1.customers.create()
    session = create_session(client, price.id, customer.id, "payment")

    result = pay(shim, session.id)

    completed = client.v1.checkout.sessions.retrieve(session.id)
    assert completed.status == "complete"
    assert completed.payment_status == "paid"
    assert completed.subscription is None
    assert isinstance(completed.payment_intent, str)
    assert result["checkout_session"]["payment_intent"] == completed.payment_intent
    intent = client.v1.payment_intents.retrieve(completed.payment_intent)
    assert intent.status == "succeeded"
    assert intent.amount == 990
    assert intent.currency == "cny"
    assert intent.customer == customer.id


def test_checkout_payment_intent_data(client: stripe.StripeClient, shim: StripeShim) -> None:
    price = create_price(client, recurring=False, amount=2900)
    params = session_params(price.id, None, "payment")
    params["payment_intent_data"] = {"metadata": {"subscriber_id": "sbr_001", "plan": "report"}}
    params["payment_method_types"] = ["card", "wechat_pay"]
    params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
    session = client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    subscription_params = session_params(create_price(client).id, None, "subscription")
    subscription_params["payment_intent_data"] = {"metadata": {"plan": "monthly"}}

    result = pay(shim, session.id)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=subscription_params)  # type: ignore[arg-type]

    intent = client.v1.payment_intents.retrieve(result["checkout_session"]["payment_intent"])
    assert intent.metadata.to_dict() == {"subscriber_id": "sbr_001", "plan": "report"}
    assert session.payment_method_options is not None
    assert session.payment_method_options.to_dict() == {"wechat_pay": {"client": "web"}}
    assert raised.value.param == "payment_intent_data"


def test_checkout_without_customer_creates_one(
    client: stripe.StripeClient, shim: StripeShim
) -> None:
    price = create_price(client)
    session = create_session(client, price.id, None)

    pay(shim, session.id)

    completed = client.v1.checkout.sessions.retrieve(session.id)
    assert isinstance(completed.customer, str)
    assert client.v1.customers.retrieve(completed.customer).id == completed.customer
    assert client.v1.subscriptions.retrieve(str(completed.subscription)).status == "active"


def test_checkout_page_form_redirects(client: stripe.StripeClient, shim: StripeShim) -> None:
    price = create_price(client)
    session = create_session(client, price.id, None)

    paid = http_call(
        f"{shim.base_url}/checkout/{session.id}/pay",
        "POST",
        body=b"",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    again = http_call(f"{shim.base_url}/checkout/{session.id}/pay", "POST")
    page = http_call(f"{shim.base_url}/checkout/{session.id}")

    assert paid.status == 303
    assert paid.headers["Location"] == f"http://127.0.0.1:9/done?session={session.id}"
    assert again.status == 303
    assert again.headers["Location"] == f"/checkout/{session.id}"
    assert "此订单已付款" in page.text
    assert 'action="/checkout/' not in page.text


def test_checkout_pay_twice_rejected(client: stripe.StripeClient, shim: StripeShim) -> None:
    _, customer, result = subscribe(client, shim)

    again = http_call(
        f"{shim.base_url}/checkout/{result['checkout_session']['id']}/pay",
        "POST",
        headers={"Accept": "application/json"},
    )

    assert again.status == 409
    assert again.json()["error"]["type"] == "invalid_request_error"
    subscriptions = client.v1.subscriptions.list(params={"customer": customer.id})
    assert len(subscriptions.data) == 1


def test_checkout_completed_event(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    shim.configure_webhook(receiver.url, WEBHOOK_SECRET, [COMPLETED])

    _, customer, result = subscribe(client, shim)
    shim.flush()

    event = client.v1.events.retrieve(result["event_id"])
    assert event.id.startswith("evt_")
    assert event.type == COMPLETED
    assert event.api_version == PINNED_API_VERSION
    assert event.livemode is False
    assert event.pending_webhooks == 0
    assert event.request is not None
    assert event.data.object["id"] == result["checkout_session"]["id"]

    delivered = receiver.wait_for(1)
    assert len(delivered) == 1
    body = verified_event(delivered[0])
    assert body["id"] == event.id
    assert body["api_version"] == PINNED_API_VERSION
    session = body["data"]["object"]
    assert session["client_reference_id"] == "sbr_001"
    assert session["customer"] == customer.id
    assert session["subscription"] == result["checkout_session"]["subscription"]
    assert session["mode"] == "subscription"
    assert session["metadata"] == {"subscriber_id": "sbr_001", "plan": "monthly"}
    assert shim.deliveries() == [WebhookDelivery(event.id, COMPLETED, 1, 200)]
    with pytest.raises(SignatureError):
        verified_event(delivered[0], "whsec_other")


def test_delivery_signed_at_send_time(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    shim.configure_webhook(receiver.url, WEBHOOK_SECRET, [COMPLETED])
    shim.set_delivery(delay_seconds=2.0)

    _, _, result = subscribe(client, shim)
    shim.flush()

    delivery = receiver.wait_for(1)[0]
    event = verified_event(delivery)
    assert event["id"] == result["event_id"]
    # The delivery waited 2 s, so a send-time signature is at least 2 s after creation.
    assert parse_header(delivery.signature).timestamp >= event["created"] + 2


def test_delivery_duplicate(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    shim.configure_webhook(receiver.url, WEBHOOK_SECRET, [COMPLETED])
    shim.set_delivery(duplicate=True)

    _, _, result = subscribe(client, shim)
    shim.flush()

    deliveries = receiver.wait_for(2)
    assert len(deliveries) == 2
    assert [verified_event(delivery)["id"] for delivery in deliveries] == [result["event_id"]] * 2
    assert shim.deliveries() == [WebhookDelivery(result["event_id"], COMPLETED, 1, 200)] * 2


def test_delivery_shuffle(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    shim.configure_webhook(receiver.url, WEBHOOK_SECRET, [COMPLETED])
    shim.set_delivery(shuffle=True)
    price = create_price(client, recurring=False)

    created = [pay(shim, create_session(client, price.id, None, "payment").id) for _ in range(6)]
    before_flush = list(receiver.deliveries)
    shim.flush()

    assert before_flush == []
    received = [verified_event(delivery)["id"] for delivery in receiver.wait_for(6)]
    sent = [result["event_id"] for result in created]
    assert sorted(received) == sorted(sent)
    assert received != sent


def test_delivery_retries_failure(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    shim.configure_webhook(receiver.url, WEBHOOK_SECRET, [COMPLETED])
    receiver.failures = 2

    _, _, result = subscribe(client, shim)
    shim.flush()

    event_id = result["event_id"]
    assert shim.deliveries() == [
        WebhookDelivery(event_id, COMPLETED, 1, 500),
        WebhookDelivery(event_id, COMPLETED, 2, 500),
        WebhookDelivery(event_id, COMPLETED, 3, 200),
    ]
    assert verified_event(receiver.wait_for(1)[0])["id"] == event_id
    assert client.v1.events.retrieve(event_id).pending_webhooks == 0


def test_delivery_gives_up(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    shim.configure_webhook(receiver.url, WEBHOOK_SECRET, [COMPLETED])
    receiver.failures = 10

    _, _, result = subscribe(client, shim)
    shim.flush()

    event_id = result["event_id"]
    assert [delivery.attempt for delivery in shim.deliveries()] == [1, 2, 3]
    assert {delivery.status for delivery in shim.deliveries()} == {500}
    assert receiver.deliveries == []
    assert client.v1.events.retrieve(event_id).pending_webhooks == 1


def test_delivery_unreachable_endpoint(client: stripe.StripeClient, shim: StripeShim) -> None:
    # Nothing listens on port 9, so every attempt fails without an HTTP status.
    shim.configure_webhook("http://127.0.0.1:9/v1/webhooks/stripe", WEBHOOK_SECRET, [COMPLETED])

    _, _, result = subscribe(client, shim)
    shim.flush()

    assert shim.deliveries() == [
        WebhookDelivery(result["event_id"], COMPLETED, attempt, None) for attempt in (1, 2, 3)
    ]


def test_localstripe_event_forwarded(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    shim.configure_webhook(receiver.url, WEBHOOK_SECRET, ["customer.subscription.created"])

    price, _, result = subscribe(client, shim)
    shim.flush()

    delivered = receiver.wait_for(1)
    assert len(delivered) == 1
    event = verified_event(delivered[0])
    assert event["type"] == "customer.subscription.created"
    assert event["api_version"] == PINNED_API_VERSION
    assert event["pending_webhooks"] == 1
    subscription = event["data"]["object"]
    assert subscription["id"] == result["checkout_session"]["subscription"]
    item = subscription["items"]["data"][0]
    assert item["current_period_end"] == subscription["current_period_end"]
    assert item["current_period_start"] == subscription["current_period_start"]
    assert item["price"]["id"] == price.id

    fetched = client.v1.events.retrieve(event["id"])
    assert fetched.api_version == PINNED_API_VERSION
    assert fetched.data.object["items"]["data"][0]["price"]["id"] == price.id


def test_portal_cancel_through_page(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    _, customer, result = subscribe(client, shim)
    subscription_id = result["checkout_session"]["subscription"]
    shim.configure_webhook(receiver.url, WEBHOOK_SECRET, ["customer.subscription.deleted"])

    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": CANCEL_URL, "locale": "en"}
    )
    page = http_call(portal.url)
    action = re.search(r'<form method="post" action="([^"]+)">', page.text)
    assert action is not None
    canceled = http_call(
        shim.base_url + action.group(1),
        "POST",
        body=b"",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    shim.flush()

    assert portal.id.startswith("bps_")
    assert portal.object == "billing_portal.session"
    assert portal.customer == customer.id
    assert portal.return_url == CANCEL_URL
    assert portal.url == f"{shim.base_url}/portal/{portal.id}"
    assert portal.livemode is False
    assert page.status == 200
    assert subscription_id in page.text
    assert "Cancel subscription" in page.text
    assert action.group(1) == f"/portal/{portal.id}/subscriptions/{subscription_id}/cancel"
    assert canceled.status == 303
    assert canceled.headers["Location"] == f"/portal/{portal.id}"

    event = verified_event(receiver.wait_for(1)[0])
    assert event["type"] == "customer.subscription.deleted"
    assert event["data"]["object"]["id"] == subscription_id
    assert event["data"]["object"]["status"] == "canceled"
    assert client.v1.subscriptions.retrieve(subscription_id).status == "canceled"
    assert subscription_id not in http_call(portal.url).text


def test_portal_cancel_other_customer(client: stripe.StripeClient, shim: StripeShim) -> None:
    _, _, result = subscribe(client, shim)
    stranger = client.v1.customers.create()
    portal = client.v1.billing_portal.sessions.create(params={"customer": stranger.id})
    subscription_id = result["checkout_session"]["subscription"]

    rejected = http_call(
        f"{shim.base_url}/portal/{portal.id}/subscriptions/{subscription_id}/cancel",
        "POST",
        headers={"Accept": "application/json"},
    )

    assert rejected.status == 404
    assert client.v1.subscriptions.retrieve(subscription_id).status == "active"


def test_portal_rejects_unknown_customer(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.billing_portal.sessions.create(params={"customer": "cus_missing"})

    assert raised.value.param == "customer"


def test_unknown_routes_forwarded(client: stripe.StripeClient) -> None:
    created = client.v1.customers.create(params={"metadata": {"subscriber_id": "sbr_003"}})

    fetched = client.v1.customers.retrieve(created.id)
    listed = client.v1.customers.list()

    assert fetched.id == created.id
    assert fetched.metadata.to_dict() == {"subscriber_id": "sbr_003"}
    assert [customer.id for customer in listed.data] == [created.id]


def test_forwarded_idempotency_key(client: stripe.StripeClient) -> None:
    options: Any = {"idempotency_key": "customer-signup-1"}
    first = client.v1.customers.create(params={"metadata": {"n": "1"}}, options=options)

    again = client.v1.customers.create(params={"metadata": {"n": "1"}}, options=options)

    assert again.id == first.id
    assert len(client.v1.customers.list().data) == 1


def test_localstripe_event_version_rewritten(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    created = client.v1.events.list(params={"type": "customer.created"}).data[0]

    fetched = client.v1.events.retrieve(created.id)

    assert created.api_version == PINNED_API_VERSION
    assert fetched.api_version == PINNED_API_VERSION
    assert fetched.data.object["id"] == customer.id
    assert fetched.request is not None


def test_unimplemented_shim_route(client: stripe.StripeClient) -> None:
    price = create_price(client)
    session = create_session(client, price.id, None)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.expire(session.id)

    assert raised.value.http_status == 404
    assert "does not implement" in str(raised.value.user_message)


def test_api_key_required(shim: StripeShim) -> None:
    missing = http_call(f"{shim.base_url}/v1/prices")
    publishable = http_call(
        f"{shim.base_url}/v1/prices", headers={"Authorization": "Bearer pk_test_x"}
    )

    assert missing.status == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert publishable.status == 401


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.10/v1/webhooks/stripe",
        "http://localhost:8080/v1/webhooks/stripe",
        "https://127.0.0.1:8443/v1/webhooks/stripe",
        "not a url",
    ],
)
def test_configure_webhook_rejects_url(shim: StripeShim, url: str) -> None:
    with pytest.raises(ValueError, match="url"):
        shim.configure_webhook(url, WEBHOOK_SECRET)


def test_configure_webhook_rejects_arguments(shim: StripeShim) -> None:
    with pytest.raises(ValueError, match="secret"):
        shim.configure_webhook("http://127.0.0.1:9/stripe", "")
    with pytest.raises(ValueError, match="events"):
        shim.configure_webhook("http://127.0.0.1:9/stripe", WEBHOOK_SECRET, COMPLETED)
    with pytest.raises(ValueError, match="delay_seconds"):
        shim.set_delivery(delay_seconds=-1.0)


def test_shim_rejects_remote_localstripe() -> None:
    with pytest.raises(ValueError, match="localstripe_url"):
        StripeShim("http://192.0.2.10:8420")
