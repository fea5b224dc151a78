"""Repair mode against moto and the local Stripe shim: a lost invoice.paid is applied once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe

from idsentry.adapters.stripe_gateway import StripeSdkGateway
from idsentry.adapters.stripe_lists import StripeSdkLists
from idsentry.adapters.table import MainTable
from idsentry.clock import SHANGHAI, utc_now
from idsentry.models.events import EventDetail
from idsentry.services.billing import BillingDeps, apply_event
from idsentry.services.reconcile import ReconcileDeps, reconcile
from idsentry.services.reconcile_ledger import TableLedgerSource
from idsentry.services.reconcile_model import Period, Reconciliation
from infra.local.emulators.stripe import TEST_API_KEY
from infra.local.service import LocalService
from tests.integration.stripe_support import LoopbackOnlyClient
from tests.integration.test_signup_service import _clear_table

pytestmark = pytest.mark.integration

SUBSCRIBER = "sbr_01M91REPA1R000000000000000"
TODAY = datetime.now(SHANGHAI).date()
# Three days around now, so that objects created during the test are inside whatever the hour.
PERIOD = Period(TODAY - timedelta(days=1), TODAY + timedelta(days=1))


class RecordingPublisher:
    def __init__(self) -> None:
        self.details: list[EventDetail] = []

    def publish(self, details: list[EventDetail]) -> None:
        self.details.extend(details)


@pytest.fixture
def table(local_service: LocalService) -> Iterator[MainTable]:
    assert local_service.stack is not None
    main = MainTable("idsentry-local", local_service.stack.runtime.client("dynamodb"))
    main.put(
        {
            "pk": f"SUB#{SUBSCRIBER}",
            "sk": "PROFILE",
            "subscriber_id": SUBSCRIBER,
            "status": "pending_payment",
        }
    )
    yield main
    _clear_table(local_service)


@pytest.fixture
def shim_url(local_service: LocalService) -> str:
    assert local_service.stripe_shim is not None
    return local_service.stripe_shim.base_url


@pytest.fixture
def billing(table: MainTable, shim_url: str) -> BillingDeps:
    gateway = StripeSdkGateway(TEST_API_KEY, base_url=shim_url)
    return BillingDeps(
        table=table,
        stripe=lambda: gateway,
        publisher=RecordingPublisher(),  # type: ignore[arg-type]
        clock=utc_now,
    )


def subscribe(shim_url: str) -> Any:
    client = stripe.StripeClient(
        TEST_API_KEY,
        base_addresses={"api": shim_url},
        http_client=LoopbackOnlyClient(),
        max_network_retries=0,
    )
    metadata = {"subscriber_id": SUBSCRIBER}
    customer = client.v1.customers.create(params={"metadata": metadata})
    price = client.v1.prices.create(
        params={
            "currency": "cny",
            "unit_amount": 1800,
            "recurring": {"interval": "month"},
            "product_data": {"name": "IDSentry monthly"},
        }
    )
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    # localstripe takes subscription items by plan, and a recurring shim price is also a plan.
    items: Any = [{"plan": price.id}]
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": items, "metadata": metadata}
    )
    return client, subscription


def event_of(client: stripe.StripeClient, event_type: str, object_id: str) -> str:
    for event in client.v1.events.list(params={"type": event_type, "limit": 100}).data:
        if event.data.object["id"] == object_id:
            return str(event.id)
    raise AssertionError(f"local Stripe has no {event_type} event for {object_id}")


def run(table: MainTable, shim_url: str, billing: BillingDeps, repair: bool) -> Reconciliation:
    lists = StripeSdkLists(TEST_API_KEY, shim_url, http_client=LoopbackOnlyClient())
    deps = ReconcileDeps(
        stripe=lists, ledger=TableLedgerSource(table), clock=utc_now, billing=billing
    )
    return reconcile(deps, PERIOD, repair_missing=repair)


def ledger_rows(table: MainTable) -> list[dict[str, Any]]:
    partition = table.get_partition(f"SUB#{SUBSCRIBER}")
    return [item for sk, item in partition.items() if sk.startswith("LEDGER#")]


def classes(result: Reconciliation) -> dict[str, str]:
    return {f"{row.kind}:{row.stripe_id}": row.row_class for row in result.rows}


def test_repair_lost_invoice_paid_once(
    local_service: LocalService, table: MainTable, shim_url: str, billing: BillingDeps
) -> None:
    assert local_service.stripe_shim is not None
    client, subscription = subscribe(shim_url)
    local_service.stripe_shim.flush()
    created = event_of(client, "customer.subscription.created", subscription.id)
    # The subscription's event arrived; the invoice.paid of its first invoice was lost.
    assert apply_event(billing, created) == "applied"
    invoice_id = str(subscription.latest_invoice)
    lost = event_of(client, "invoice.paid", invoice_id)

    before = run(table, shim_url, billing, repair=False)
    repaired = run(table, shim_url, billing, repair=True)
    again = run(table, shim_url, billing, repair=True)

    assert classes(before)[f"invoice:{invoice_id}"] == "missing_in_ledger"
    assert classes(before)[f"subscription:{subscription.id}"] == "matched"
    assert before.repairs == ()
    assert [(item.kind, item.outcome, item.event_id) for item in repaired.repairs] == [
        ("invoice", "applied", lost),
        ("charge", "applied", lost),
    ]
    assert set(classes(repaired).values()) == {"matched"}
    assert again.repairs == ()
    assert set(classes(again).values()) == {"matched"}
    rows = ledger_rows(table)
    assert len(rows) == 1
    assert rows[0]["kind"] == "invoice_paid"
    assert rows[0]["stripe_ids"]["invoice"] == invoice_id


def test_repair_leaves_missing_in_stripe(
    local_service: LocalService, table: MainTable, shim_url: str, billing: BillingDeps
) -> None:
    # A ledger entry whose invoice Stripe never had is missing in Stripe, and repair leaves it.
    # The module's local Stripe still has the other test's objects, so only this row is checked.
    created = int(datetime.now(SHANGHAI).timestamp())
    table.put(
        {
            "pk": f"SUB#{SUBSCRIBER}",
            "sk": f"LEDGER#{created:010d}#invoice_paid#in_NeverInStripe",
            "kind": "invoice_paid",
            "amount": 1800,
            "currency": "cny",
            "created": created,
            "stripe_ids": {"invoice": "in_NeverInStripe"},
            "gsi1pk": f"LEDGER#{datetime.fromtimestamp(created, UTC).strftime('%Y%m%d')}",
            "gsi1sk": f"{created:010d}#invoice_paid#in_NeverInStripe",
        }
    )

    result = run(table, shim_url, billing, repair=True)

    assert classes(result)["invoice:in_NeverInStripe"] == "missing_in_stripe"
    assert all(item.stripe_id != "in_NeverInStripe" for item in result.repairs)
