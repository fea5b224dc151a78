"""Apply Stripe events: fetch the current objects, update entitlements and write the ledger.

Every handler reads the objects from Stripe again instead of trusting the event body, so the
order in which events arrive does not matter: each one applies whatever is current. An event
is marked applied only after its work is done, with a conditional write, so a redelivery or a
concurrent consumer repeats idempotent work at worst and never skips it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.stripe_gateway import StripeGateway
from idsentry.adapters.table import MainTable
from idsentry.clock import Clock, epoch
from idsentry.models.events import PaymentFailed, SubscriptionChanged
from idsentry.models.plans import ReferralConfig
from idsentry.money import parse_stripe_amount
from idsentry.services import dunning, entitlements, purchases, referrals

logger = logging.getLogger(__name__)

APPLIED_TTL_SECONDS = 35 * 24 * 3600  # longer than Stripe's 3 days of retries
ENTITLED_INDEX_KEY = "ENTITLED"
# A consumer holds a subscription's lease while it fetches and writes it, so the state fetched
# last is the state written last. A consumer that dies frees it by expiry.
LEASE_SECONDS = 60


# The fields the handlers below read, per Stripe object (dotted paths into nested objects).
# The contract tests check them against the pinned API version and the local Stripe shim.
FIELDS_READ: dict[str, tuple[str, ...]] = {
    "checkout.session": (
        "id",
        "client_reference_id",
        "customer",
        "subscription",
        "metadata",
        "mode",
        "payment_status",
        "payment_intent",
        "amount_total",
        "currency",
        "created",
    ),
    "subscription": ("id", "status", "customer", "metadata", "items"),
    "subscription_item": ("current_period_end",),
    "invoice": (
        "id",
        "customer",
        "status",
        "currency",
        "amount_paid",
        "amount_due",
        "attempt_count",
        "created",
        "status_transitions",
        "parent",
        "payments",
        "billing_reason",
    ),
    "charge": (
        "id",
        "customer",
        "refunds",
        "refunded",
        "balance_transaction",
        "payment_method_details",
    ),
    "dispute": ("id", "charge", "balance_transactions", "status"),
    "payment_intent": ("id", "latest_charge"),
}


class NotLinkedYetError(RuntimeError):
    """The event refers to a customer not linked to a subscriber yet; retry it later."""


class SubscriptionBusyError(RuntimeError):
    """Another consumer is applying the same subscription; retry it later."""


class SubscriberErasedError(RuntimeError):
    """The customer belonged to a deleted account; `ledger_pk` is where its ledger rows are kept."""

    def __init__(self, customer_id: str, ledger_pk: str) -> None:
        super().__init__(f"customer {customer_id} belonged to a deleted account")
        self.ledger_pk = ledger_pk


@dataclass
class BillingDeps:
    """Everything the billing consumer talks to, injected so tests can swap any of it."""

    table: MainTable
    stripe: Callable[[], StripeGateway]
    publisher: EventPublisher
    clock: Clock
    grace_seconds: int = entitlements.DEFAULT_GRACE_SECONDS
    referral: ReferralConfig | None = None
    # Where payment notices go; None sends none (tests of other paths).
    notices: JobQueue | None = None
    # Where bought reports' jobs go; None raises when a deep report is bought.
    reports: JobQueue | None = None


def _id(value: Any) -> str | None:
    """Return the id of an expandable Stripe field (a string id or an expanded object)."""
    if isinstance(value, dict):
        return str(value["id"])
    return str(value) if value else None


def apply_event(deps: BillingDeps, event_id: str) -> str:
    """Apply one Stripe event once; returns "applied", "ignored" or "duplicate"."""
    marker = deps.table.get(f"STRIPE_EVENT#{event_id}", "APPLIED")
    if marker is not None:
        logger.info("stripe event already applied", extra={"event_id": event_id})
        return "duplicate"

    gateway = deps.stripe()
    event = gateway.event(event_id)
    handler = HANDLERS.get(str(event["type"]))
    outcome = "ignored"
    if handler is not None:
        try:
            handler(deps, gateway, event)
            outcome = "applied"
        except SubscriberErasedError:
            # Of a deleted account only money movements are still written (by their handlers,
            # to the ledger archive); nothing else is applied.
            outcome = "erased"

    now = epoch(deps.clock())
    deps.table.put(
        {
            "pk": f"STRIPE_EVENT#{event_id}",
            "sk": "APPLIED",
            "type": event["type"],
            "outcome": outcome,
            "applied_at": now,
            "expires_at": now + APPLIED_TTL_SECONDS,
        },
        condition="attribute_not_exists(pk)",
    )
    logger.info(
        "stripe event processed",
        extra={"event_id": event_id, "type": event["type"], "outcome": outcome},
    )
    return outcome


def link_customer(deps: BillingDeps, customer_id: str, subscriber_id: str) -> None:
    """Record which subscriber a Stripe customer belongs to (idempotent)."""
    deps.table.put({"pk": f"STRIPECUS#{customer_id}", "sk": "LINK", "subscriber_id": subscriber_id})
    deps.table.update(
        f"SUB#{subscriber_id}",
        "PROFILE",
        "SET stripe_customer_id = :customer",
        values={":customer": customer_id},
        condition="attribute_exists(pk)",
    )


def subscriber_for(
    deps: BillingDeps, customer_id: str | None, metadata: dict[str, Any] | None = None
) -> str:
    """Return the subscriber of a customer, linking it from `metadata` if the object carries it."""
    if customer_id:
        link = deps.table.get(f"STRIPECUS#{customer_id}", "LINK")
        if link is not None:
            if link.get("erased_ledger_pk"):
                raise SubscriberErasedError(customer_id, str(link["erased_ledger_pk"]))
            return str(link["subscriber_id"])
    candidate = (metadata or {}).get("subscriber_id")
    if customer_id and candidate and deps.table.get(f"SUB#{candidate}", "PROFILE") is not None:
        link_customer(deps, customer_id, str(candidate))
        return str(candidate)
    raise NotLinkedYetError(f"customer {customer_id} is not linked to a subscriber yet")


def ledger_owner(deps: BillingDeps, customer_id: str | None) -> tuple[str, str | None]:
    """Return the partition for the customer's ledger rows, and its subscriber (None once deleted)."""
    try:
        subscriber_id = subscriber_for(deps, customer_id)
    except SubscriberErasedError as exc:
        return exc.ledger_pk, None
    return f"SUB#{subscriber_id}", subscriber_id


