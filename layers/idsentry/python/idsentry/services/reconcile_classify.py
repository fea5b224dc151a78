"""Classify Stripe objects against the money ledger and entitlements: one row per item.

Like is compared with like. A charge's presentment amount and currency are compared with the
ledger's amount and currency, and the settlement amount and currency of its balance
transaction (after Stripe's conversion) with the ledger's settlement fields. A refund is a
negative ledger amount. A dispute is compared movement by movement: each balance transaction
of the dispute inside the period has its own ledger entry. A payout is compared with the sum
of the `net` of its balance transactions, and a subscription with the subscriber's
entitlement. A ledger entry that no Stripe object of the period explains is looked up in
Stripe by id: Stripe either has it outside the period, or does not have it at all.

Everything here is pure: `Evidence` contains what the pulls fetched, and the same evidence
gives the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from idsentry.money import UnknownCurrencyError, exponent
from idsentry.services import entitlements
from idsentry.services.reconcile_model import (
    AMOUNT_MISMATCH,
    MATCHED,
    MISSING_IN_LEDGER,
    MISSING_IN_STRIPE,
    PAYOUT_MISMATCH,
    STATUS_MISMATCH,
    LedgerEntry,
    Period,
    Profile,
    Row,
)

# Balance transaction types that move a customer's money, which the ledger records through
# their source object. Payouts, Stripe fees and transfers have no ledger entry.
LEDGER_TRANSACTION_TYPES: Final = frozenset(
    {"charge", "payment", "refund", "payment_refund", "adjustment"}
)
# Stripe rounds a converted amount to the settlement currency's minor unit.
CONVERSION_TOLERANCE: Final = 1
MONEY_STATUSES: Final = {
    "charge": frozenset({"succeeded"}),
    "refund": frozenset({"succeeded", "pending"}),
}

Ref = tuple[str, str]


def object_id(value: Any) -> str | None:
    """Return the id of an expandable Stripe field (an id or an expanded object)."""
    if isinstance(value, Mapping):
        return str(value["id"])
    return str(value) if value else None


def entry_ref(entry: LedgerEntry) -> Ref:
    """Return the Stripe object a ledger entry records, as (row kind, id)."""
    ids = entry.stripe_ids
    if entry.kind == "invoice_paid":
        return ("invoice", ids.get("invoice", ""))
    if entry.kind == "purchase_paid":
        if ids.get("charge"):
            return ("charge", ids["charge"])
        return ("checkout_session", ids.get("checkout_session", ""))
    if entry.kind == "refund":
        return ("refund", ids.get("refund", ""))
    return ("dispute", ids.get("dispute", ""))


@dataclass
class Evidence:
    """Everything the pulls fetched for one period, from Stripe and from the service's table."""

    period: Period
    now: int
    grace_seconds: int = entitlements.DEFAULT_GRACE_SECONDS
    invoices: list[dict[str, Any]] = field(default_factory=list)
    charges: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    disputes: list[dict[str, Any]] = field(default_factory=list)
    balance_transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    payouts: list[dict[str, Any]] = field(default_factory=list)
    payout_transactions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    entries: list[LedgerEntry] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    entitled: list[str] = field(default_factory=list)
    # Stripe objects fetched by id for ledger entries outside the pulls: None when Stripe has none.
    fetched: dict[Ref, dict[str, Any] | None] = field(default_factory=dict)


@dataclass
class _Index:
    """The ledger entries by the Stripe ids they record, and which ones a row has used."""

    by_invoice: dict[str, LedgerEntry] = field(default_factory=dict)
    by_charge: dict[str, LedgerEntry] = field(default_factory=dict)
    by_refund: dict[str, LedgerEntry] = field(default_factory=dict)
    by_transaction: dict[str, LedgerEntry] = field(default_factory=dict)
    by_session: dict[str, LedgerEntry] = field(default_factory=dict)
    # The customer of each pulled charge, for the owner of its refunds.
    charge_customers: dict[str, str | None] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)

    @classmethod
    def build(cls, entries: Iterable[LedgerEntry], charges: Iterable[Mapping[str, Any]]) -> _Index:
        index = cls()
        for charge in charges:
            index.charge_customers[str(charge["id"])] = object_id(charge.get("customer"))
        for entry in entries:
            ids = entry.stripe_ids
            if entry.kind == "invoice_paid" and ids.get("invoice"):
                index.by_invoice[ids["invoice"]] = entry
            if entry.kind in ("invoice_paid", "purchase_paid") and ids.get("charge"):
                index.by_charge[ids["charge"]] = entry
            if entry.kind == "purchase_paid" and ids.get("checkout_session"):
                index.by_session[ids["checkout_session"]] = entry
            if entry.kind == "refund" and ids.get("refund"):
                index.by_refund[ids["refund"]] = entry
            if ids.get("balance_transaction"):
                index.by_transaction[ids["balance_transaction"]] = entry
        return index

    def use(self, entry: LedgerEntry | None) -> LedgerEntry | None:
        if entry is not None:
            self.used.add(id(entry))
        return entry


