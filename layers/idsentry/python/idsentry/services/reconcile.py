"""Finance reconciliation: Stripe against the money ledger and entitlements, for a period.

`reconcile()` pulls the period from Stripe (`reconcile_pull`), classifies every item
(`reconcile_classify`), optionally re-applies lost webhook events (`reconcile_repair`), and
returns a `Reconciliation` that `render_files()` turns into a CSV, an HTML summary in 简体中文 or
English, and JSON. Period boundaries are Asia/Shanghai midnights (`reconcile_model.Period`).
The caller stores the files and notifies finance.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, replace

from idsentry.adapters.stripe_lists import StripeLists
from idsentry.clock import Clock, epoch
from idsentry.services import entitlements
from idsentry.services.billing import BillingDeps
from idsentry.services.reconcile_classify import Evidence, classify, object_id
from idsentry.services.reconcile_html import render_html
from idsentry.services.reconcile_ledger import LedgerSource
from idsentry.services.reconcile_model import (
    Period,
    Reconciliation,
    Repair,
    Totals,
)
from idsentry.services.reconcile_output import render_csv, render_json
from idsentry.services.reconcile_pull import entries_of_paid_invoices, gather
from idsentry.services.reconcile_repair import repair

logger = logging.getLogger(__name__)


@dataclass
class ReconcileDeps:
    """Dependencies of a reconciliation: Stripe's lists, the ledger and a clock.

    `billing` is the Stripe event consumer's dependencies, needed for repair mode only.
    """

    stripe: StripeLists
    ledger: LedgerSource
    clock: Clock
    grace_seconds: int = entitlements.DEFAULT_GRACE_SECONDS
    billing: BillingDeps | None = None


@dataclass(frozen=True)
class ReconciliationFiles:
    """The outputs of one run: the CSV in bytes (UTF-8 with BOM), the HTML summary and JSON."""

    csv: bytes
    html: str
    json: str


def reconcile(
    deps: ReconcileDeps, period: Period, *, repair_missing: bool = False
) -> Reconciliation:
    """Reconcile the period; with `repair_missing`, re-apply the events of rows missing in the ledger.

    After a repair, the ledger is read again and the rows are classified once more against
    the same Stripe evidence, so the result shows what the repair fixed. Raises ValueError
    when repair is asked for without `billing` dependencies.
    """
    if repair_missing and deps.billing is None:
        raise ValueError("repair mode needs the billing dependencies: set ReconcileDeps.billing")
    now = epoch(deps.clock())
    # The client's counts grow over its lifetime, for example across runs in one warm Lambda.
    counted_before = deps.stripe.request_counts()

    evidence, objects = gather(deps.stripe, deps.ledger, period, now, deps.grace_seconds)
    rows = classify(evidence)

    repairs: list[Repair] = []
    if repair_missing:
        assert deps.billing is not None
        repairs = repair(rows, evidence, deps.stripe, deps.billing, period)
        if any(item.outcome == "applied" for item in repairs):
            evidence = _reread_ledger(deps, evidence)
            rows = classify(evidence)

    result = Reconciliation(
        period=period,
        generated_at=now,
        rows=tuple(rows),
        totals=totals(evidence),
        repairs=tuple(repairs),
        objects=objects,
        stripe_requests=_requests_since(counted_before, deps.stripe.request_counts()),
    )
    logger.info(
        "reconciliation finished",
        extra={
            "period": period.label,
            "rows": len(rows),
            "repaired": sum(1 for item in repairs if item.outcome == "applied"),
            "stripe_requests": sum(result.stripe_requests.values()),
            **result.counts(),
        },
    )
    return result


def _requests_since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    counts = {route: count - before.get(route, 0) for route, count in after.items()}
    return {route: count for route, count in counts.items() if count > 0}


def render_files(result: Reconciliation, locale: str = "zh-CN") -> ReconciliationFiles:
    """Render the CSV header and HTML summary in `locale` ("zh-CN" or "en"), and the JSON."""
    return ReconciliationFiles(
        csv=render_csv(result, locale),
        html=render_html(result, locale),
        json=render_json(result),
    )


def _reread_ledger(deps: ReconcileDeps, evidence: Evidence) -> Evidence:
    """Return the evidence with the ledger entries read again and the same Stripe objects."""
    invoice_entries = [
        entry for entry in evidence.entries if not evidence.period.contains(entry.created)
    ]
    fresh = replace(evidence, entries=deps.ledger.entries(evidence.period) + invoice_entries)
    customers = {
        customer
        for item in (*evidence.invoices, *evidence.charges)
        if (customer := object_id(item.get("customer")))
    }
    fresh.owners = {**evidence.owners, **deps.ledger.owners(customers)}
    fresh.entries += entries_of_paid_invoices(deps.ledger, fresh)
    return fresh


def totals(evidence: Evidence) -> dict[str, Totals]:
    """Return the period's money per currency: Stripe's movements and the ledger's entries."""
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for charge in evidence.charges:
        if charge.get("status") == "succeeded":
            sums[str(charge["currency"])]["stripe_payments"] += int(charge["amount"])
    for refund in evidence.refunds:
        if refund.get("status") in ("succeeded", "pending"):
            sums[str(refund["currency"])]["stripe_refunds"] -= int(refund["amount"])
    for dispute in evidence.disputes:
        for movement in dispute.get("balance_transactions") or []:
            if evidence.period.contains(int(movement.get("created") or 0)):
                sums[str(movement["currency"])]["stripe_disputes"] += int(movement["amount"])
    for payout in evidence.payouts:
        sums[str(payout["currency"])]["stripe_payouts"] += int(payout["amount"])

    ledger_fields: dict[str, str] = {
        "invoice_paid": "ledger_payments",
        "purchase_paid": "ledger_payments",
        "refund": "ledger_refunds",
        "dispute": "ledger_disputes",
    }
    for entry in evidence.entries:
        name = ledger_fields.get(entry.kind)
        if name is not None and evidence.period.contains(entry.created):
            sums[entry.currency][name] += entry.amount
    return {currency: Totals(**values) for currency, values in sums.items()}
