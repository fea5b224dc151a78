"""The finance reconciliation's period, ledger entries, subscriber profiles and result rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

from idsentry.clock import SHANGHAI

# Every row gets exactly one class, in this order of severity in the outputs.
MATCHED: Final = "matched"
MISSING_IN_LEDGER: Final = "missing_in_ledger"
MISSING_IN_STRIPE: Final = "missing_in_stripe"
AMOUNT_MISMATCH: Final = "amount_mismatch"
STATUS_MISMATCH: Final = "status_mismatch"
PAYOUT_MISMATCH: Final = "payout_mismatch"
ROW_CLASSES: Final = (
    MISSING_IN_LEDGER,
    MISSING_IN_STRIPE,
    AMOUNT_MISMATCH,
    STATUS_MISMATCH,
    PAYOUT_MISMATCH,
    MATCHED,
)
# The Stripe object kinds a row can be about.
ROW_KINDS: Final = (
    "invoice",
    "charge",
    "refund",
    "dispute",
    "balance_transaction",
    "payout",
    "subscription",
    "checkout_session",
)
# A period longer than this would pull more than a scheduled run can finish.
MAX_PERIOD_DAYS: Final = 92


class ReconcileInputError(ValueError):
    """A reconciliation request parameter is invalid, and `field` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class Period:
    """Calendar days in Asia/Shanghai, `first` to `last` inclusive, as Unix time [start, end)."""

    first: date
    last: date

    @property
    def start(self) -> int:
        """Asia/Shanghai midnight at the start of `first`, in Unix seconds."""
        return int(
            datetime(self.first.year, self.first.month, self.first.day, tzinfo=SHANGHAI).timestamp()
        )

    @property
    def end(self) -> int:
        """Asia/Shanghai midnight after `last`, in Unix seconds: the first moment outside."""
        after = self.last + timedelta(days=1)
        return int(datetime(after.year, after.month, after.day, tzinfo=SHANGHAI).timestamp())

    def contains(self, moment: int) -> bool:
        return self.start <= moment < self.end

    def utc_days(self) -> list[str]:
        """Return the UTC days (YYYYMMDD) that overlap the period, as the ledger index keys them."""
        day = datetime.fromtimestamp(self.start, UTC).date()
        final = datetime.fromtimestamp(self.end - 1, UTC).date()
        days = []
        while day <= final:
            days.append(day.strftime("%Y%m%d"))
            day += timedelta(days=1)
        return days

    @property
    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} – {self.last.isoformat()}"


def parse_period(first: str | None, last: str | None = None) -> Period:
    """Validate `from` and `to` dates (YYYY-MM-DD, Asia/Shanghai). `to` defaults to `from`."""
    start = _parse_date("from", first)
    end = start if last in (None, "") else _parse_date("to", last)
    if end < start:
        raise ReconcileInputError(
            "to", f"invalid to: {end.isoformat()} is before from {start.isoformat()}"
        )
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ReconcileInputError(
            "to",
            f"invalid to: a period covers at most {MAX_PERIOD_DAYS} days; split it into shorter ones",
        )
    return Period(start, end)


def previous_day(now: datetime) -> Period:
    """Return yesterday in Asia/Shanghai, the period of the daily run."""
    yesterday = now.astimezone(SHANGHAI).date() - timedelta(days=1)
    return Period(yesterday, yesterday)


def _parse_date(name: str, text: str | None) -> date:
    if not text:
        raise ReconcileInputError(
            name, f"missing {name}: give a date as YYYY-MM-DD, e.g. 2026-12-04"
        )
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ReconcileInputError(
            name, f"invalid {name}: {text!r} is not a date as YYYY-MM-DD, e.g. 2026-12-04"
        ) from exc


@dataclass(frozen=True)
class LedgerEntry:
    """One money ledger item as billing wrote it: amounts in Stripe's minor units."""

    owner_pk: str
    kind: str
    amount: int
    currency: str
    created: int
    stripe_ids: Mapping[str, str]
    settlement_amount: int | None = None
    settlement_currency: str | None = None
    fee_amount: int | None = None

    @property
    def owner_id(self) -> str:
        """The subscriber id, or the pseudonym of a deleted account."""
        return self.owner_pk.partition("#")[2]

    @property
    def sort_key(self) -> str:
        return f"LEDGER#{self.created:010d}#{self.kind}#{self.object_id}"

    @property
    def object_id(self) -> str:
        """The object id in the ledger item's key, as billing chose it per kind."""
        ids = self.stripe_ids
        if self.kind == "invoice_paid":
            return ids.get("invoice", "")
        if self.kind == "purchase_paid":
            return ids.get("checkout_session", "")
        if self.kind == "refund":
            return ids.get("refund", "")
        return f"{ids.get('dispute', '')}#{ids.get('balance_transaction', '')}"


@dataclass(frozen=True)
class Profile:
    """A subscriber's grant as the service recorded it: subscription, status and monitoring."""

    subscriber_id: str
    subscription_id: str | None
    status: str | None
    monitored: bool
    past_due_since: int | None = None


@dataclass(frozen=True)
class Row:
    """One reconciled item: a Stripe object, or a ledger entry Stripe does not know.

    Amounts are in Stripe's minor units of their currency. `reasons` are codes that the
    outputs turn into text. A matched row may carry informative ones such as `outside_period`.
    """

    row_class: str
    kind: str
    stripe_id: str
    created: int | None = None
    currency: str | None = None
    stripe_amount: int | None = None
    ledger_amount: int | None = None
    settlement_currency: str | None = None
    stripe_settlement_amount: int | None = None
    ledger_settlement_amount: int | None = None
    # For a payout: the sum of the `net` of its balance transactions.
    transactions_amount: int | None = None
    stripe_status: str | None = None
    ledger_status: str | None = None
    owner_id: str | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def sort_key(self) -> tuple[int, int, int, str]:
        return (
            ROW_CLASSES.index(self.row_class),
            ROW_KINDS.index(self.kind),
            self.created or 0,
            self.stripe_id,
        )


@dataclass(frozen=True)
class Repair:
    """One Stripe event re-applied for a row missing in the ledger, and what applying it did.

    `outcome` is apply_event's result (`applied`, `duplicate`, `ignored`, `erased`), or
    `not_linked`, `busy` or `failed` when it raised, or `no_event` when Stripe listed none.
    """

    kind: str
    stripe_id: str
    outcome: str
    event_id: str | None = None
    event_type: str | None = None


@dataclass(frozen=True)
class Totals:
    """Money of one currency in the period, in minor units, as Stripe and the ledger have it."""

    stripe_payments: int = 0
    stripe_refunds: int = 0
    stripe_disputes: int = 0
    stripe_payouts: int = 0
    ledger_payments: int = 0
    ledger_refunds: int = 0
    ledger_disputes: int = 0


@dataclass(frozen=True)
class Reconciliation:
    """The result of one run: rows, totals per currency, repairs and the Stripe requests made."""

    period: Period
    generated_at: int
    rows: tuple[Row, ...]
    totals: Mapping[str, Totals]
    repairs: tuple[Repair, ...] = ()
    # Objects each Stripe list returned, and the HTTP requests made, by route.
    objects: Mapping[str, int] = field(default_factory=dict)
    stripe_requests: Mapping[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Return the number of rows per class, every class included."""
        counts = dict.fromkeys(ROW_CLASSES, 0)
        for row in self.rows:
            counts[row.row_class] += 1
        return counts