def classify(evidence: Evidence) -> list[Row]:
    """Return one row per Stripe object, subscription and unexplained ledger entry, sorted."""
    index = _Index.build(evidence.entries, evidence.charges)
    rows: list[Row] = []
    pulled: set[Ref] = set()

    for invoice in evidence.invoices:
        pulled.add(("invoice", str(invoice["id"])))
        rows.append(
            invoice_row(invoice, index.use(index.by_invoice.get(str(invoice["id"]))), evidence)
        )
    for charge in evidence.charges:
        pulled.add(("charge", str(charge["id"])))
        rows.append(charge_row(charge, index, evidence))
    for refund in evidence.refunds:
        pulled.add(("refund", str(refund["id"])))
        rows.append(refund_row(refund, index, evidence))
    for dispute in evidence.disputes:
        pulled.add(("dispute", str(dispute["id"])))
        rows.append(dispute_row(dispute, index, evidence))

    sources = {ref[1] for ref in pulled}
    for transaction in sorted(evidence.balance_transactions.values(), key=lambda t: str(t["id"])):
        source = object_id(transaction.get("source"))
        if transaction.get("type") not in LEDGER_TRANSACTION_TYPES or source in sources:
            continue
        if not evidence.period.contains(int(transaction.get("created") or 0)):
            continue
        rows.append(transaction_row(transaction, index, evidence))

    for payout in evidence.payouts:
        rows.append(payout_row(payout, evidence.payout_transactions.get(str(payout["id"]), [])))
    rows.extend(subscription_rows(evidence))

    for entry in unexplained_entries(evidence, index):
        ref = entry_ref(entry)
        if ref in pulled:
            continue
        fetched = evidence.fetched.get(ref)
        if fetched is None:
            rows.append(missing_in_stripe_row(entry, ref, index, evidence))
            continue
        pulled.add(ref)
        rows.append(_with_reason(fetched_row(ref[0], fetched, index, evidence), "outside_period"))

    return sorted(rows, key=Row.sort_key)


def unexplained_entries(evidence: Evidence, index: _Index) -> list[LedgerEntry]:
    """Return the ledger entries of the period that no row has used, oldest first."""
    return sorted(
        (entry for entry in evidence.entries if id(entry) not in index.used),
        key=lambda entry: (entry.created, entry.sort_key),
    )


def refs_to_fetch(evidence: Evidence) -> list[Ref]:
    """Return the Stripe objects to fetch by id before `classify`: those of unexplained entries."""
    index = _Index.build(evidence.entries, evidence.charges)
    classify_into(evidence, index)
    pulled = {("invoice", str(item["id"])) for item in evidence.invoices}
    pulled |= {("charge", str(item["id"])) for item in evidence.charges}
    pulled |= {("refund", str(item["id"])) for item in evidence.refunds}
    pulled |= {("dispute", str(item["id"])) for item in evidence.disputes}
    refs = [entry_ref(entry) for entry in unexplained_entries(evidence, index)]
    return sorted({ref for ref in refs if ref not in pulled and ref[1]})


def classify_into(evidence: Evidence, index: _Index) -> None:
    """Mark the entries that the period's Stripe objects use, without keeping the rows."""
    for invoice in evidence.invoices:
        index.use(index.by_invoice.get(str(invoice["id"])))
    for charge in evidence.charges:
        charge_row(charge, index, evidence)
    for refund in evidence.refunds:
        index.use(index.by_refund.get(str(refund["id"])))
    for dispute in evidence.disputes:
        dispute_row(dispute, index, evidence)