@contextmanager
def subscription_lease(deps: BillingDeps, subscription_id: str) -> Iterator[None]:
    """Hold the subscription's lease; raises SubscriptionBusyError when another consumer has it."""
    token = secrets.token_hex(8)
    now = epoch(deps.clock())
    taken = deps.table.put(
        {
            "pk": f"STRIPESUB#{subscription_id}",
            "sk": "LEASE",
            "holder": token,
            "lease_until": now + LEASE_SECONDS,
            "expires_at": now + LEASE_SECONDS + 3600,
        },
        condition="attribute_not_exists(pk) OR lease_until < :now",
        values={":now": now},
    )
    if not taken:
        raise SubscriptionBusyError(f"subscription {subscription_id} is being applied elsewhere")
    try:
        yield
    finally:
        deps.table.delete(
            f"STRIPESUB#{subscription_id}",
            "LEASE",
            condition="holder = :holder",
            values={":holder": token},
        )


def sync_subscription(
    deps: BillingDeps, gateway: StripeGateway, subscription_id: str, stripe_event_id: str
) -> None:
    """Apply a subscription's current status to its subscriber's entitlement.

    The subscription is fetched and written under its lease, so of two consumers applying
    events of one subscription, the one that fetched later also writes later.
    """
    with subscription_lease(deps, subscription_id):
        subscription = gateway.subscription(subscription_id)
        subscriber_id = subscriber_for(
            deps, _id(subscription.get("customer")), subscription.get("metadata")
        )
        _write_subscription(deps, subscription, subscriber_id, stripe_event_id)


