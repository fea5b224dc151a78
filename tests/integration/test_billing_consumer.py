"""The billing consumer against moto with an in-memory Stripe: order, duplicates and the ledger."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from idsentry.adapters.table import MainTable
from idsentry.models.events import EventDetail
from idsentry.money import UnknownCurrencyError
from idsentry.services.billing import (
    BillingDeps,
    NotLinkedYetError,
    SubscriptionBusyError,
    apply_event,
)
from idsentry.services.purchases import ReportQueueMissingError
from idsentry.services.report_ids import deep_report_id
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_payment_notices import RecordingQueue

pytestmark = pytest.mark.integration

SUBSCRIBER = "sbr_01M91EZZZZZZZZZZZZZZZZZZZ1"
CUSTOMER = "cus_Billing0001"
SUBSCRIPTION = "sub_StripeBilling0001"


class FakeStripe:
    """Stripe objects by id, as the pinned API version shapes them; tests change them in place."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.reads: list[str] = []

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        return obj

    def _get(self, object_id: str) -> dict[str, Any]:
        self.reads.append(object_id)
        return copy.deepcopy(self.objects[object_id])

    event = subscription = invoice = checkout_session = charge = dispute = customer = _get
    payment_intent = _get

    def invoice_payment_charge(self, invoice_id: str) -> str | None:
        return None


class RecordingPublisher:
    """Collects published event details instead of sending them to EventBridge."""

    def __init__(self) -> None:
        self.details: list[EventDetail] = []

    def publish(self, details: list[EventDetail]) -> None:
        self.details.extend(details)


@pytest.fixture
def stripe_fake() -> FakeStripe:
    return FakeStripe()


@pytest.fixture
def published() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def deps(
    local_service: LocalService, stripe_fake: FakeStripe, published: RecordingPublisher
) -> Iterator[BillingDeps]:
    assert local_service.stack is not None
    client = local_service.stack.runtime.client("dynamodb")
    table = MainTable("idsentry-local", client)
    table.put(
        {
            "pk": f"SUB#{SUBSCRIBER}",
            "sk": "PROFILE",
            "subscriber_id": SUBSCRIBER,
            "status": "pending_payment",
        }
    )
    yield BillingDeps(
        table=table,
        stripe=lambda: stripe_fake,  # type: ignore[arg-type,return-value]
        publisher=published,  # type: ignore[arg-type]
        clock=MovableClock(),
        reports=RecordingQueue(),  # type: ignore[arg-type]
    )
    for page in client.get_paginator("scan").paginate(TableName="idsentry-local"):
        for item in page["Items"]:
            client.delete_item(TableName="idsentry-local", Key={"pk": item["pk"], "sk": item["sk"]})


def _event(stripe_fake: FakeStripe, event_id: str, event_type: str, object_id: str) -> str:
    stripe_fake.add(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "livemode": False,
            "data": {"object": {"id": object_id}},
        }
    )
    return event_id


def _subscription(
    stripe_fake: FakeStripe, status: str, metadata: dict[str, str] | None = None
) -> None:
    stripe_fake.add(
        {
            "id": SUBSCRIPTION,
            "object": "subscription",
            "customer": CUSTOMER,
            "status": status,
            "metadata": metadata or {},
            "items": {"data": [{"id": "si_1", "current_period_end": 1_799_000_000}]},
        }
    )


def _checkout(stripe_fake: FakeStripe) -> None:
    stripe_fake.add(
        {
            "id": "cs_test_1",
            "object": "checkout.session",
            "client_reference_id": SUBSCRIBER,
            "customer": CUSTOMER,
            "subscription": SUBSCRIPTION,
            "mode": "subscription",
        }
    )


def _invoice(
    stripe_fake: FakeStripe, invoice_id: str, amount: int, currency: str, status: str = "paid"
) -> None:
    stripe_fake.add(
        {
            "id": invoice_id,
            "object": "invoice",
            "customer": CUSTOMER,
            "status": status,
            "currency": currency,
            "amount_paid": amount if status == "paid" else 0,
            "attempt_count": 1,
            "created": 1_796_400_000,
            "status_transitions": {"paid_at": 1_796_400_100},
            "parent": {"subscription_details": {"subscription": SUBSCRIPTION}},
            "payments": {
                "data": [{"status": "paid", "payment": {"type": "charge", "charge": "ch_1"}}]
            },
        }
    )
    stripe_fake.add(
        {
            "id": "ch_1",
            "object": "charge",
            "customer": CUSTOMER,
            "balance_transaction": {"id": "txn_1", "amount": 930, "currency": "usd", "fee": 57},
            "refunds": {"data": []},
        }
    )


