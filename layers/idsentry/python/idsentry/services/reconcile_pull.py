"""Gather a period's evidence: Stripe's lists, the ledger entries and the subscribers' grants.

The lists by period are invoices, charges, refunds, disputes and balance transactions by
`created`, and payouts by `arrival_date`, each in Asia/Shanghai days. Then each payout's balance
transactions (`payout=`), and Stripe's subscriptions that are not canceled.

Single objects are fetched only where the lists leave a question. These are the ledger entry of
a paid invoice dated outside the period and a balance transaction outside the period. They are
also the subscription of a monitored subscriber that Stripe did not list, and the Stripe object
of a ledger entry that nothing explained.
"""

from __future__ import annotations

import logging
from typing import Final

from idsentry.adapters.stripe_lists import StripeLists
from idsentry.services.reconcile_classify import Evidence, object_id, refs_to_fetch
from idsentry.services.reconcile_ledger import LedgerSource
from idsentry.services.reconcile_model import LedgerEntry, Period

logger = logging.getLogger(__name__)

# The lists of a period and the filter each is dated by.
PERIOD_LISTS: Final = (
    ("invoices", "created"),
    ("charges", "created"),
    ("refunds", "created"),
    ("disputes", "created"),
    ("balance_transactions", "created"),
    ("payouts", "arrival_date"),
)
# The SDK service that fetches a row kind by id.
RESOURCES: Final = {
    "invoice": "invoices",
    "charge": "charges",
    "refund": "refunds",
    "dispute": "disputes",
    "subscription": "subscriptions",
    "checkout_session": "checkout.sessions",
    "balance_transaction": "balance_transactions",
}


def gather(
    lists: StripeLists,
    ledger: LedgerSource,
    period: Period,
    now: int,
    grace_seconds: int,
) -> tuple[Evidence, dict[str, int]]:
    """Return the period's evidence and the number of objects each list returned."""
    evidence = Evidence(period=period, now=now, grace_seconds=grace_seconds)
    pulled: dict[str, int] = {}

    window = {"gte": period.start, "lt": period.end}
    for resource, dated_by in PERIOD_LISTS:
        found = list(lists.list_all(resource, {dated_by: window}))
        pulled[resource] = len(found)
        if resource == "balance_transactions":
            evidence.balance_transactions = {str(item["id"]): item for item in found}
        else:
            setattr(evidence, resource, found)
    payout_members = 0
    for payout in evidence.payouts:
        members = list(lists.list_all("balance_transactions", {"payout": str(payout["id"])}))
        evidence.payout_transactions[str(payout["id"])] = members
        payout_members += len(members)
    pulled["payout_balance_transactions"] = payout_members
    evidence.subscriptions = list(lists.list_all("subscriptions", {}))
    pulled["subscriptions"] = len(evidence.subscriptions)

    customers = {
        customer
        for item in (*evidence.invoices, *evidence.charges, *evidence.subscriptions)
        if (customer := object_id(item.get("customer")))
    }
    evidence.owners = ledger.owners(customers)
    evidence.entries = ledger.entries(period)
    evidence.entries += entries_of_paid_invoices(ledger, evidence)

    _fetch_balance_transactions(lists, evidence)
    _gather_entitlements(lists, ledger, evidence)
    for ref in refs_to_fetch(evidence):
        evidence.fetched[ref] = lists.retrieve(RESOURCES[ref[0]], ref[1])

    logger.info(
        "reconciliation evidence gathered",
        extra={"period": period.label, "ledger_entries": len(evidence.entries), **pulled},
    )
    return evidence, pulled


def entries_of_paid_invoices(ledger: LedgerSource, evidence: Evidence) -> list[LedgerEntry]:
    """Read the entries of paid invoices whose payment time lies outside the period.

    Billing keys an invoice's entry by its payment time (`status_transitions.paid_at`), so an
    invoice created at the end of the period and paid after it has its entry on a later day.
    """
    known = {entry.stripe_ids.get("invoice") for entry in evidence.entries}
    keys: list[tuple[str, str]] = []
    for invoice in evidence.invoices:
        if invoice.get("status") != "paid" or invoice["id"] in known:
            continue
        owner_pk = evidence.owners.get(object_id(invoice.get("customer")) or "")
        transitions = invoice.get("status_transitions") or {}
        paid_at = int(transitions.get("paid_at") or invoice.get("created") or 0)
        if owner_pk is not None:
            keys.append((owner_pk, f"LEDGER#{paid_at:010d}#invoice_paid#{invoice['id']}"))
    return ledger.entries_at(keys) if keys else []


def _fetch_balance_transactions(lists: StripeLists, evidence: Evidence) -> None:
    """Fetch the balance transactions of pulled charges and refunds that the list left out."""
    missing: set[str] = set()
    for item in (*evidence.charges, *evidence.refunds):
        value = item.get("balance_transaction")
        transaction_id = None if isinstance(value, dict) else object_id(value)
        if transaction_id and transaction_id not in evidence.balance_transactions:
            missing.add(transaction_id)
    for transaction_id in sorted(missing):
        found = lists.retrieve("balance_transactions", transaction_id)
        if found is not None:
            evidence.balance_transactions[transaction_id] = found


def _gather_entitlements(lists: StripeLists, ledger: LedgerSource, evidence: Evidence) -> None:
    """Read the monitored subscribers and the profiles behind every listed subscription."""
    evidence.entitled = ledger.entitled_subscriber_ids()
    subscribers = set(evidence.entitled)
    subscribers |= {
        owner.removeprefix("SUB#") for owner in evidence.owners.values() if owner.startswith("SUB#")
    }
    evidence.profiles = ledger.profiles(subscribers)

    listed = {str(item["id"]) for item in evidence.subscriptions}
    monitored = [evidence.profiles[item] for item in evidence.entitled if item in evidence.profiles]
    recorded = {str(profile.subscription_id) for profile in monitored if profile.subscription_id}
    for subscription_id in sorted(recorded - listed):
        evidence.fetched[("subscription", subscription_id)] = lists.retrieve(
            "subscriptions", subscription_id
        )