def fetched_row(kind: str, found: dict[str, Any], index: _Index, evidence: Evidence) -> Row:
    if kind == "invoice":
        return invoice_row(found, index.use(index.by_invoice.get(str(found["id"]))), evidence)
    if kind == "charge":
        return charge_row(found, index, evidence)
    if kind == "refund":
        return refund_row(found, index, evidence)
    if kind == "dispute":
        return dispute_row(found, index, evidence, every_movement=True)
    return session_row(found, index.use(index.by_session.get(str(found["id"]))))


# ---------------------------------------------------------------------------------------------
# Rows per kind


def invoice_row(invoice: Mapping[str, Any], entry: LedgerEntry | None, evidence: Evidence) -> Row:
    """Classify an invoice: a paid one needs an `invoice_paid` entry of `amount_paid`, and an
    unpaid one must have none."""
    status = str(invoice.get("status"))
    amount = int(invoice.get("amount_paid") or 0)
    currency = str(invoice.get("currency"))
    base = Row(
        row_class=MATCHED,
        kind="invoice",
        stripe_id=str(invoice["id"]),
        created=int(invoice.get("created") or 0),
        currency=currency,
        stripe_amount=amount,
        stripe_status=status,
        owner_id=_owner_id(evidence, object_id(invoice.get("customer"))),
    )
    if entry is None:
        if status == "paid":
            return _replace(base, MISSING_IN_LEDGER, ("no_ledger_entry",))
        return base
    base = _with_entry(base, entry)
    if status != "paid":
        return _replace(base, STATUS_MISMATCH, ("not_paid_in_stripe",))
    reasons = _presentment_reasons(amount, currency, entry)
    return _replace(base, AMOUNT_MISMATCH, reasons) if reasons else base


def charge_row(charge: Mapping[str, Any], index: _Index, evidence: Evidence) -> Row:
    """Classify a charge: a succeeded one needs a payment entry of its amount, settled as its
    balance transaction."""
    charge_id = str(charge["id"])
    status = str(charge.get("status"))
    amount = int(charge.get("amount") or 0)
    currency = str(charge.get("currency"))
    transaction = _transaction(charge.get("balance_transaction"), evidence)
    entry = index.use(index.by_charge.get(charge_id))
    base = Row(
        row_class=MATCHED,
        kind="charge",
        stripe_id=charge_id,
        created=int(charge.get("created") or 0),
        currency=currency,
        stripe_amount=amount,
        stripe_status=status,
        owner_id=_owner_id(evidence, object_id(charge.get("customer"))),
    )
    if transaction is not None:
        base = _replace_fields(
            base,
            settlement_currency=str(transaction["currency"]),
            stripe_settlement_amount=int(transaction["amount"]),
        )
    if entry is None:
        if status in MONEY_STATUSES["charge"]:
            return _replace(base, MISSING_IN_LEDGER, ("no_ledger_entry",))
        return base
    base = _with_entry(base, entry)
    if status not in MONEY_STATUSES["charge"]:
        return _replace(base, STATUS_MISMATCH, ("charge_not_succeeded",))

    reasons = _presentment_reasons(amount, currency, entry)
    if transaction is not None:
        reasons += _settlement_reasons(transaction, entry)
        reasons += _conversion_reasons(amount, currency, transaction)
    return _replace(base, AMOUNT_MISMATCH, reasons) if reasons else base


def refund_row(refund: Mapping[str, Any], index: _Index, evidence: Evidence) -> Row:
    """Classify a refund: a succeeded or pending one needs a `refund` entry of minus its amount."""
    status = str(refund.get("status"))
    amount = -int(refund.get("amount") or 0)
    currency = str(refund.get("currency"))
    transaction = _transaction(refund.get("balance_transaction"), evidence)
    entry = index.use(index.by_refund.get(str(refund["id"])))
    customer = index.charge_customers.get(object_id(refund.get("charge")) or "")
    base = Row(
        row_class=MATCHED,
        kind="refund",
        stripe_id=str(refund["id"]),
        created=int(refund.get("created") or 0),
        currency=currency,
        stripe_amount=amount,
        stripe_status=status,
        owner_id=_owner_id(evidence, customer),
    )
    if transaction is not None:
        base = _replace_fields(
            base,
            settlement_currency=str(transaction["currency"]),
            stripe_settlement_amount=int(transaction["amount"]),
        )
    if entry is None:
        if status in MONEY_STATUSES["refund"]:
            return _replace(base, MISSING_IN_LEDGER, ("no_ledger_entry",))
        return base
    base = _with_entry(base, entry)
    if status not in MONEY_STATUSES["refund"]:
        return _replace(base, STATUS_MISMATCH, ("refund_not_succeeded",))
    reasons = _presentment_reasons(amount, currency, entry)
    if transaction is not None and entry.settlement_amount is not None:
        reasons += _settlement_reasons(transaction, entry)
    return _replace(base, AMOUNT_MISMATCH, reasons) if reasons else base


