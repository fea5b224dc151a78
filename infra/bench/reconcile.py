"""Reconciliation of 10,000 Stripe objects: requests made against the pagination lower bound.

The local Stripe shim (in front of localstripe, on 127.0.0.1) is seeded with one-off card
charges and their balance transactions, and refunds of some of them with theirs. Automatic
payouts, each with its own balance transaction, pay all of those out. Every object is dated in
yesterday's Asia/Shanghai day. The ledger holds the matching entries in memory, so the run measures the
Stripe side: the reconciliation's HTTP requests by route, counted by its own client, and its
wall time. The lower bound is one request per 100 objects of each list call (and one for an
empty list), which is what Stripe's largest page allows.

    python -m infra.bench.reconcile [--objects 10000]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import stripe

# Importing infra.local puts the idsentry layer on sys.path, for `python -m infra.bench.reconcile`.
import infra.local  # noqa: F401

# isort: split

from idsentry.adapters.stripe_lists import PAGE_SIZE, StripeSdkLists
from idsentry.clock import SHANGHAI
from idsentry.services.reconcile import ReconcileDeps, reconcile
from idsentry.services.reconcile_model import LedgerEntry, Period, Profile
from infra.local.emulators.stripe import TEST_API_KEY, LocalStripe
from infra.local.emulators.stripe_shim import StripeShim

DEFAULT_OBJECTS = 10_000
# A unit of 100 objects: 40 charges and 9 refunds, each with its balance transaction (98), and
# one payout of those 49 transactions with the payout's own transaction (2).
UNIT_OBJECTS = 100
CHARGES_PER_UNIT = 40
REFUNDS_PER_UNIT = 9
SUBSCRIBER_PK = "SUB#sbr_bench"


@dataclass
class MemoryLedger:
    """The ledger entries billing would have written, held in memory for the bench."""

    stored: list[LedgerEntry] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)

    def entries(self, period: Period) -> list[LedgerEntry]:
        return [entry for entry in self.stored if period.contains(entry.created)]

    def entries_at(self, keys: Sequence[tuple[str, str]]) -> list[LedgerEntry]:
        requested = set(keys)
        return [entry for entry in self.stored if (entry.owner_pk, entry.sort_key) in requested]

    def owners(self, customer_ids: Iterable[str]) -> dict[str, str]:
        return {
            customer: self.links[customer] for customer in customer_ids if customer in self.links
        }

    def profiles(self, subscriber_ids: Iterable[str]) -> dict[str, Profile]:
        return {}

    def entitled_subscriber_ids(self) -> list[str]:
        return []


@dataclass(frozen=True)
class ReconcileBench:
    """One measured run: objects in Stripe, requests made, the lower bound and the time."""

    objects: int
    requests: dict[str, int]
    lower_bound: int
    seconds: float
    matched: int
    rows: int

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def seed(
    client: stripe.StripeClient, shim: StripeShim, period: Period, units: int
) -> tuple[MemoryLedger, list[int]]:
    """Seed Stripe with `units` units of 100 objects in the period and write the matching ledger.

    Returns the ledger and the size of each payout's balance transaction list.
    """
    charges = units * CHARGES_PER_UNIT
    customer = client.v1.customers.create(params={"metadata": {"subscriber_id": "sbr_bench"}})
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    step = max(1, (period.end - period.start - 7200) // max(charges, 1))
    specs = []
    for index in range(charges):
        moment = period.start + 60 + index * step
        spec: dict[str, int] = {"amount": 1800 + index % 500, "created": moment}
        if index % CHARGES_PER_UNIT < REFUNDS_PER_UNIT:
            spec["refund"] = 500
            spec["refund_created"] = moment + 30
        specs.append(spec)
    seeded = shim.seed_charges(customer.id, card.id, "cny", specs)

    ledger = MemoryLedger(links={customer.id: SUBSCRIBER_PK})
    transactions: list[str] = []
    for spec, item in zip(specs, seeded, strict=True):
        charge_id = str(item["charge"])
        ledger.stored.append(
            LedgerEntry(
                owner_pk=SUBSCRIBER_PK, kind="purchase_paid", amount=spec["amount"],
                currency="cny", created=spec["created"],
                stripe_ids={"checkout_session": f"cs_{charge_id}", "charge": charge_id,
                            "balance_transaction": str(item["balance_transaction"])},
                settlement_amount=spec["amount"], settlement_currency="cny", fee_amount=0,
            )
        )  # fmt: skip
        transactions.append(str(item["balance_transaction"]))
        if item["refund"]:
            ledger.stored.append(
                LedgerEntry(
                    owner_pk=SUBSCRIBER_PK, kind="refund", amount=-500, currency="cny",
                    created=spec["refund_created"],
                    stripe_ids={"charge": charge_id, "refund": str(item["refund"])},
                )
            )  # fmt: skip
            transactions.append(str(item["refund_balance_transaction"]))

    size = CHARGES_PER_UNIT + REFUNDS_PER_UNIT
    arrival = period.end - 3600
    payout_lists = []
    for start in range(0, len(transactions), size):
        members = transactions[start : start + size]
        shim.create_payout("cny", arrival, members, created=arrival - 60)
        payout_lists.append(len(members) + 1)
    return ledger, payout_lists


def lower_bound(list_sizes: Iterable[int]) -> int:
    """Return the fewest requests that list these sizes at 100 per page, an empty list costing 1."""
    return sum(max(1, math.ceil(size / PAGE_SIZE)) for size in list_sizes)


def measure_reconciliation(objects: int = DEFAULT_OBJECTS) -> ReconcileBench:
    """Seed the shim with `objects` Stripe objects, reconcile them once and return the figures.

    `objects` is rounded down to a multiple of 100, and is at least 100.
    """
    units = max(1, objects // UNIT_OBJECTS)
    yesterday = datetime.now(SHANGHAI).date() - timedelta(days=1)
    period = Period(yesterday, yesterday)
    with LocalStripe() as local_stripe, StripeShim(local_stripe.base_url) as shim:
        client = stripe.StripeClient(
            TEST_API_KEY, base_addresses={"api": shim.base_url}, max_network_retries=0
        )
        ledger, payout_lists = seed(client, shim, period, units)
        lists = StripeSdkLists(TEST_API_KEY, shim.base_url)
        deps = ReconcileDeps(stripe=lists, ledger=ledger, clock=lambda: datetime.now(UTC))

        started = time.perf_counter()
        result = reconcile(deps, period)
        seconds = time.perf_counter() - started

    period_lists = {
        name: count
        for name, count in result.objects.items()
        if name != "payout_balance_transactions"
    }
    return ReconcileBench(
        objects=sum(period_lists.values()),
        requests=dict(result.stripe_requests),
        lower_bound=lower_bound([*period_lists.values(), *payout_lists]),
        seconds=seconds,
        matched=result.counts()["matched"],
        rows=len(result.rows),
    )


def format_result(bench: ReconcileBench) -> str:
    """Return the figures as the lines `make bench` prints."""
    lines = [
        f"reconciliation of {bench.objects} Stripe objects (local shim, in-memory ledger)",
        f"  Stripe requests: {bench.total_requests} (pagination lower bound {bench.lower_bound}, "
        f"{bench.total_requests / bench.lower_bound:.2f}x)",
        f"  wall time: {bench.seconds:.2f} s",
        f"  rows: {bench.rows}, matched: {bench.matched}",
    ]
    lines += [f"  {route}: {count}" for route, count in sorted(bench.requests.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.reconcile", description=__doc__)
    parser.add_argument(
        "--objects",
        type=int,
        default=DEFAULT_OBJECTS,
        help=f"Stripe objects to seed and reconcile (default {DEFAULT_OBJECTS})",
    )
    args = parser.parse_args(argv)
    if args.objects < UNIT_OBJECTS:
        parser.error(f"--objects must be at least {UNIT_OBJECTS}")
    print(format_result(measure_reconciliation(args.objects)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
