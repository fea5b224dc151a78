"""A fixed day of Stripe objects and ledger entries, classified by the real reconciliation code.

The day is 2026-12-04 in Beijing time. Six subscribers renew at ¥18.00, one renews at
US$2.99 settled in CNY. The ledger lacks the invoice.paid of one renewal (a lost webhook),
records another renewal at half price, and has the refund of one charge and the withdrawal of
one dispute. One subscription is unpaid in Stripe while the service still monitors its
subscriber, and one payout pays out three of the charges. `sample_reconciliation()` runs
`reconcile_classify.classify` and `reconcile.totals` over these objects, so the rows, classes
and totals are what the service computes for such a day. The Stripe requests are left empty,
because nothing is fetched.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

_LAYER = str(Path(__file__).resolve().parents[2] / "layers" / "idsentry" / "python")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)

from idsentry.services.reconcile import totals  # noqa: E402
from idsentry.services.reconcile_classify import Evidence, classify  # noqa: E402
from idsentry.services.reconcile_model import (  # noqa: E402
    LedgerEntry,
    Period,
    Profile,
    Reconciliation,
)

PERIOD = Period(date(2026, 12, 4), date(2026, 12, 4))
# 09:00 on 5 December in Beijing time, when the daily run reconciles the day before.
GENERATED_AT = PERIOD.end + 9 * 3600
RENEWAL_CNY = 1800
RENEWAL_USD = 299
# Stripe's fee on a ¥18.00 card charge in this sample, and its dispute fee.
CARD_FEE = 70
DISPUTE_FEE = 11000
# CNY per USD on the sample day, as Stripe's balance transaction states it.
USD_RATE = 7.1234


def _at(hour: int, minute: int = 0) -> int:
    """Return epoch seconds of a Beijing time on the sample day."""
    return PERIOD.start + hour * 3600 + minute * 60


def _subscriber(index: int) -> str:
    # The service's subscriber ids are "sbr_" and a 26-character ULID.
    return f"sbr_01JSAMPLE{index:018d}"


def _transaction(
    transaction_id: str, source: str, kind: str, amount: int, fee: int, created: int
) -> dict[str, Any]:
    return {
        "id": transaction_id,
        "object": "balance_transaction",
        "source": source,
        "type": kind,
        "amount": amount,
        "fee": fee,
        "net": amount - fee,
        "currency": "cny",
        "created": created,
    }


def _paid_entry(
    index: int, invoice: str, charge: str, transaction: dict[str, Any], amount: int, currency: str
) -> LedgerEntry:
    return LedgerEntry(
        owner_pk=f"SUB#{_subscriber(index)}",
        kind="invoice_paid",
        amount=amount,
        currency=currency,
        created=int(transaction["created"]) + 5,
        stripe_ids={
            "invoice": invoice,
            "charge": charge,
            "balance_transaction": str(transaction["id"]),
        },
        settlement_amount=int(transaction["amount"]),
        settlement_currency="cny",
        fee_amount=int(transaction["fee"]),
    )


def sample_evidence() -> Evidence:
    """Return the sample day's Stripe objects and ledger entries as the pulls would fetch them."""
    evidence = Evidence(period=PERIOD, now=GENERATED_AT)

    # Renewals: subscriber 3's invoice.paid never arrived, and subscriber 5's entry says ¥9.00.
    for index in range(1, 7):
        created = _at(8 + index, 10 * index)
        invoice, charge, transaction_id = (
            f"in_sample{index:02d}",
            f"ch_sample{index:02d}",
            f"txn_sample{index:02d}",
        )
        customer = f"cus_sample{index:02d}"
        transaction = _transaction(transaction_id, charge, "charge", RENEWAL_CNY, CARD_FEE, created)
        _add_renewal(evidence, index, customer, created, RENEWAL_CNY, "cny", transaction)
        if index == 3:
            continue
        entry = _paid_entry(index, invoice, charge, transaction, RENEWAL_CNY, "cny")
        if index == 5:
            entry = replace(entry, amount=RENEWAL_CNY // 2)
        evidence.entries.append(entry)

    # A renewal in US dollars, settled in yuan at the day's rate.
    usd_created = _at(21, 5)
    settled = round(RENEWAL_USD * USD_RATE)
    usd_transaction = _transaction(
        "txn_sample07", "ch_sample07", "charge", settled, 66, usd_created
    )
    usd_transaction["exchange_rate"] = USD_RATE
    _add_renewal(evidence, 7, "cus_sample07", usd_created, RENEWAL_USD, "usd", usd_transaction)
    evidence.entries.append(
        _paid_entry(7, "in_sample07", "ch_sample07", usd_transaction, RENEWAL_USD, "usd")
    )

    _add_refund(evidence)
    _add_dispute(evidence)
    _add_payout(evidence)

    # Subscriber 6's card was declined for good: Stripe marked the subscription unpaid, and
    # the webhook that would end monitoring has not been applied yet.
    evidence.subscriptions[5]["status"] = "unpaid"
    return evidence


def _add_renewal(
    evidence: Evidence,
    index: int,
    customer: str,
    created: int,
    amount: int,
    currency: str,
    transaction: dict[str, Any],
) -> None:
    """Add a paid renewal invoice, its charge and the active subscription of one subscriber."""
    subscriber = _subscriber(index)
    subscription = f"sub_sample{index:02d}"
    evidence.invoices.append(
        {
            "id": f"in_sample{index:02d}",
            "status": "paid",
            "amount_paid": amount,
            "currency": currency,
            "created": created,
            "customer": customer,
            "subscription": subscription,
            "billing_reason": "subscription_cycle",
        }
    )
    evidence.charges.append(
        {
            "id": str(transaction["source"]),
            "status": "succeeded",
            "amount": amount,
            "currency": currency,
            "created": created,
            "customer": customer,
            "balance_transaction": str(transaction["id"]),
        }
    )
    evidence.balance_transactions[str(transaction["id"])] = transaction
    evidence.subscriptions.append(
        {
            "id": subscription,
            "status": "active",
            "customer": customer,
            "created": created - 30 * 86400,
        }
    )
    evidence.owners[customer] = f"SUB#{subscriber}"
    evidence.profiles[subscriber] = Profile(subscriber, subscription, "active", monitored=True)
    evidence.entitled.append(subscriber)


def _add_refund(evidence: Evidence) -> None:
    """Refund subscriber 2's charge in full, with the ledger's refund entry."""
    created = _at(16, 30)
    transaction = _transaction(
        "txn_sample_refund", "re_sample01", "refund", -RENEWAL_CNY, 0, created
    )
    evidence.refunds.append(
        {
            "id": "re_sample01",
            "status": "succeeded",
            "amount": RENEWAL_CNY,
            "currency": "cny",
            "charge": "ch_sample02",
            "created": created,
            "balance_transaction": transaction["id"],
        }
    )
    evidence.balance_transactions[str(transaction["id"])] = transaction
    evidence.entries.append(
        LedgerEntry(
            owner_pk=f"SUB#{_subscriber(2)}",
            kind="refund",
            amount=-RENEWAL_CNY,
            currency="cny",
            created=created + 4,
            stripe_ids={"refund": "re_sample01", "charge": "ch_sample02"},
            settlement_amount=-RENEWAL_CNY,
            settlement_currency="cny",
        )
    )


def _add_dispute(evidence: Evidence) -> None:
    """Open a dispute of an earlier charge of subscriber 4: Stripe withdraws the amount and a fee."""
    created = _at(18, 45)
    withdrawal = {
        "id": "txn_sample_dispute",
        "amount": -RENEWAL_CNY - DISPUTE_FEE,
        "fee": DISPUTE_FEE,
        "net": -RENEWAL_CNY - DISPUTE_FEE,
        "currency": "cny",
        "created": created,
        "type": "adjustment",
    }
    evidence.disputes.append(
        {
            "id": "dp_sample01",
            "status": "needs_response",
            "amount": RENEWAL_CNY,
            "currency": "cny",
            "charge": "ch_sample_november",
            "created": created,
            "balance_transactions": [withdrawal],
        }
    )
    evidence.entries.append(
        LedgerEntry(
            owner_pk=f"SUB#{_subscriber(4)}",
            kind="dispute",
            amount=-RENEWAL_CNY - DISPUTE_FEE,
            currency="cny",
            created=created + 6,
            stripe_ids={"dispute": "dp_sample01", "balance_transaction": "txn_sample_dispute"},
            settlement_amount=-RENEWAL_CNY - DISPUTE_FEE,
            settlement_currency="cny",
            fee_amount=DISPUTE_FEE,
        )
    )


def _add_payout(evidence: Evidence) -> None:
    """Pay out the net of the first three charges to the bank on the sample day."""
    members = [evidence.balance_transactions[f"txn_sample{index:02d}"] for index in (1, 2, 3)]
    evidence.payouts.append(
        {
            "id": "po_sample01",
            "status": "paid",
            "amount": sum(int(member["net"]) for member in members),
            "currency": "cny",
            "arrival_date": _at(23),
            "created": _at(20),
        }
    )
    evidence.payout_transactions["po_sample01"] = members


def sample_reconciliation() -> Reconciliation:
    """Return the sample day's reconciliation, classified and totalled by the service's code."""
    evidence = sample_evidence()
    return Reconciliation(
        period=PERIOD,
        generated_at=GENERATED_AT,
        rows=tuple(classify(evidence)),
        totals=totals(evidence),
    )