def dispute_row(
    dispute: Mapping[str, Any], index: _Index, evidence: Evidence, every_movement: bool = False
) -> Row:
    """Classify a dispute: each balance movement inside the period needs its own `dispute` entry.

    `every_movement` compares all movements, for a dispute fetched because of a ledger entry.
    """
    movements = [
        movement
        for movement in dispute.get("balance_transactions") or []
        if every_movement or evidence.period.contains(int(movement.get("created") or 0))
    ]
    currency = str(dispute.get("currency"))
    stripe_amount = sum(int(movement["amount"]) for movement in movements)
    found = [index.use(index.by_transaction.get(str(movement["id"]))) for movement in movements]
    entries = [entry for entry in found if entry is not None]
    base = Row(
        row_class=MATCHED,
        kind="dispute",
        stripe_id=str(dispute["id"]),
        created=int(dispute.get("created") or 0),
        currency=currency,
        stripe_amount=stripe_amount,
        ledger_amount=sum(entry.amount for entry in entries) if entries else None,
        stripe_status=str(dispute.get("status")),
        owner_id=entries[0].owner_id if entries else None,
    )
    if len(entries) < len(movements):
        return _replace(base, MISSING_IN_LEDGER, ("movement_missing",))

    reasons: tuple[str, ...] = ()
    for movement, entry in zip(movements, entries, strict=True):
        reasons += _presentment_reasons(int(movement["amount"]), str(movement["currency"]), entry)
        reasons += _settlement_reasons(movement, entry)
    reasons = tuple(dict.fromkeys(reasons))
    return _replace(base, AMOUNT_MISMATCH, reasons) if reasons else base


def transaction_row(transaction: Mapping[str, Any], index: _Index, evidence: Evidence) -> Row:
    """Classify a balance transaction whose source was not pulled, through its source's entry."""
    source = object_id(transaction.get("source")) or ""
    entry = index.use(
        index.by_transaction.get(str(transaction["id"]))
        or index.by_charge.get(source)
        or index.by_refund.get(source)
    )
    base = Row(
        row_class=MATCHED,
        kind="balance_transaction",
        stripe_id=str(transaction["id"]),
        created=int(transaction.get("created") or 0),
        settlement_currency=str(transaction["currency"]),
        stripe_settlement_amount=int(transaction["amount"]),
        stripe_status=str(transaction.get("type")),
    )
    if entry is None:
        return _replace(base, MISSING_IN_LEDGER, ("no_ledger_entry",))
    base = _with_entry(base, entry)
    if entry.settlement_amount is not None:
        reasons = _settlement_reasons(transaction, entry)
    else:
        reasons = _presentment_reasons(
            int(transaction["amount"]), str(transaction["currency"]), entry
        )
    return _replace(base, AMOUNT_MISMATCH, reasons) if reasons else base


def payout_row(payout: Mapping[str, Any], transactions: list[dict[str, Any]]) -> Row:
    """Classify a payout: its amount must equal the sum of the `net` of the transactions it pays out.

    The payout's own transaction (type `payout`) is left out of the sum, if the list has it.
    """
    currency = str(payout.get("currency"))
    members = [item for item in transactions if item.get("type") != "payout"]
    total = sum(int(item.get("net") or 0) for item in members if item.get("currency") == currency)
    base = Row(
        row_class=MATCHED,
        kind="payout",
        stripe_id=str(payout["id"]),
        created=int(payout.get("arrival_date") or 0),
        currency=currency,
        stripe_amount=int(payout.get("amount") or 0),
        transactions_amount=total,
        stripe_status=str(payout.get("status")),
    )
    reasons: tuple[str, ...] = ()
    if any(item.get("currency") != currency for item in members):
        reasons += ("payout_currency_differs",)
    if total != base.stripe_amount:
        reasons += ("payout_total_differs",)
    return _replace(base, PAYOUT_MISMATCH, reasons) if reasons else base


