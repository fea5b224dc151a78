"""The shim's list endpoints, payouts, request counts and 429s, through the official SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from infra.local.emulators.stripe import TEST_API_KEY, LocalStripe
from infra.local.emulators.stripe_shim import StripeApiError, StripeShim
from tests.integration.stripe_support import LoopbackOnlyClient, http_call

pytestmark = pytest.mark.integration


@pytest.fixture
def shim() -> Iterator[StripeShim]:
    with LocalStripe() as local_stripe, StripeShim(local_stripe.base_url) as server:
        yield server


@pytest.fixture
def client(shim: StripeShim) -> stripe.StripeClient:
    return stripe.StripeClient(
        TEST_API_KEY,
        base_addresses={"api": shim.base_url},
        http_client=LoopbackOnlyClient(),
        max_network_retries=0,
    )


def seed(
    client: stripe.StripeClient, shim: StripeShim, created: list[int], refund_every: int = 0
) -> list[dict[str, Any]]:
    """Seed one charge per `created` time, refunding 100 of every `refund_every`-th one."""
    customer = client.v1.customers.create(params={"metadata": {"subscriber_id": "sbr_list"}})
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    charges = [
        {
            "amount": 1000 + index,
            "created": moment,
            **({"refund": 100} if refund_every and index % refund_every == 0 else {}),
        }
        for index, moment in enumerate(created)
    ]
    return shim.seed_charges(customer.id, card.id, "cny", charges)


def test_charges_paged_newest_first(client: stripe.StripeClient, shim: StripeShim) -> None:
    now = int(time.time())
    seeded = seed(client, shim, [now - 1000 + index for index in range(250)])
    shim.reset_request_counts()

    listed = list(client.v1.charges.list(params={"limit": 100}).auto_paging_iter())

    assert [charge.id for charge in listed] == [item["charge"] for item in reversed(seeded)]
    assert shim.request_counts() == {"GET /v1/charges": 3}


def test_page_shape(client: stripe.StripeClient, shim: StripeShim) -> None:
    now = int(time.time())
    seed(client, shim, [now - 10 + index for index in range(5)])

    first = client.v1.charges.list(params={"limit": 2})
    second = client.v1.charges.list(params={"limit": 2, "starting_after": first.data[-1].id})
    back = client.v1.charges.list(params={"limit": 2, "ending_before": second.data[0].id})

    assert first.has_more is True
    assert first.url == "/v1/charges"
    assert [charge.amount for charge in first.data] == [1004, 1003]
    assert [charge.amount for charge in second.data] == [1002, 1001]
    assert [charge.id for charge in back.data] == [charge.id for charge in first.data]
    assert first.data[0].payment_method_details is not None


def test_same_second_keeps_creation_order(client: stripe.StripeClient, shim: StripeShim) -> None:
    moment = int(time.time()) - 100
    seeded = seed(client, shim, [moment] * 120)

    listed = list(client.v1.charges.list(params={"limit": 100}).auto_paging_iter())

    assert [charge.id for charge in listed] == [item["charge"] for item in reversed(seeded)]


def test_created_filters(client: stripe.StripeClient, shim: StripeShim) -> None:
    start = int(time.time()) - 5000
    seed(client, shim, [start - 1, start, start + 99, start + 100], refund_every=1)

    charges = client.v1.charges.list(
        params={"created": {"gte": start, "lt": start + 100}, "limit": 100}
    )
    refunds = client.v1.refunds.list(params={"created": {"gt": start}, "limit": 100})
    transactions = client.v1.balance_transactions.list(
        params={"created": {"lte": start}, "type": "refund", "limit": 100}
    )
    exact = client.v1.charges.list(params={"created": start + 99})

    assert [charge.created for charge in charges.data] == [start + 99, start]
    assert [refund.created for refund in refunds.data] == [start + 100, start + 99]
    assert [item.created for item in transactions.data] == [start, start - 1]
    assert [charge.created for charge in exact.data] == [start + 99]


def test_refunds_keep_charge_fields(client: stripe.StripeClient, shim: StripeShim) -> None:
    seeded = seed(client, shim, [int(time.time()) - 50], refund_every=1)

    charge = client.v1.charges.retrieve(str(seeded[0]["charge"]))
    listed = client.v1.charges.list(params={"limit": 1}).data[0]

    assert charge.amount_refunded == 100
    assert listed.amount_refunded == 100
    assert listed.refunds is not None
    assert [refund.id for refund in listed.refunds.data] == [seeded[0]["refund"]]


def test_payout_transactions(client: stripe.StripeClient, shim: StripeShim) -> None:
    now = int(time.time())
    seeded = seed(client, shim, [now - 300, now - 200, now - 100], refund_every=2)
    members = [
        str(item[key])
        for item in seeded[:2]
        for key in ("balance_transaction", "refund_balance_transaction")
        if item[key]
    ]

    payout = shim.create_payout("cny", now - 10, members)
    listed = list(
        client.v1.balance_transactions.list(
            params={"payout": payout["id"], "limit": 100}
        ).auto_paging_iter()
    )

    assert payout["amount"] == 1000 + 1001 - 100
    assert payout["status"] == "paid"
    assert sorted(item.id for item in listed if item.type != "payout") == sorted(members)
    own = [item for item in listed if item.type == "payout"]
    assert [item.amount for item in own] == [-payout["amount"]]
    assert client.v1.balance_transactions.retrieve(own[0].id).source == payout["id"]
    assert client.v1.payouts.retrieve(payout["id"]).balance_transaction == own[0].id


def test_payout_of_remaining_transactions(client: stripe.StripeClient, shim: StripeShim) -> None:
    now = int(time.time())
    seeded = seed(client, shim, [now - 300, now - 200])
    shim.create_payout("cny", now - 10, [str(seeded[0]["balance_transaction"])])

    second = shim.create_payout("cny", now + 86400)

    assert second["amount"] == 1001
    assert second["status"] == "in_transit"
    with pytest.raises(StripeApiError) as raised:
        shim.create_payout("cny", now, [str(seeded[0]["balance_transaction"])])
    assert raised.value.param == "balance_transactions"


def test_payouts_by_arrival_date(client: stripe.StripeClient, shim: StripeShim) -> None:
    now = int(time.time())
    seeded = seed(client, shim, [now - 300, now - 200])
    early = shim.create_payout("cny", now - 100, [str(seeded[0]["balance_transaction"])])
    late = shim.create_payout("cny", now + 100, [str(seeded[1]["balance_transaction"])])

    arrived = client.v1.payouts.list(params={"arrival_date": {"lt": now}})
    pending = client.v1.payouts.list(params={"status": "in_transit"})

    assert [payout.id for payout in arrived.data] == [early["id"]]
    assert [payout.id for payout in pending.data] == [late["id"]]


def test_payout_control_route(client: stripe.StripeClient, shim: StripeShim) -> None:
    now = int(time.time())
    seeded = seed(client, shim, [now - 300])
    body = (
        f"currency=cny&arrival_date={now - 5}&amount=999"
        f"&balance_transactions[]={seeded[0]['balance_transaction']}"
    )

    result = http_call(
        f"{shim.base_url}/_shim/payouts",
        "POST",
        body.encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert result.status == 200, result.text
    assert result.json()["amount"] == 999


def test_events_list_includes_shim_events(client: stripe.StripeClient, shim: StripeShim) -> None:
    now = int(time.time())
    seed(client, shim, [now - 300])
    shim.create_payout("cny", now - 10)

    events = client.v1.events.list(params={"types": ["payout.created", "customer.created"]})
    one_type = client.v1.events.list(params={"type": "payout.paid"})

    assert [event.type for event in events.data] == ["payout.created", "customer.created"]
    assert [event.type for event in one_type.data] == ["payout.paid"]
    assert events.data[0].api_version == "2026-10-28.endive"


def test_list_rejects_input(client: stripe.StripeClient) -> None:
    unknown_filter: Any = {"colour": "red"}
    unknown_status: Any = {"status": "lost"}

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.charges.list(params=unknown_filter)
    with pytest.raises(stripe.InvalidRequestError) as cursor:
        client.v1.charges.list(params={"starting_after": "ch_missing"})
    with pytest.raises(stripe.InvalidRequestError) as status:
        client.v1.invoices.list(params=unknown_status)

    assert unknown.value.param == "colour"
    assert cursor.value.param == "starting_after"
    assert status.value.param == "status"


def test_rate_limit_returns_429(client: stripe.StripeClient, shim: StripeShim) -> None:
    shim.rate_limit_next(1)

    with pytest.raises(stripe.RateLimitError):
        client.v1.charges.list()
    client.v1.charges.list()

    assert shim.request_counts() == {"GET /v1/charges": 2}


def test_fail_next_fails_one_route(client: stripe.StripeClient, shim: StripeShim) -> None:
    shim.fail_next(1, 500, route="GET /v1/invoices")

    client.v1.charges.list()
    with pytest.raises(stripe.APIError):
        client.v1.invoices.list()
    client.v1.invoices.list()

    assert shim.injected_faults() == {500: 1}