def _profile(deps: BillingDeps) -> dict[str, Any]:
    profile = deps.table.get(f"SUB#{SUBSCRIBER}", "PROFILE")
    assert profile is not None
    return profile


def _ledger(deps: BillingDeps) -> list[dict[str, Any]]:
    items = deps.table.get_partition(f"SUB#{SUBSCRIBER}")
    return [item for sk, item in sorted(items.items()) if sk.startswith("LEDGER#")]


def test_checkout_links_and_entitles(
    deps: BillingDeps, stripe_fake: FakeStripe, published: RecordingPublisher
) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)

    outcome = apply_event(
        deps, _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    )

    assert outcome == "applied"
    profile = _profile(deps)
    assert profile["status"] == "active"
    assert profile["monitored"] is True
    assert profile["gsi1pk"] == "ENTITLED"
    assert profile["stripe_customer_id"] == CUSTOMER
    assert [detail.detail_type for detail in published.details] == ["Subscription.Changed"]


def test_invoice_before_checkout_retried(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)
    _invoice(stripe_fake, "in_1", 6800, "cny")
    paid = _event(stripe_fake, "evt_paid", "invoice.paid", "in_1")

    with pytest.raises(NotLinkedYetError):
        apply_event(deps, paid)
    assert deps.table.get("STRIPE_EVENT#evt_paid", "APPLIED") is None
    assert _ledger(deps) == []

    apply_event(
        deps, _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    )
    assert apply_event(deps, paid) == "applied"

    ledger = _ledger(deps)
    assert len(ledger) == 1
    assert ledger[0]["amount"] == 6800
    assert ledger[0]["currency"] == "cny"
    assert ledger[0]["settlement_amount"] == 930
    assert ledger[0]["settlement_currency"] == "usd"
    assert ledger[0]["fee_amount"] == 57


def test_subscription_metadata_links_early(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _subscription(stripe_fake, "trialing", metadata={"subscriber_id": SUBSCRIBER})

    apply_event(
        deps, _event(stripe_fake, "evt_created", "customer.subscription.created", SUBSCRIPTION)
    )

    assert _profile(deps)["status"] == "trialing"
    assert deps.table.get(f"STRIPECUS#{CUSTOMER}", "LINK") is not None


def test_duplicate_event_applied_once(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)
    apply_event(
        deps, _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    )
    _invoice(stripe_fake, "in_1", 6800, "cny")
    paid = _event(stripe_fake, "evt_paid", "invoice.paid", "in_1")

    first = apply_event(deps, paid)
    reads_after_first = len(stripe_fake.reads)
    second = apply_event(deps, paid)

    assert (first, second) == ("applied", "duplicate")
    assert len(stripe_fake.reads) == reads_after_first
    assert len(_ledger(deps)) == 1


def test_concurrent_duplicates_write_once(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)
    apply_event(
        deps, _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    )
    _invoice(stripe_fake, "in_1", 6800, "cny")
    _event(stripe_fake, "evt_paid", "invoice.paid", "in_1")
    # Two consumers both pass the "already applied?" check before either marks the event.
    deps.table.delete("STRIPE_EVENT#evt_paid", "APPLIED")
    apply_event(deps, "evt_paid")
    deps.table.delete("STRIPE_EVENT#evt_paid", "APPLIED")

    apply_event(deps, "evt_paid")

    assert len(_ledger(deps)) == 1


def test_old_event_applies_current_state(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)
    apply_event(
        deps, _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    )

    # The past_due update arrives late, after the subscription recovered: the current state wins.
    apply_event(
        deps, _event(stripe_fake, "evt_old_past_due", "customer.subscription.updated", SUBSCRIPTION)
    )

    assert _profile(deps)["status"] == "active"
    assert "past_due_since" not in _profile(deps)


@pytest.mark.parametrize(
    ("status", "monitored"),
    [
        ("past_due", True),
        ("unpaid", False),
        ("paused", False),
        ("canceled", False),
        ("incomplete", False),
    ],
)
def test_entitlement_follows_status(
    deps: BillingDeps, stripe_fake: FakeStripe, status: str, monitored: bool
) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)
    apply_event(
        deps, _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    )
    _subscription(stripe_fake, status)

    apply_event(
        deps, _event(stripe_fake, f"evt_{status}", "customer.subscription.updated", SUBSCRIPTION)
    )

    profile = _profile(deps)
    assert profile["monitored"] is monitored
    assert ("gsi1pk" in profile) is monitored
    assert ("past_due_since" in profile) is (status == "past_due")