def session_row(session: Mapping[str, Any], entry: LedgerEntry | None) -> Row:
    """Classify a paid one-off purchase without a charge (free after a discount) by its entry."""
    amount = int(session.get("amount_total") or 0)
    currency = str(session.get("currency"))
    base = Row(
        row_class=MATCHED,
        kind="checkout_session",
        stripe_id=str(session["id"]),
        created=int(session.get("created") or 0),
        currency=currency,
        stripe_amount=amount,
        stripe_status=str(session.get("payment_status")),
    )
    if entry is None:
        return _replace(base, MISSING_IN_LEDGER, ("no_ledger_entry",))
    base = _with_entry(base, entry)
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return _replace(base, STATUS_MISMATCH, ("not_paid_in_stripe",))
    reasons = _presentment_reasons(amount, currency, entry)
    return _replace(base, AMOUNT_MISMATCH, reasons) if reasons else base


def missing_in_stripe_row(entry: LedgerEntry, ref: Ref, index: _Index, evidence: Evidence) -> Row:
    """Return the row of a ledger entry whose Stripe object does not exist."""
    index.use(entry)
    return Row(
        row_class=MISSING_IN_STRIPE,
        kind=ref[0],
        stripe_id=ref[1] or entry.object_id,
        created=entry.created,
        currency=entry.currency,
        ledger_amount=entry.amount,
        settlement_currency=entry.settlement_currency,
        ledger_settlement_amount=entry.settlement_amount,
        ledger_status=entry.kind,
        owner_id=entry.owner_id,
        reasons=("not_in_stripe",),
    )


def subscription_rows(evidence: Evidence) -> list[Row]:
    """Compare each subscription's status with what the service granted its subscriber.

    Listed are Stripe's subscriptions that are not canceled, and the recorded subscription of
    every monitored subscriber that Stripe did not list (fetched by id, or None when gone).
    """
    rows: list[Row] = []
    seen: set[str] = set()
    by_subscriber_subscription = {
        profile.subscription_id: profile
        for profile in evidence.profiles.values()
        if profile.subscription_id
    }
    for subscription in evidence.subscriptions:
        subscription_id = str(subscription["id"])
        seen.add(subscription_id)
        owner_pk = evidence.owners.get(object_id(subscription.get("customer")) or "")
        profile = None
        if owner_pk is not None and owner_pk.startswith("SUB#"):
            profile = evidence.profiles.get(owner_pk.removeprefix("SUB#"))
        profile = profile or by_subscriber_subscription.get(subscription_id)
        rows.append(subscription_row(subscription, profile, evidence))

    for subscriber_id in sorted(set(evidence.entitled)):
        profile = evidence.profiles.get(subscriber_id)
        recorded = (profile.subscription_id if profile else None) or ""
        if recorded in seen:
            continue
        fetched = evidence.fetched.get(("subscription", recorded))
        if fetched is not None:
            seen.add(str(fetched["id"]))
            rows.append(subscription_row(fetched, profile, evidence))
            continue
        rows.append(
            Row(
                row_class=MISSING_IN_STRIPE,
                kind="subscription",
                stripe_id=recorded,
                ledger_status=profile.status if profile else None,
                owner_id=subscriber_id,
                reasons=("subscription_not_in_stripe",),
            )
        )
    return rows


def subscription_row(
    subscription: Mapping[str, Any], profile: Profile | None, evidence: Evidence
) -> Row:
    status = str(subscription.get("status"))
    past_due_since = profile.past_due_since if profile else None
    try:
        entitled_in_stripe = entitlements.decide(
            status, evidence.now, past_due_since, evidence.grace_seconds
        ).monitored
    except entitlements.UnknownSubscriptionStatusError:
        entitled_in_stripe = False
    base = Row(
        row_class=MATCHED,
        kind="subscription",
        stripe_id=str(subscription["id"]),
        created=int(subscription.get("created") or 0),
        stripe_status=status,
        ledger_status=None if profile is None else (profile.status or ""),
        owner_id=None if profile is None else profile.subscriber_id,
    )
    if profile is None:
        if entitled_in_stripe:
            return _replace(base, MISSING_IN_LEDGER, ("subscriber_not_linked",))
        return base
    if profile.subscription_id not in (None, base.stripe_id):
        if entitled_in_stripe:
            return _replace(base, STATUS_MISMATCH, ("other_subscription_recorded",))
        return base
    if profile.monitored and not entitled_in_stripe:
        return _replace(base, STATUS_MISMATCH, ("entitled_here_not_in_stripe",))
    if entitled_in_stripe and not profile.monitored:
        return _replace(base, STATUS_MISMATCH, ("entitled_in_stripe_not_here",))
    if profile.status != status:
        return _replace(base, STATUS_MISMATCH, ("status_differs",))
    return base