def _write_subscription(
    deps: BillingDeps, subscription: dict[str, Any], subscriber_id: str, stripe_event_id: str
) -> None:
    subscription_id = str(subscription["id"])
    profile = deps.table.get(f"SUB#{subscriber_id}", "PROFILE") or {}
    now = epoch(deps.clock())
    status = str(subscription["status"])
    past_due_since = profile.get("past_due_since") if status == "past_due" else None
    entitlement = entitlements.decide(status, now, past_due_since, deps.grace_seconds)
    items = subscription.get("items", {}).get("data", [])
    period_end = max((int(item.get("current_period_end") or 0) for item in items), default=0)

    expression = (
        "SET #status = :status, subscription_id = :subscription, monitored = :monitored, "
        "entitlement_reason = :reason, current_period_end = :period_end, billing_synced_at = :now"
    )
    values: dict[str, Any] = {
        ":status": status,
        ":subscription": subscription_id,
        ":monitored": entitlement.monitored,
        ":reason": entitlement.reason,
        ":period_end": period_end,
        ":now": now,
    }
    if status == "past_due":
        expression += ", past_due_since = if_not_exists(past_due_since, :now)"
    if entitlement.monitored:
        expression += ", gsi1pk = :entitled, gsi1sk = :subscriber"
        values[":entitled"] = ENTITLED_INDEX_KEY
        values[":subscriber"] = subscriber_id
    removals = [
        name
        for name, keep in (
            ("past_due_since", status == "past_due"),
            ("gsi1pk", entitlement.monitored),
            ("gsi1sk", entitlement.monitored),
        )
        if not keep
    ]
    if removals:
        expression += " REMOVE " + ", ".join(removals)
    applied = deps.table.update(
        f"SUB#{subscriber_id}",
        "PROFILE",
        expression,
        values=values,
        names={"#status": "status"},
        condition="attribute_exists(pk)",
    )
    if applied is None:
        # The account was deleted since its link was read; the update must not recreate it.
        logger.info(
            "subscription of a deleted account ignored",
            extra={"subscription_id": subscription_id},
        )
        return

    previous = profile.get("status")
    if previous != status or profile.get("monitored") != entitlement.monitored:
        deps.publisher.publish(
            [
                SubscriptionChanged(
                    event_id=f"evt_subscription_{stripe_event_id}",
                    subscriber_id=subscriber_id,
                    subscription_id=subscription_id,
                    status=status,
                    previous_status=previous,
                    monitored=entitlement.monitored,
                )
            ]
        )


def _ledger_item(
    owner_pk: str,
    created: int,
    kind: str,
    object_id: str,
    amount: int,
    currency: str,
    stripe_ids: dict[str, str | None],
    settlement: dict[str, Any] | None,
) -> dict[str, Any]:
    money = parse_stripe_amount(amount, currency)
    day = _utc_day(created)
    item: dict[str, Any] = {
        "pk": owner_pk,
        "sk": f"LEDGER#{created:010d}#{kind}#{object_id}",
        "kind": kind,
        "amount": money.amount,
        "currency": money.currency,
        "created": created,
        "stripe_ids": {key: value for key, value in stripe_ids.items() if value},
        "gsi1pk": f"LEDGER#{day}",
        "gsi1sk": f"{created:010d}#{kind}#{object_id}",
    }
    if settlement:
        settled = parse_stripe_amount(settlement["amount"], settlement["currency"])
        item["settlement_amount"] = settled.amount
        item["settlement_currency"] = settled.currency
        fee = settlement.get("fee")
        if isinstance(fee, int):
            item["fee_amount"] = fee
        item["stripe_ids"]["balance_transaction"] = settlement["id"]
    return item