def test_payment_failed_announced(
    deps: BillingDeps, stripe_fake: FakeStripe, published: RecordingPublisher
) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)
    apply_event(
        deps, _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    )
    _subscription(stripe_fake, "past_due")
    _invoice(stripe_fake, "in_2", 6800, "cny", status="open")

    apply_event(deps, _event(stripe_fake, "evt_failed", "invoice.payment_failed", "in_2"))

    kinds = [detail.detail_type for detail in published.details]
    assert kinds.count("Payment.Failed") == 1
    assert _profile(deps)["status"] == "past_due"
    assert _ledger(deps) == []


def test_zero_decimal_invoice_exact(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)
    apply_event(
        deps, _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    )
    _invoice(stripe_fake, "in_jpy", 1200, "jpy")

    apply_event(deps, _event(stripe_fake, "evt_paid_jpy", "invoice.paid", "in_jpy"))

    assert _ledger(deps)[0]["amount"] == 1200
    assert _ledger(deps)[0]["currency"] == "jpy"


def test_unknown_currency_not_applied(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)
    apply_event(
        deps, _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    )
    _invoice(stripe_fake, "in_xyz", 1200, "xyz")

    with pytest.raises(UnknownCurrencyError):
        apply_event(deps, _event(stripe_fake, "evt_paid_xyz", "invoice.paid", "in_xyz"))

    assert deps.table.get("STRIPE_EVENT#evt_paid_xyz", "APPLIED") is None
    assert _ledger(deps) == []


def test_refund_and_dispute_in_ledger(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)
    apply_event(
        deps, _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    )
    stripe_fake.add(
        {
            "id": "ch_9",
            "object": "charge",
            "customer": CUSTOMER,
            "refunds": {
                "data": [
                    {
                        "id": "re_1",
                        "amount": 1000,
                        "currency": "cny",
                        "created": 1_796_500_000,
                        "status": "succeeded",
                    }
                ]
            },
        }
    )
    stripe_fake.add(
        {
            "id": "dp_1",
            "object": "dispute",
            "charge": "ch_9",
            "status": "won",
            "balance_transactions": [
                {
                    "id": "txn_w",
                    "amount": -6800,
                    "currency": "cny",
                    "fee": 1500,
                    "created": 1_796_600_000,
                },
                {
                    "id": "txn_r",
                    "amount": 6800,
                    "currency": "cny",
                    "fee": -1500,
                    "created": 1_796_700_000,
                },
            ],
        }
    )

    apply_event(deps, _event(stripe_fake, "evt_refund", "charge.refunded", "ch_9"))
    apply_event(deps, _event(stripe_fake, "evt_dispute_created", "charge.dispute.created", "dp_1"))
    apply_event(deps, _event(stripe_fake, "evt_dispute_closed", "charge.dispute.closed", "dp_1"))

    amounts = [(item["kind"], item["amount"], item.get("fee_amount")) for item in _ledger(deps)]
    assert amounts == [("refund", -1000, None), ("dispute", -6800, 1500), ("dispute", 6800, -1500)]


