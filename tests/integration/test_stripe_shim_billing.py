"""Integration tests of the Stripe shim's renewals, balances, refunds, disputes and card fingerprints."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from infra.local.emulators.stripe import TEST_API_KEY, LocalStripe
from infra.local.emulators.stripe_shim import StripeApiError, StripeShim
from tests.integration.stripe_support import (
    LoopbackOnlyClient,
    WebhookReceiver,
    http_call,
    verified_events,
)

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "whsec_shim_billing_test"
SUCCESS_URL = "http://127.0.0.1:9/done"
FINGERPRINT = re.compile(r"[A-Z][A-Za-z0-9]{15}")


@pytest.fixture
def shim() -> Iterator[StripeShim]:
    with (
        LocalStripe() as local_stripe,
        StripeShim(local_stripe.base_url, retry_delays=(0.05,), rng=random.Random(3)) as server,
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


@pytest.fixture
def receiver(shim: StripeShim) -> Iterator[WebhookReceiver]:
    webhook_receiver = WebhookReceiver()
    shim.configure_webhook(webhook_receiver.url, WEBHOOK_SECRET)
    yield webhook_receiver
    webhook_receiver.close()


def subscribe(
    client: stripe.StripeClient,
    shim: StripeShim,
    *,
    card: str = "pm_card_visa",
    currency: str = "cny",
    amount: int = 1800,
) -> dict[str, Any]:
    """Buy a monthly price through Checkout and return the subscription."""
    price = client.v1.prices.create(
        params={
            "currency": currency,
            "unit_amount": amount,
            "recurring": {"interval": "month"},
            "product_data": {"name": "IDSentry monthly"},
        }
    )
    customer = client.v1.customers.create(params={"metadata": {"subscriber_id": "sbr_001"}})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id}],
            "success_url": SUCCESS_URL,
        }
    )
    completed, _ = shim.pay_checkout_session(session.id, card)
    return client.v1.subscriptions.retrieve(completed["subscription"]).to_dict()


def first_charge(client: stripe.StripeClient, subscription: dict[str, Any]) -> dict[str, Any]:
    invoice = client.v1.invoices.retrieve(subscription["latest_invoice"]).to_dict()
    return client.v1.charges.retrieve(invoice["charge"]["id"]).to_dict()


def events_after(shim: StripeShim, receiver: WebhookReceiver, start: int) -> list[dict[str, Any]]:
    """Flush the shim and return the verified events delivered after the first `start`."""
    shim.flush()
    return verified_events(receiver.deliveries[start:], WEBHOOK_SECRET)


def settled(shim: StripeShim, receiver: WebhookReceiver) -> int:
    """Flush the shim and return how many events the receiver has received so far."""
    shim.flush()
    return len(receiver.deliveries)


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return sorted(event["type"] for event in events)


def control(shim: StripeShim, path: str, form: str = "") -> Any:
    return http_call(
        shim.base_url + path,
        "POST",
        body=form.encode("utf-8"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


# -- renewals ---------------------------------------------------------------------------------


def test_renewal_paid(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    subscription = subscribe(client, shim)
    first_item = subscription["items"]["data"][0]
    start = settled(shim, receiver)

    invoice = shim.renew_subscription(subscription["id"])
    events = events_after(shim, receiver, start)

    assert invoice["id"] != subscription["latest_invoice"]
    assert invoice["billing_reason"] == "subscription_cycle"
    assert invoice["status"] == "paid"
    assert invoice["amount_paid"] == 1800
    assert invoice["attempt_count"] == 1
    assert invoice["period_start"] == first_item["current_period_end"]
    renewed = client.v1.subscriptions.retrieve(subscription["id"]).to_dict()
    item = renewed["items"]["data"][0]
    assert renewed["status"] == "active"
    assert renewed["latest_invoice"] == invoice["id"]
    assert item["current_period_start"] == first_item["current_period_end"]
    assert item["current_period_end"] > item["current_period_start"]
    assert client.v1.invoices.retrieve(invoice["id"]).billing_reason == "subscription_cycle"

    assert types_of(events) == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
    ]
    by_type = {event["type"]: event for event in events}
    assert by_type["invoice.paid"]["data"]["object"]["id"] == invoice["id"]
    assert by_type["invoice.paid"]["data"]["object"]["billing_reason"] == "subscription_cycle"
    updated = by_type["customer.subscription.updated"]["data"]
    assert updated["object"]["status"] == "active"
    assert (
        updated["object"]["items"]["data"][0]["current_period_start"]
        == (first_item["current_period_end"])
    )
    assert updated["previous_attributes"] == {"latest_invoice": subscription["latest_invoice"]}


def test_renewal_fails_then_paid(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    subscription = subscribe(client, shim)
    shim.set_default_payment_method(subscription["customer"], "pm_card_chargeCustomerFail")
    start = settled(shim, receiver)

    failed = shim.renew_subscription(subscription["id"])
    failure_events = events_after(shim, receiver, start)
    past_due = client.v1.subscriptions.retrieve(subscription["id"])
    shim.set_default_payment_method(subscription["customer"], "pm_card_visa")
    start = settled(shim, receiver)
    paid = client.v1.invoices.pay(failed["id"])
    paid_events = events_after(shim, receiver, start)

    assert failed["status"] == "open"
    assert failed["attempt_count"] == 1
    assert failed["amount_paid"] == 0
    assert past_due.status == "past_due"
    assert types_of(failure_events) == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.payment_failed",
    ]
    by_type = {event["type"]: event for event in failure_events}
    assert by_type["invoice.payment_failed"]["data"]["object"]["id"] == failed["id"]
    assert by_type["invoice.payment_failed"]["data"]["object"]["attempt_count"] == 1
    updated = by_type["customer.subscription.updated"]["data"]
    assert updated["object"]["status"] == "past_due"
    assert updated["previous_attributes"]["status"] == "active"

    assert paid.status == "paid"
    assert paid.amount_paid == 1800
    assert paid.attempt_count == 2
    assert client.v1.subscriptions.retrieve(subscription["id"]).status == "active"
    assert types_of(paid_events) == [
        "customer.subscription.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
    ]
    by_type = {event["type"]: event for event in paid_events}
    assert by_type["invoice.paid"]["data"]["object"]["id"] == failed["id"]
    updated = by_type["customer.subscription.updated"]["data"]
    assert updated["object"]["status"] == "active"
    assert updated["previous_attributes"] == {"status": "past_due"}


def test_invoice_pay_declined(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    subscription = subscribe(client, shim)
    shim.set_default_payment_method(subscription["customer"], "pm_card_chargeCustomerFail")
    failed = shim.renew_subscription(subscription["id"])
    start = settled(shim, receiver)

    with pytest.raises(stripe.CardError) as raised:
        client.v1.invoices.pay(failed["id"])
    events = events_after(shim, receiver, start)

    assert raised.value.http_status == 402
    assert raised.value.code == "card_declined"
    invoice = client.v1.invoices.retrieve(failed["id"])
    assert invoice.status == "open"
    assert invoice.attempt_count == 2
    assert types_of(events) == ["invoice.payment_failed"]
    assert client.v1.subscriptions.retrieve(subscription["id"]).status == "past_due"


def test_invoice_pay_twice_rejected(client: stripe.StripeClient, shim: StripeShim) -> None:
    subscription = subscribe(client, shim)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.pay(subscription["latest_invoice"])
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.invoices.pay("in_missing")

    assert raised.value.http_status == 400
    assert "already paid" in str(raised.value.user_message)
    assert unknown.value.http_status == 404
    assert unknown.value.code == "resource_missing"


def test_renewal_rejects_canceled(client: stripe.StripeClient, shim: StripeShim) -> None:
    subscription = subscribe(client, shim)
    client.v1.subscriptions.cancel(subscription["id"])

    with pytest.raises(StripeApiError) as canceled:
        shim.renew_subscription(subscription["id"])
    with pytest.raises(StripeApiError) as unknown:
        shim.renew_subscription("sub_missing")

    assert canceled.value.status == 400
    assert canceled.value.param == "subscription"
    assert "is canceled" in canceled.value.message
    assert unknown.value.status == 404
    assert unknown.value.code == "resource_missing"
    assert len(client.v1.invoices.list(params={"subscription": subscription["id"]}).data) == 1


def test_renewal_control_route(client: stripe.StripeClient, shim: StripeShim) -> None:
    subscription = subscribe(client, shim)

    renewed = control(shim, f"/_shim/subscriptions/{subscription['id']}/renew")
    unknown = control(shim, "/_shim/subscriptions/sub_missing/renew")
    wrong_method = http_call(f"{shim.base_url}/_shim/subscriptions/{subscription['id']}/renew")

    assert renewed.status == 200
    assert renewed.json()["billing_reason"] == "subscription_cycle"
    assert renewed.json()["status"] == "paid"
    assert unknown.status == 404
    assert unknown.json()["error"]["code"] == "resource_missing"
    assert wrong_method.status == 404


def test_default_payment_method_rejects_input(
    client: stripe.StripeClient, shim: StripeShim
) -> None:
    customer = client.v1.customers.create()

    with pytest.raises(StripeApiError) as unknown_card:
        shim.set_default_payment_method(customer.id, "pm_card_amex_missing")
    with pytest.raises(StripeApiError) as unknown_customer:
        shim.set_default_payment_method("cus_missing", "pm_card_visa")
    declined = control(
        shim,
        f"/_shim/customers/{customer.id}/default_payment_method",
        "payment_method=pm_card_visa_chargeDeclined",
    )
    missing = control(shim, f"/_shim/customers/{customer.id}/default_payment_method")

    assert unknown_card.value.param == "payment_method"
    assert unknown_customer.value.status == 404
    assert declined.status == 402
    assert declined.json()["error"]["code"] == "card_declined"
    assert missing.status == 400
    assert missing.json()["error"]["param"] == "payment_method"
    assert client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method is None


# -- customer balance -------------------------------------------------------------------------


def test_balance_credit_applied_at_renewal(client: stripe.StripeClient, shim: StripeShim) -> None:
    subscription = subscribe(client, shim)
    customer_id = subscription["customer"]

    credit = client.v1.customers.balance_transactions.create(
        customer_id,
        params={
            "amount": -500,
            "currency": "cny",
            "description": "Referral credit",
            "metadata": {"referee_id": "sbr_002"},
        },
    )
    before = client.v1.customers.retrieve(customer_id)
    invoice = shim.renew_subscription(subscription["id"])
    after = client.v1.customers.retrieve(customer_id)
    listed = client.v1.customers.balance_transactions.list(customer_id).data

    assert credit.id.startswith("cbtxn_")
    assert credit.object == "customer_balance_transaction"
    assert credit.type == "adjustment"
    assert credit.amount == -500
    assert credit.ending_balance == -500
    assert credit.metadata.to_dict() == {"referee_id": "sbr_002"}
    assert before.balance == -500
    assert before.currency == "cny"
    assert invoice["status"] == "paid"
    assert invoice["total"] == 1800
    assert invoice["amount_due"] == 1300
    assert invoice["amount_paid"] == 1300
    assert invoice["starting_balance"] == -500
    assert invoice["ending_balance"] == 0
    assert after.balance == 0
    assert [transaction.type for transaction in listed] == ["applied_to_invoice", "adjustment"]
    applied = listed[0]
    assert applied.amount == 500
    assert applied.invoice == invoice["id"]
    assert applied.ending_balance == 0
    charge = client.v1.charges.retrieve(
        client.v1.invoices.retrieve(invoice["id"]).to_dict()["charge"]["id"]
    )
    assert charge.amount == 1300
    # The credit is used up: the next renewal charges the full price.
    assert shim.renew_subscription(subscription["id"])["amount_paid"] == 1800


def test_balance_credit_exceeds_invoice(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    subscription = subscribe(client, shim)
    customer_id = subscription["customer"]
    client.v1.customers.balance_transactions.create(
        customer_id, params={"amount": -2500, "currency": "cny"}
    )
    start = settled(shim, receiver)

    invoice = shim.renew_subscription(subscription["id"])
    events = events_after(shim, receiver, start)

    assert invoice["status"] == "paid"
    assert invoice["amount_due"] == 0
    assert invoice["starting_balance"] == -2500
    assert invoice["ending_balance"] == -700
    assert invoice["payment_intent"] is None
    assert client.v1.customers.retrieve(customer_id).balance == -700
    assert "invoice.paid" in types_of(events)
    assert "payment_intent.succeeded" not in types_of(events)


def test_balance_transaction_retrieve_update(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    debit = client.v1.customers.balance_transactions.create(
        customer.id, params={"amount": 300, "currency": "usd", "metadata": {"a": "1", "b": "2"}}
    )
    credit = client.v1.customers.balance_transactions.create(
        customer.id, params={"amount": -1000, "currency": "usd"}
    )

    fetched = client.v1.customers.balance_transactions.retrieve(customer.id, debit.id)
    updated = client.v1.customers.balance_transactions.update(
        customer.id, debit.id, params={"description": "Setup fee", "metadata": {"a": ""}}
    )
    first_page = client.v1.customers.balance_transactions.list(customer.id, params={"limit": 1})

    assert fetched.id == debit.id
    assert fetched.amount == 300
    assert updated.description == "Setup fee"
    assert updated.metadata.to_dict() == {"b": "2"}
    assert credit.ending_balance == -700
    assert client.v1.customers.retrieve(customer.id).balance == -700
    assert client.v1.customers.retrieve(customer.id).currency == "usd"
    assert [transaction.id for transaction in first_page.data] == [credit.id]
    assert first_page.has_more is True


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"amount": 0, "currency": "cny"}, "amount"),
        ({"currency": "cny"}, "amount"),
        ({"amount": -500}, "currency"),
        ({"amount": -500, "currency": "zzz"}, "currency"),
        ({"amount": -500, "currency": "usd"}, "currency"),
        ({"amount": -500, "currency": "cny", "type": "initial"}, "type"),
    ],
)
def test_balance_transaction_rejects_input(
    client: stripe.StripeClient, shim: StripeShim, params: dict[str, Any], param: str
) -> None:
    # The subscription makes cny the customer's currency.
    subscription = subscribe(client, shim)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.balance_transactions.create(
            subscription["customer"],
            params=params,  # type: ignore[arg-type]
        )

    assert raised.value.http_status == 400
    assert raised.value.param == param
    assert client.v1.customers.retrieve(subscription["customer"]).balance == 0


def test_balance_unknown_ids(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()

    with pytest.raises(stripe.InvalidRequestError) as unknown_customer:
        client.v1.customers.balance_transactions.create(
            "cus_missing", params={"amount": -500, "currency": "cny"}
        )
    with pytest.raises(stripe.InvalidRequestError) as unknown_transaction:
        client.v1.customers.balance_transactions.retrieve(customer.id, "cbtxn_missing")
    with pytest.raises(stripe.InvalidRequestError) as balance_param:
        client.v1.customers.create(params={"balance": -500})

    assert unknown_customer.value.http_status == 404
    assert unknown_transaction.value.http_status == 404
    assert unknown_transaction.value.code == "resource_missing"
    assert balance_param.value.param == "balance"


# -- refunds ----------------------------------------------------------------------------------


def test_refund_sends_charge_refunded(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    subscription = subscribe(client, shim)
    charge = first_charge(client, subscription)
    start = settled(shim, receiver)

    partial = client.v1.refunds.create(
        params={"charge": charge["id"], "amount": 800, "reason": "requested_by_customer"}
    )
    partial_events = events_after(shim, receiver, start)
    start = len(receiver.deliveries)
    rest = client.v1.refunds.create(params={"payment_intent": charge["payment_intent"]})
    rest_events = events_after(shim, receiver, start)

    assert partial.status == "succeeded"
    assert partial.amount == 800
    assert partial.reason == "requested_by_customer"
    assert types_of(partial_events) == ["charge.refunded", "refund.created"]
    refunded = next(e for e in partial_events if e["type"] == "charge.refunded")["data"]["object"]
    assert refunded["id"] == charge["id"]
    assert refunded["amount_refunded"] == 800
    assert refunded["refunded"] is False
    assert [refund["id"] for refund in refunded["refunds"]["data"]] == [partial.id]
    assert refunded["payment_method_details"]["card"]["last4"] == "4242"

    assert rest.amount == 1000
    assert rest.charge == charge["id"]
    refunded = next(e for e in rest_events if e["type"] == "charge.refunded")["data"]["object"]
    assert refunded["amount_refunded"] == 1800
    assert refunded["refunded"] is True
    fetched = client.v1.charges.retrieve(
        charge["id"], params={"expand": ["refunds", "balance_transaction"]}
    )
    assert fetched.refunds is not None
    assert sorted(refund.id for refund in fetched.refunds.data) == sorted([partial.id, rest.id])
    assert fetched.amount_refunded == 1800


@pytest.mark.parametrize(
    ("change", "param", "code"),
    [
        ({"amount": 1801}, "amount", None),
        ({"reason": "changed_mind"}, "reason", None),
        ({"charge": "ch_missing"}, "charge", "resource_missing"),
        ({"payment_intent": "pi_missing", "charge": None}, "payment_intent", "resource_missing"),
        ({"charge": None}, "charge", None),
    ],
)
def test_refund_rejects_input(
    client: stripe.StripeClient,
    shim: StripeShim,
    change: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    charge = first_charge(client, subscribe(client, shim))
    params = {key: value for key, value in {"charge": charge["id"], **change}.items() if value}

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params=params)  # type: ignore[arg-type]

    assert raised.value.param == param
    assert raised.value.code == code
    assert client.v1.charges.retrieve(charge["id"]).amount_refunded == 0


def test_refund_rejects_refunded_and_disputed(
    client: stripe.StripeClient, shim: StripeShim
) -> None:
    refunded = first_charge(client, subscribe(client, shim))
    client.v1.refunds.create(params={"charge": refunded["id"]})
    disputed = first_charge(client, subscribe(client, shim))
    shim.create_dispute(disputed["id"])

    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"charge": refunded["id"]})
    with pytest.raises(stripe.InvalidRequestError) as charged_back:
        client.v1.refunds.create(params={"charge": disputed["id"]})

    assert again.value.code == "charge_already_refunded"
    assert charged_back.value.code == "charge_disputed"
    assert client.v1.charges.retrieve(disputed["id"]).amount_refunded == 0


# -- disputes ---------------------------------------------------------------------------------


def test_dispute_won(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    charge = first_charge(client, subscribe(client, shim))
    start = settled(shim, receiver)

    created = shim.create_dispute(charge["id"], "product_not_received")
    opened_events = events_after(shim, receiver, start)
    start = len(receiver.deliveries)
    closed = shim.close_dispute(created["id"], won=True)
    closed_events = events_after(shim, receiver, start)

    assert created["id"].startswith("dp_")
    assert created["object"] == "dispute"
    assert created["amount"] == 1800
    assert created["currency"] == "cny"
    assert created["charge"] == charge["id"]
    assert created["payment_intent"] == charge["payment_intent"]
    assert created["status"] == "needs_response"
    assert created["reason"] == "product_not_received"
    assert created["livemode"] is False
    assert created["metadata"] == {}
    assert created["is_charge_refundable"] is False
    [withdrawal] = created["balance_transactions"]
    assert withdrawal["id"].startswith("txn_")
    assert withdrawal["amount"] == -1800
    assert withdrawal["fee"] == 1500
    assert withdrawal["net"] == -3300
    assert withdrawal["currency"] == "cny"
    assert withdrawal["type"] == "adjustment"
    assert withdrawal["reporting_category"] == "dispute"
    assert client.v1.charges.retrieve(charge["id"]).disputed is True
    assert types_of(opened_events) == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    assert opened_events[0]["data"]["object"]["id"] == created["id"]

    assert closed["status"] == "won"
    reinstatement = closed["balance_transactions"][1]
    assert reinstatement["amount"] == 1800
    assert reinstatement["fee"] == -1500
    assert reinstatement["net"] == 3300
    assert reinstatement["reporting_category"] == "dispute_reversal"
    assert types_of(closed_events) == ["charge.dispute.closed", "charge.dispute.funds_reinstated"]
    fetched = client.v1.disputes.retrieve(created["id"])
    assert fetched.status == "won"
    assert [movement.id for movement in fetched.balance_transactions] == [
        withdrawal["id"],
        reinstatement["id"],
    ]
    assert client.v1.balance_transactions.retrieve(withdrawal["id"]).amount == -1800


def test_dispute_lost(
    client: stripe.StripeClient, shim: StripeShim, receiver: WebhookReceiver
) -> None:
    lost = shim.create_dispute(first_charge(client, subscribe(client, shim))["id"])
    accepted = shim.create_dispute(first_charge(client, subscribe(client, shim))["id"])
    start = settled(shim, receiver)

    closed = shim.close_dispute(lost["id"], won=False)
    via_api = client.v1.disputes.close(accepted["id"])
    events = events_after(shim, receiver, start)

    assert closed["status"] == "lost"
    assert len(closed["balance_transactions"]) == 1
    assert via_api.status == "lost"
    assert types_of(events) == ["charge.dispute.closed", "charge.dispute.closed"]


def test_dispute_list_filter_paging(client: stripe.StripeClient, shim: StripeShim) -> None:
    charges = [first_charge(client, subscribe(client, shim)) for _ in range(3)]
    disputes = [shim.create_dispute(charge["id"]) for charge in charges]

    by_charge = client.v1.disputes.list(params={"charge": charges[1]["id"]})
    first = client.v1.disputes.list(params={"limit": 2})
    second = client.v1.disputes.list(params={"limit": 2, "starting_after": first.data[-1].id})

    assert [dispute.id for dispute in by_charge.data] == [disputes[1]["id"]]
    assert [dispute.id for dispute in first.data] == [disputes[2]["id"], disputes[1]["id"]]
    assert first.has_more is True
    assert [dispute.id for dispute in second.data] == [disputes[0]["id"]]
    assert second.has_more is False


def test_dispute_rejects_input(client: stripe.StripeClient, shim: StripeShim) -> None:
    charge = first_charge(client, subscribe(client, shim))

    with pytest.raises(StripeApiError) as unknown_charge:
        shim.create_dispute("ch_missing")
    with pytest.raises(StripeApiError) as bad_reason:
        shim.create_dispute(charge["id"], "bored")
    dispute = shim.create_dispute(charge["id"])
    with pytest.raises(StripeApiError) as second:
        shim.create_dispute(charge["id"])
    shim.close_dispute(dispute["id"], won=False)
    with pytest.raises(StripeApiError) as closed_twice:
        shim.close_dispute(dispute["id"], won=True)
    with pytest.raises(StripeApiError) as unknown_dispute:
        shim.close_dispute("dp_missing", won=True)
    with pytest.raises(stripe.InvalidRequestError) as retrieve_unknown:
        client.v1.disputes.retrieve("dp_missing")

    assert unknown_charge.value.param == "charge"
    assert unknown_charge.value.code == "resource_missing"
    assert bad_reason.value.param == "reason"
    assert second.value.param == "charge"
    assert closed_twice.value.status == 400
    assert "already closed" in closed_twice.value.message
    assert unknown_dispute.value.status == 404
    assert retrieve_unknown.value.http_status == 404
    assert len(client.v1.disputes.list().data) == 1


def test_dispute_control_routes(client: stripe.StripeClient, shim: StripeShim) -> None:
    charge = first_charge(client, subscribe(client, shim))

    created = control(shim, f"/_shim/charges/{charge['id']}/dispute", "reason=duplicate")
    dispute_id = created.json()["id"]
    missing_won = control(shim, f"/_shim/disputes/{dispute_id}/close")
    closed = control(shim, f"/_shim/disputes/{dispute_id}/close", "won=true")

    assert created.status == 200
    assert created.json()["reason"] == "duplicate"
    assert missing_won.status == 400
    assert missing_won.json()["error"]["param"] == "won"
    assert closed.status == 200
    assert closed.json()["status"] == "won"


# -- card fingerprints ------------------------------------------------------------------------


def test_card_fingerprint_per_number(client: stripe.StripeClient, shim: StripeShim) -> None:
    visa = first_charge(client, subscribe(client, shim))
    visa_again = first_charge(client, subscribe(client, shim))
    mastercard = first_charge(client, subscribe(client, shim, card="pm_card_mastercard"))

    card = visa["payment_method_details"]["card"]
    assert visa["payment_method_details"]["type"] == "card"
    assert card["brand"] == "visa"
    assert card["last4"] == "4242"
    assert FINGERPRINT.fullmatch(card["fingerprint"])
    assert visa_again["payment_method_details"]["card"]["fingerprint"] == card["fingerprint"]
    assert visa_again["payment_method"] != visa["payment_method"]
    other = mastercard["payment_method_details"]["card"]
    assert other["brand"] == "mastercard"
    assert other["last4"] == "4444"
    assert other["fingerprint"] != card["fingerprint"]
    payment_method = client.v1.payment_methods.retrieve(visa["payment_method"])
    assert payment_method.card is not None
    assert payment_method.card.fingerprint == card["fingerprint"]
    assert payment_method.card.brand == "visa"


def test_checkout_page_card_choice(client: stripe.StripeClient, shim: StripeShim) -> None:
    price = client.v1.prices.create(
        params={
            "currency": "cny",
            "unit_amount": 1800,
            "recurring": {"interval": "month"},
            "product_data": {"name": "IDSentry monthly"},
        }
    )
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id}],
            "success_url": SUCCESS_URL,
            "locale": "en",
        }
    )
    assert session.url is not None

    page = http_call(session.url)
    paid = http_call(
        f"{shim.base_url}/checkout/{session.id}/pay",
        "POST",
        body=b"payment_method=pm_card_unionpay",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert '<select name="payment_method">' in page.text
    assert '<option value="pm_card_mastercard">Mastercard 5555 5555 5555 4444</option>' in page.text
    assert paid.status == 303
    completed = client.v1.checkout.sessions.retrieve(session.id)
    subscription = client.v1.subscriptions.retrieve(str(completed.subscription)).to_dict()
    charge = first_charge(client, subscription)
    assert charge["payment_method_details"]["card"]["brand"] == "unionpay"
    assert charge["payment_method_details"]["card"]["last4"] == "0005"


def test_checkout_pay_rejects_unknown_card(client: stripe.StripeClient, shim: StripeShim) -> None:
    price = client.v1.prices.create(
        params={"currency": "cny", "unit_amount": 990, "product_data": {"name": "Report"}}
    )
    session = client.v1.checkout.sessions.create(
        params={"mode": "payment", "line_items": [{"price": price.id}]}
    )

    rejected = http_call(
        f"{shim.base_url}/checkout/{session.id}/pay",
        "POST",
        body=b"payment_method=4242424242424242",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )

    assert rejected.status == 400
    assert rejected.json()["error"]["param"] == "payment_method"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