def _utc_day(epoch_seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y%m%d")


def write_ledger(deps: BillingDeps, item: dict[str, Any]) -> None:
    """Write one ledger item; the same money movement always has the same key, so it is written once."""
    deps.table.put(item, condition="attribute_not_exists(pk)")


def _balance(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) and "amount" in value else None


def on_checkout_completed(deps: BillingDeps, gateway: StripeGateway, event: dict[str, Any]) -> None:
    """Link the customer to the subscriber who checked out, then apply the subscription or purchase.

    A purchase paid with a delayed method (a bank debit) completes unpaid. Its later
    `checkout.session.async_payment_succeeded` event comes here too and finds it paid.
    """
    session = gateway.checkout_session(str(event["data"]["object"]["id"]))
    subscriber_id = session.get("client_reference_id") or (session.get("metadata") or {}).get(
        "subscriber_id"
    )
    customer_id = _id(session.get("customer"))
    if not subscriber_id or not customer_id:
        raise NotLinkedYetError(f"checkout session {session['id']} has no subscriber or customer")
    link = deps.table.get(f"STRIPECUS#{customer_id}", "LINK") or {}
    if link.get("erased_ledger_pk"):
        if session.get("mode") == "payment" and session.get("payment_status") == "paid":
            _record_purchase(deps, gateway, str(link["erased_ledger_pk"]), None, session)
        raise SubscriberErasedError(customer_id, str(link["erased_ledger_pk"]))
    link_customer(deps, customer_id, str(subscriber_id))
    subscription_id = _id(session.get("subscription"))
    if subscription_id:
        sync_subscription(deps, gateway, subscription_id, str(event["id"]))
    if session.get("mode") == "payment" and session.get("payment_status") == "paid":
        _record_purchase(deps, gateway, f"SUB#{subscriber_id}", str(subscriber_id), session)


def _record_purchase(
    deps: BillingDeps,
    gateway: StripeGateway,
    owner_pk: str,
    subscriber_id: str | None,
    session: dict[str, Any],
) -> None:
    """Write a one-off purchase's payment to the ledger, and the purchase to a live account.

    The purchase record and the report it bought are written once per session (see
    `purchases.record_purchase`).
    """
    charge: dict[str, Any] = {}
    intent_id = _id(session.get("payment_intent"))
    if intent_id:
        charge_id = _id(gateway.payment_intent(intent_id).get("latest_charge"))
        charge = gateway.charge(charge_id) if charge_id else {}
    created = int(session.get("created") or epoch(deps.clock()))
    write_ledger(
        deps,
        _ledger_item(
            owner_pk,
            created,
            "purchase_paid",
            str(session["id"]),
            int(session["amount_total"]),
            str(session["currency"]),
            {
                "checkout_session": str(session["id"]),
                "payment_intent": intent_id,
                "charge": _id(charge) if charge else None,
            },
            _balance(charge.get("balance_transaction")) if charge else None,
        ),
    )
    if subscriber_id is None:
        return
    purchases.record_purchase(
        deps.table, deps.reports, subscriber_id, session, charge, created, deps.clock()
    )


def on_subscription_event(deps: BillingDeps, gateway: StripeGateway, event: dict[str, Any]) -> None:
    """Apply the subscription's current state, whichever of its events arrived."""
    sync_subscription(deps, gateway, str(event["data"]["object"]["id"]), str(event["id"]))


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    details = ((invoice.get("parent") or {}).get("subscription_details")) or {}
    return _id(details.get("subscription")) or _id(invoice.get("subscription"))


def on_invoice_paid(deps: BillingDeps, gateway: StripeGateway, event: dict[str, Any]) -> None:
    """Write the payment to the ledger and re-apply the subscription it paid for."""
    invoice = gateway.invoice(str(event["data"]["object"]["id"]))
    owner_pk, subscriber_id = ledger_owner(deps, _id(invoice.get("customer")))

    charge_id = None
    for payment in (invoice.get("payments") or {}).get("data", []):
        if payment.get("status", "paid") == "paid":
            charge_id = _id((payment.get("payment") or {}).get("charge")) or charge_id
    # An invoice includes its payments only on request. Older API versions (and localstripe)
    # name the charge on the invoice itself.
    if charge_id is None:
        charge_id = gateway.invoice_payment_charge(str(invoice["id"])) or _id(invoice.get("charge"))
    charge = gateway.charge(charge_id) if charge_id else {}

    paid_at = int(invoice.get("status_transitions", {}).get("paid_at") or invoice["created"])
    item = _ledger_item(
        owner_pk,
        paid_at,
        "invoice_paid",
        str(invoice["id"]),
        int(invoice["amount_paid"]),
        str(invoice["currency"]),
        {"invoice": str(invoice["id"]), "charge": _id(charge) if charge else None},
        _balance(charge.get("balance_transaction")) if charge else None,
    )
    write_ledger(deps, item)
    if subscriber_id is None:
        return  # a deleted account: the payment is archived, and nothing else is applied
    dunning.resolve(deps.table, subscriber_id, str(invoice["id"]), epoch(deps.clock()))

    card = ((charge.get("payment_method_details") or {}).get("card") or {}) if charge else {}
    card_fingerprint = card.get("fingerprint")
    referrals.record_payment(deps.table, subscriber_id, item["currency"], card_fingerprint)
    referrals.reward_referrer(
        deps.table,
        gateway,
        deps.referral,
        subscriber_id,
        invoice,
        card_fingerprint,
        epoch(deps.clock()),
    )

    subscription_id = _invoice_subscription(invoice)
    if subscription_id:
        sync_subscription(deps, gateway, subscription_id, str(event["id"]))


def on_invoice_payment_failed(
    deps: BillingDeps, gateway: StripeGateway, event: dict[str, Any]
) -> None:
    """Announce the failed payment and re-apply the subscription (it may now be past due)."""
    invoice = gateway.invoice(str(event["data"]["object"]["id"]))
    subscriber_id = subscriber_for(deps, _id(invoice.get("customer")))
    subscription_id = _invoice_subscription(invoice)
    if subscription_id:
        sync_subscription(deps, gateway, subscription_id, str(event["id"]))
    if invoice.get("status") == "paid":
        return  # paid since the failure: nothing to tell the subscriber
    if deps.notices is not None:
        now = epoch(deps.clock())
        dunning.record_failure(
            deps.table, deps.notices, subscriber_id, invoice, now + deps.grace_seconds, now
        )
    deps.publisher.publish(
        [
            PaymentFailed(
                event_id=f"evt_payment_failed_{event['id']}",
                subscriber_id=subscriber_id,
                invoice_id=str(invoice["id"]),
                attempt_count=int(invoice.get("attempt_count") or 1),
            )
        ]
    )


def on_invoice_finalized(deps: BillingDeps, gateway: StripeGateway, event: dict[str, Any]) -> None:
    """Check that the invoice's customer is linked; finalizing moves no money."""
    invoice = gateway.invoice(str(event["data"]["object"]["id"]))
    subscriber_for(deps, _id(invoice.get("customer")))


def on_charge_refunded(deps: BillingDeps, gateway: StripeGateway, event: dict[str, Any]) -> None:
    """Write each refund of the charge to the ledger, and mark a fully refunded purchase."""
    charge = gateway.charge(str(event["data"]["object"]["id"]))
    owner_pk, subscriber_id = ledger_owner(deps, _id(charge.get("customer")))
    for refund in (charge.get("refunds") or {}).get("data", []):
        if refund.get("status") not in ("succeeded", "pending"):
            continue
        write_ledger(
            deps,
            _ledger_item(
                owner_pk,
                int(refund["created"]),
                "refund",
                str(refund["id"]),
                -int(refund["amount"]),
                str(refund["currency"]),
                {"charge": str(charge["id"]), "refund": str(refund["id"])},
                None,
            ),
        )
    if subscriber_id is not None and charge.get("refunded"):
        purchases.mark_refunded(deps.table, subscriber_id, str(charge["id"]), epoch(deps.clock()))


def on_dispute(deps: BillingDeps, gateway: StripeGateway, event: dict[str, Any]) -> None:
    """Write each balance movement of the dispute (withdrawal, reinstatement) to the ledger."""
    dispute = gateway.dispute(str(event["data"]["object"]["id"]))
    charge_id = _id(dispute.get("charge"))
    charge = gateway.charge(charge_id) if charge_id else {}
    owner_pk, _ = ledger_owner(deps, _id(charge.get("customer")))
    movements = dispute.get("balance_transactions") or []
    for movement in movements:
        write_ledger(
            deps,
            _ledger_item(
                owner_pk,
                int(movement["created"]),
                "dispute",
                f"{dispute['id']}#{movement['id']}",
                int(movement["amount"]),
                str(movement["currency"]),
                {"dispute": str(dispute["id"]), "charge": charge_id},
                # The movement is itself a balance transaction: its fee is Stripe's dispute fee.
                _balance(movement),
            ),
        )


def on_customer_deleted(deps: BillingDeps, gateway: StripeGateway, event: dict[str, Any]) -> None:
    """Mark the subscriber's Stripe customer as deleted; their subscriptions end with it."""
    customer_id = str(event["data"]["object"]["id"])
    link = deps.table.get(f"STRIPECUS#{customer_id}", "LINK")
    if link is None or link.get("erased_ledger_pk"):
        return  # never linked, or its account was deleted: no profile refers to it
    deps.table.update(
        f"SUB#{link['subscriber_id']}",
        "PROFILE",
        "SET stripe_customer_deleted = :true",
        values={":true": True},
    )


Handler = Callable[[BillingDeps, StripeGateway, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": on_checkout_completed,
    "checkout.session.async_payment_succeeded": on_checkout_completed,
    "customer.subscription.created": on_subscription_event,
    "customer.subscription.updated": on_subscription_event,
    "customer.subscription.deleted": on_subscription_event,
    "customer.subscription.paused": on_subscription_event,
    "customer.subscription.resumed": on_subscription_event,
    "customer.subscription.trial_will_end": on_subscription_event,
    "invoice.paid": on_invoice_paid,
    "invoice.payment_failed": on_invoice_payment_failed,
    "invoice.finalized": on_invoice_finalized,
    "charge.refunded": on_charge_refunded,
    "charge.dispute.created": on_dispute,
    "charge.dispute.closed": on_dispute,
    "customer.deleted": on_customer_deleted,
}
