"""Repair mode: re-apply the Stripe events of rows missing in the ledger through billing.

Each event goes through `billing.apply_event`, the idempotent path of the Stripe event
consumer: it fetches the current objects from Stripe, writes the ledger with conditional puts
and marks the event applied. A second run finds the rows matched and repairs nothing, and an
event applied meanwhile by the consumer comes back as `duplicate`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from idsentry.adapters.stripe_lists import StripeLists
from idsentry.errors import ProviderError
from idsentry.services.billing import (
    BillingDeps,
    NotLinkedYetError,
    SubscriptionBusyError,
    apply_event,
)
from idsentry.services.reconcile_classify import Evidence, object_id
from idsentry.services.reconcile_model import MISSING_IN_LEDGER, Period, Repair, Row

logger = logging.getLogger(__name__)

# The event types whose handlers write what each kind of row misses.
# NOTE: Stripe keeps events for 30 days, so a row older than that cannot be repaired this way.
REPAIR_EVENT_TYPES: Final = (
    "invoice.paid",
    "checkout.session.completed",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
)


def repair(
    rows: Sequence[Row],
    evidence: Evidence,
    lists: StripeLists,
    billing: BillingDeps,
    period: Period,
) -> list[Repair]:
    """Re-apply the events of every row missing in the ledger and return what each did."""
    missing = [row for row in rows if row.row_class == MISSING_IN_LEDGER]
    if not missing:
        return []

    events = list(
        lists.list_all(
            "events", {"types": list(REPAIR_EVENT_TYPES), "created": {"gte": period.start}}
        )
    )
    # Stripe lists newest first, so the events are reversed to apply them in the order they happened.
    events.reverse()
    charges = {str(item["id"]): item for item in evidence.charges}
    invoice_of_charge = _invoice_of_charge(evidence, missing, billing)
    refunds = {str(item["id"]): item for item in evidence.refunds}

    repairs: list[Repair] = []
    outcomes: dict[str, str] = {}
    for row in missing:
        matching = [
            event
            for event in events
            if _explains(
                row, event["type"], event["data"]["object"], charges, invoice_of_charge, refunds
            )
        ]
        if not matching:
            repairs.append(Repair(row.kind, row.stripe_id, "no_event"))
            continue
        for event in matching:
            event_id = str(event["id"])
            if event_id not in outcomes:
                outcomes[event_id] = _apply(billing, event_id)
            repairs.append(
                Repair(row.kind, row.stripe_id, outcomes[event_id], event_id, str(event["type"]))
            )

    logger.info(
        "reconciliation repair finished",
        extra={
            "rows_missing": len(missing),
            "events_applied": sum(1 for outcome in outcomes.values() if outcome == "applied"),
            "events_seen": len(outcomes),
        },
    )
    return repairs


def _invoice_of_charge(
    evidence: Evidence, missing: Sequence[Row], billing: BillingDeps
) -> dict[str, str]:
    """Map charges to the invoices they paid.

    Older API versions and localstripe name the charge on the invoice. The pinned version
    lists it in the Invoice Payments API instead, which is asked for the missing invoices only.
    """
    mapping = {
        charge_id: str(invoice["id"])
        for invoice in evidence.invoices
        if (charge_id := object_id(invoice.get("charge")))
    }
    known = set(mapping.values())
    gateway = billing.stripe()
    for row in missing:
        if row.kind == "invoice" and row.stripe_id not in known:
            charge_id = gateway.invoice_payment_charge(row.stripe_id)
            if charge_id:
                mapping[charge_id] = row.stripe_id
    return mapping


def _apply(billing: BillingDeps, event_id: str) -> str:
    try:
        return apply_event(billing, event_id)
    except NotLinkedYetError:
        outcome = "not_linked"
    except SubscriptionBusyError:
        outcome = "busy"
    except ProviderError as exc:
        outcome = "failed"
        logger.warning(
            "reconciliation repair event failed",
            extra={"event_id": event_id, "provider": exc.provider, "transient": exc.transient},
        )
    logger.info(
        "reconciliation repair event not applied", extra={"event_id": event_id, "outcome": outcome}
    )
    return outcome


def _explains(
    row: Row,
    event_type: str,
    obj: Mapping[str, Any],
    charges: Mapping[str, Mapping[str, Any]],
    invoice_of_charge: Mapping[str, str],
    refunds: Mapping[str, Mapping[str, Any]],
) -> bool:
    """Return whether applying this event writes what the row misses."""
    if row.kind == "invoice":
        return event_type == "invoice.paid" and obj.get("id") == row.stripe_id
    if row.kind == "charge":
        invoice_id = invoice_of_charge.get(row.stripe_id)
        if invoice_id is not None:
            return event_type == "invoice.paid" and obj.get("id") == invoice_id
        charge = charges.get(row.stripe_id) or {}
        intent = object_id(charge.get("payment_intent"))
        return (
            event_type == "checkout.session.completed"
            and intent is not None
            and object_id(obj.get("payment_intent")) == intent
        )
    if row.kind == "refund":
        refund = refunds.get(row.stripe_id) or {}
        return event_type == "charge.refunded" and obj.get("id") == object_id(refund.get("charge"))
    if row.kind == "dispute":
        return event_type.startswith("charge.dispute.") and obj.get("id") == row.stripe_id
    if row.kind == "subscription":
        return (
            event_type == "checkout.session.completed"
            and object_id(obj.get("subscription")) == row.stripe_id
        )
    if row.kind == "checkout_session":
        return event_type == "checkout.session.completed" and obj.get("id") == row.stripe_id
    return False
