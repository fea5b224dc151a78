"""The reconciliation core against the local Stripe shim: paging, request counts, 429s, boundaries."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe

from idsentry.adapters.stripe_lists import StripeSdkLists
from idsentry.clock import SHANGHAI
from idsentry.errors import ProviderError
from idsentry.services.reconcile import ReconcileDeps, reconcile
from idsentry.services.reconcile_model import LedgerEntry, Period
from infra.local.emulators.stripe import TEST_API_KEY, LocalStripe
from infra.local.emulators.stripe_shim import StripeShim
from tests.integration.stripe_support import LoopbackOnlyClient
from tests.unit.reconcile_fakes import FakeLedger

pytestmark = pytest.mark.integration

# Yesterday in Asia/Shanghai: seeded objects are dated inside it, so the run's own time of day
# does not matter.
YESTERDAY = datetime.now(SHANGHAI).date() - timedelta(days=1)
PERIOD = Period(YESTERDAY, YESTERDAY)


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


class RecordedSleep:
    """Stands in for time.sleep and records each delay, so retries take no time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def lists_for(shim: StripeShim, sleep: RecordedSleep, retries: int = 3) -> StripeSdkLists:
    return StripeSdkLists(
        TEST_API_KEY,
        shim.base_url,
        max_network_retries=retries,
        http_client=LoopbackOnlyClient(),
        sleep=sleep,
    )


def seed_purchases(
    client: stripe.StripeClient, shim: StripeShim, created: list[int]
) -> tuple[list[dict[str, Any]], FakeLedger]:
    """Seed one-off card purchases and the ledger entries billing would have written."""
    customer = client.v1.customers.create(params={"metadata": {"subscriber_id": "sbr_rec"}})
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    seeded = shim.seed_charges(
        customer.id,
        card.id,
        "cny",
        [{"amount": 1800, "created": moment} for moment in created],
    )
    ledger = FakeLedger(links={customer.id: "SUB#sbr_rec"})
    for item, moment in zip(seeded, created, strict=True):
        ledger.stored.append(
            LedgerEntry(
                owner_pk="SUB#sbr_rec",
                kind="purchase_paid",
                amount=1800,
                currency="cny",
                created=moment,
                stripe_ids={
                    "checkout_session": f"cs_{item['charge']}",
                    "charge": str(item["charge"]),
                    "balance_transaction": str(item["balance_transaction"]),
                },
                settlement_amount=1800,
                settlement_currency="cny",
                fee_amount=0,
            )
        )
    return seeded, ledger


def run(shim: StripeShim, lists: StripeSdkLists, ledger: FakeLedger) -> Any:
    deps = ReconcileDeps(stripe=lists, ledger=ledger, clock=lambda: datetime.now(UTC))
    shim.reset_request_counts()
    return reconcile(deps, PERIOD)


def test_pagination_beyond_one_page(client: stripe.StripeClient, shim: StripeShim) -> None:
    count = 250
    _, ledger = seed_purchases(client, shim, [PERIOD.start + 60 + n for n in range(count)])
    lists = lists_for(shim, RecordedSleep())

    result = run(shim, lists, ledger)

    assert result.objects["charges"] == count
    assert result.objects["balance_transactions"] == count
    assert result.counts() == {**dict.fromkeys(result.counts(), 0), "matched": count}
    pages = math.ceil(count / 100)
    assert result.stripe_requests["GET /v1/charges"] == pages
    assert result.stripe_requests["GET /v1/balance_transactions"] == pages
    for empty in ("invoices", "refunds", "disputes", "payouts", "subscriptions"):
        assert result.stripe_requests[f"GET /v1/{empty}"] == 1
    assert result.stripe_requests == shim.request_counts()


def test_period_boundaries_through_shim(client: stripe.StripeClient, shim: StripeShim) -> None:
    moments = [PERIOD.start - 1, PERIOD.start, PERIOD.end - 1, PERIOD.end]
    seeded, ledger = seed_purchases(client, shim, moments)
    lists = lists_for(shim, RecordedSleep())

    result = run(shim, lists, ledger)

    charges = sorted((row.created, row.stripe_id) for row in result.rows if row.kind == "charge")
    assert charges == [
        (PERIOD.start, seeded[1]["charge"]),
        (PERIOD.end - 1, seeded[2]["charge"]),
    ]
    assert {row.row_class for row in result.rows} == {"matched"}


def test_lost_payment_found(client: stripe.StripeClient, shim: StripeShim) -> None:
    seeded, ledger = seed_purchases(client, shim, [PERIOD.start + 100, PERIOD.start + 200])
    lost = ledger.stored.pop()
    lists = lists_for(shim, RecordedSleep())

    result = run(shim, lists, ledger)

    missing = [row for row in result.rows if row.row_class == "missing_in_ledger"]
    assert [(row.kind, row.stripe_id) for row in missing] == [("charge", lost.stripe_ids["charge"])]
    assert seeded[1]["charge"] == lost.stripe_ids["charge"]


def test_rate_limit_retried_mid_list(shim: StripeShim, client: stripe.StripeClient) -> None:
    seeded, _ = seed_purchases(client, shim, [PERIOD.start + n for n in range(250)])
    sleep = RecordedSleep()
    lists = lists_for(shim, sleep)
    window = {"created": {"gte": PERIOD.start, "lt": PERIOD.end}}

    listed = lists.list_all("charges", window)
    first_page = [next(listed)["id"] for _ in range(100)]
    shim.rate_limit_next(2)
    rest = [item["id"] for item in listed]

    ids = first_page + rest
    assert ids == [item["charge"] for item in reversed(seeded)]
    assert len(sleep.delays) == 2
    assert 0.5 <= sleep.delays[0] <= 1.0
    assert 1.0 <= sleep.delays[1] <= 2.0
    assert lists.request_counts() == {"GET /v1/charges": 3 + 2}


def test_rate_limit_retries_exhausted(shim: StripeShim) -> None:
    sleep = RecordedSleep()
    lists = lists_for(shim, sleep, retries=2)
    shim.rate_limit_next(3)

    with pytest.raises(ProviderError) as raised:
        list(lists.list_all("charges", {}))

    assert raised.value.transient is True
    assert len(sleep.delays) == 2
    assert lists.request_counts() == {"GET /v1/charges": 3}


def test_retrieve_missing_is_none(shim: StripeShim) -> None:
    lists = lists_for(shim, RecordedSleep())

    assert lists.retrieve("invoices", "in_missing") is None
    assert lists.retrieve("charges", "ch_missing") is None
    assert lists.request_counts() == {"GET /v1/invoices/<id>": 1, "GET /v1/charges/<id>": 1}