# ---------------------------------------------------------------------------------------------
# Comparisons


def _presentment_reasons(amount: int, currency: str, entry: LedgerEntry) -> tuple[str, ...]:
    if entry.currency != currency:
        return ("currency_differs",)
    if entry.amount != amount:
        return ("amount_differs",)
    return ()


def _settlement_reasons(transaction: Mapping[str, Any], entry: LedgerEntry) -> tuple[str, ...]:
    if entry.settlement_amount is None or entry.settlement_currency is None:
        return ("settlement_missing",)
    reasons: tuple[str, ...] = ()
    if entry.settlement_currency != transaction.get("currency"):
        reasons += ("settlement_currency_differs",)
    elif entry.settlement_amount != int(transaction["amount"]):
        reasons += ("settlement_amount_differs",)
    fee = transaction.get("fee")
    if entry.fee_amount is not None and isinstance(fee, int) and entry.fee_amount != fee:
        reasons += ("fee_differs",)
    return reasons


def converted_amount(amount: int, currency: str, rate: float, settlement_currency: str) -> int:
    """Convert minor units of `currency` at Stripe's `exchange_rate` (major units per major unit).

    The exponents come from Stripe's currency table, so a zero-decimal JPY amount converts to
    a two-decimal CNY amount correctly. Raises UnknownCurrencyError for an unknown currency.
    """
    shift = exponent(settlement_currency) - exponent(currency)
    converted = Decimal(amount).scaleb(shift) * Decimal(str(rate))
    return int(converted.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _conversion_reasons(
    amount: int, currency: str, transaction: Mapping[str, Any]
) -> tuple[str, ...]:
    """Check the balance transaction's amount against the charge converted at its rate."""
    settlement_currency = str(transaction.get("currency"))
    settled = int(transaction["amount"])
    rate = transaction.get("exchange_rate")
    if settlement_currency == currency:
        return () if settled == amount else ("conversion_differs",)
    if not isinstance(rate, int | float):
        return ("conversion_differs",)
    try:
        expected = converted_amount(amount, currency, float(rate), settlement_currency)
    except UnknownCurrencyError:
        return ("unknown_currency",)
    return () if abs(expected - settled) <= CONVERSION_TOLERANCE else ("conversion_differs",)


# ---------------------------------------------------------------------------------------------
# Helpers


def _transaction(value: Any, evidence: Evidence) -> dict[str, Any] | None:
    if isinstance(value, Mapping) and "amount" in value:
        return dict(value)
    transaction_id = object_id(value)
    if transaction_id is None:
        return None
    return evidence.balance_transactions.get(transaction_id)


def _owner_id(evidence: Evidence, customer_id: str | None) -> str | None:
    owner_pk = evidence.owners.get(customer_id or "")
    return None if owner_pk is None else owner_pk.partition("#")[2]


def _with_entry(row: Row, entry: LedgerEntry) -> Row:
    return _replace_fields(
        row,
        ledger_amount=entry.amount,
        ledger_settlement_amount=entry.settlement_amount,
        settlement_currency=row.settlement_currency or entry.settlement_currency,
        ledger_status=entry.kind,
        owner_id=row.owner_id or entry.owner_id,
    )


def _replace(row: Row, row_class: str, reasons: tuple[str, ...]) -> Row:
    return _replace_fields(row, row_class=row_class, reasons=(*row.reasons, *reasons))


def _with_reason(row: Row, reason: str) -> Row:
    return _replace_fields(row, reasons=(*row.reasons, reason))


def _replace_fields(row: Row, **changes: Any) -> Row:
    from dataclasses import replace

    return replace(row, **changes)