def test_unhandled_type_marked_ignored(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    outcome = apply_event(deps, _event(stripe_fake, "evt_other", "product.created", "prod_1"))

    assert outcome == "ignored"
    assert deps.table.get("STRIPE_EVENT#evt_other", "APPLIED") is not None


def test_held_subscription_retried(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)
    event_id = _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    # Another consumer has the subscription's lease: this one must neither write nor mark the event.
    deps.table.put(
        {
            "pk": f"STRIPESUB#{SUBSCRIPTION}",
            "sk": "LEASE",
            "holder": "other",
            "lease_until": 4_000_000_000,
        }
    )

    with pytest.raises(SubscriptionBusyError):
        apply_event(deps, event_id)

    assert _profile(deps)["status"] == "pending_payment"
    assert deps.table.get("STRIPE_EVENT#evt_checkout", "APPLIED") is None


def test_expired_lease_taken_over(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _subscription(stripe_fake, "active")
    _checkout(stripe_fake)
    event_id = _event(stripe_fake, "evt_checkout", "checkout.session.completed", "cs_test_1")
    # A consumer that died left its lease behind; it has expired.
    deps.table.put(
        {"pk": f"STRIPESUB#{SUBSCRIPTION}", "sk": "LEASE", "holder": "dead", "lease_until": 1}
    )

    apply_event(deps, event_id)

    assert _profile(deps)["status"] == "active"
    assert deps.table.get(f"STRIPESUB#{SUBSCRIPTION}", "LEASE") is None


# --- one-off purchases and the deep report they buy ---------------------------------------

PURCHASE_SESSION = "cs_test_deep_1"
PURCHASE_CHARGE = "ch_deep_1"


def _purchase(
    stripe_fake: FakeStripe,
    payment_status: str = "paid",
    refunded: bool = False,
    plan: str = "deep_report",
) -> None:
    stripe_fake.add(
        {
            "id": PURCHASE_SESSION,
            "object": "checkout.session",
            "client_reference_id": SUBSCRIBER,
            "customer": CUSTOMER,
            "subscription": None,
            "mode": "payment",
            "payment_status": payment_status,
            "payment_intent": "pi_deep_1" if payment_status == "paid" else None,
            "amount_total": 2900,
            "currency": "cny",
            "created": 1_796_500_000,
            "metadata": {"subscriber_id": SUBSCRIBER, "plan": plan},
        }
    )
    stripe_fake.add(
        {"id": "pi_deep_1", "object": "payment_intent", "latest_charge": PURCHASE_CHARGE}
    )
    stripe_fake.add(
        {
            "id": PURCHASE_CHARGE,
            "object": "charge",
            "customer": CUSTOMER,
            "refunded": refunded,
            "balance_transaction": {"id": "txn_deep", "amount": 2900, "currency": "cny", "fee": 90},
            "refunds": {
                "data": [
                    {
                        "id": "re_deep_1",
                        "status": "succeeded",
                        "amount": 2900,
                        "currency": "cny",
                        "created": 1_796_600_000,
                    }
                ]
                if refunded
                else []
            },
        }
    )


def _report_jobs(deps: BillingDeps) -> list[Any]:
    assert isinstance(deps.reports, RecordingQueue)
    return deps.reports.jobs


def _purchase_item(deps: BillingDeps) -> dict[str, Any] | None:
    return deps.table.get(f"SUB#{SUBSCRIBER}", f"PURCHASE#{PURCHASE_SESSION}")


def test_deep_report_purchase_queued_once(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _purchase(stripe_fake)
    event_id = _event(stripe_fake, "evt_deep", "checkout.session.completed", PURCHASE_SESSION)

    first = apply_event(deps, event_id)
    second = apply_event(deps, event_id)
    # The same purchase in another event, such as the delayed-payment one, queues nothing more.
    third = apply_event(
        deps,
        _event(
            stripe_fake,
            "evt_deep_async",
            "checkout.session.async_payment_succeeded",
            PURCHASE_SESSION,
        ),
    )

    assert (first, second, third) == ("applied", "duplicate", "applied")
    jobs = _report_jobs(deps)
    assert len(jobs) == 1
    assert (jobs[0].report_kind, jobs[0].purchase_id) == ("deep", PURCHASE_SESSION)
    purchase = _purchase_item(deps)
    assert purchase is not None
    assert purchase["status"] == "paid"
    assert purchase["charge_id"] == PURCHASE_CHARGE
    assert purchase["report_id"] == deep_report_id(SUBSCRIBER, PURCHASE_SESSION)
    assert isinstance(purchase["report_queued_at"], int)
    assert [item["kind"] for item in _ledger(deps)] == ["purchase_paid"]


def test_purchase_redelivered_after_crash_requeued(
    deps: BillingDeps, stripe_fake: FakeStripe
) -> None:
    _purchase(stripe_fake)
    event_id = _event(stripe_fake, "evt_deep", "checkout.session.completed", PURCHASE_SESSION)
    apply_event(deps, event_id)
    # A consumer that stopped after sending the job but before recording it and the event.
    deps.table.update(
        f"SUB#{SUBSCRIBER}", f"PURCHASE#{PURCHASE_SESSION}", "REMOVE report_queued_at"
    )
    deps.table.delete(f"STRIPE_EVENT#{event_id}", "APPLIED")

    apply_event(deps, event_id)

    jobs = _report_jobs(deps)
    assert len(jobs) == 2
    # The same job twice renders one report, because the worker derives the id from it.
    assert jobs[0] == jobs[1]


def test_unpaid_session_queues_nothing(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _purchase(stripe_fake, payment_status="unpaid")

    outcome = apply_event(
        deps, _event(stripe_fake, "evt_unpaid", "checkout.session.completed", PURCHASE_SESSION)
    )

    assert outcome == "applied"
    assert _report_jobs(deps) == []
    assert _purchase_item(deps) is None
    assert _ledger(deps) == []


def test_delayed_payment_queues_when_paid(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _purchase(stripe_fake, payment_status="unpaid")
    apply_event(
        deps, _event(stripe_fake, "evt_unpaid", "checkout.session.completed", PURCHASE_SESSION)
    )
    _purchase(stripe_fake, payment_status="paid")

    apply_event(
        deps,
        _event(
            stripe_fake, "evt_paid", "checkout.session.async_payment_succeeded", PURCHASE_SESSION
        ),
    )

    assert len(_report_jobs(deps)) == 1


def test_refunded_before_applied_queues_nothing(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    # Refunded in Stripe before the Checkout event was applied. The refund's own event waits
    # for the customer link, which the Checkout event writes, so it is applied second.
    _purchase(stripe_fake, refunded=True)
    refund_event = _event(stripe_fake, "evt_refund", "charge.refunded", PURCHASE_CHARGE)
    with pytest.raises(NotLinkedYetError):
        apply_event(deps, refund_event)

    apply_event(
        deps, _event(stripe_fake, "evt_deep", "checkout.session.completed", PURCHASE_SESSION)
    )
    apply_event(deps, refund_event)

    assert _report_jobs(deps) == []
    purchase = _purchase_item(deps)
    assert purchase is not None
    assert purchase["status"] == "refunded"
    assert sorted(item["kind"] for item in _ledger(deps)) == ["purchase_paid", "refund"]


def test_refund_marks_purchase_refunded(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _purchase(stripe_fake)
    apply_event(
        deps, _event(stripe_fake, "evt_deep", "checkout.session.completed", PURCHASE_SESSION)
    )
    _purchase(stripe_fake, refunded=True)

    apply_event(deps, _event(stripe_fake, "evt_refund", "charge.refunded", PURCHASE_CHARGE))

    purchase = _purchase_item(deps)
    assert purchase is not None
    assert purchase["status"] == "refunded"
    assert isinstance(purchase["refunded_at"], int)
    assert len(_report_jobs(deps)) == 1


def test_other_plan_queues_no_report(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _purchase(stripe_fake, plan="gift_card")

    apply_event(
        deps, _event(stripe_fake, "evt_gift", "checkout.session.completed", PURCHASE_SESSION)
    )

    purchase = _purchase_item(deps)
    assert purchase is not None
    assert "report_id" not in purchase
    assert _report_jobs(deps) == []


def test_deep_report_without_queue_retried(deps: BillingDeps, stripe_fake: FakeStripe) -> None:
    _purchase(stripe_fake)
    deps.reports = None
    event_id = _event(stripe_fake, "evt_deep", "checkout.session.completed", PURCHASE_SESSION)

    with pytest.raises(ReportQueueMissingError, match="REPORT_QUEUE_URL"):
        apply_event(deps, event_id)

    assert deps.table.get(f"STRIPE_EVENT#{event_id}", "APPLIED") is None
