"""In-memory Stripe lists and ledger for reconciliation tests, with builders of Stripe objects."""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from idsentry.services.reconcile_model import LedgerEntry, Period, Profile

# 2026-12-04 in Asia/Shanghai starts at 2026-12-03T16:00:00Z.
DAY_START = 1796313600
DAY_END = DAY_START + 86400
NOON = DAY_START + 12 * 3600


def _in_range(value: int, bounds: Mapping[str, int]) -> bool:
    return (
        ("gte" not in bounds or value >= bounds["gte"])
        and ("gt" not in bounds or value > bounds["gt"])
        and ("lt" not in bounds or value < bounds["lt"])
        and ("lte" not in bounds or value <= bounds["lte"])
    )


class FakeLists:
    """Stripe objects by resource; a list costs one request per 100 objects, as Stripe's does."""

    def __init__(self) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {}
        self.payout_members: dict[str, list[dict[str, Any]]] = {}
        self.counts: Counter[str] = Counter()
        self.list_params: list[tuple[str, dict[str, Any]]] = []

    def add(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects.setdefault(resource, []).append(obj)
        return obj

    def list_all(self, resource: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        self.list_params.append((resource, dict(params)))
        if "payout" in params:
            found = self.payout_members.get(str(params["payout"]), [])
        else:
            found = [
                item
                for item in self.objects.get(resource, [])
                if all(
                    _in_range(int(item[name]), bounds)
                    for name, bounds in params.items()
                    if name in ("created", "arrival_date")
                )
                and ("types" not in params or item.get("type") in params["types"])
            ]
        found = sorted(found, key=lambda item: int(item.get("created") or 0), reverse=True)
        self.counts[f"GET /v1/{resource}"] += max(1, math.ceil(len(found) / 100))
        for item in found:
            yield copy.deepcopy(item)

    def retrieve(self, resource: str, object_id: str) -> dict[str, Any] | None:
        self.counts[f"GET /v1/{resource}/<id>"] += 1
        for item in self.objects.get(
            resource.replace("checkout.sessions", "checkout_sessions"), []
        ):
            if item["id"] == object_id:
                return copy.deepcopy(item)
        for members in self.payout_members.values():
            for item in members:
                if resource == "balance_transactions" and item["id"] == object_id:
                    return copy.deepcopy(item)
        return None

    def request_counts(self) -> dict[str, int]:
        return dict(self.counts)


@dataclass
class FakeLedger:
    """Ledger entries, customer links, profiles and monitored subscribers in memory."""

    stored: list[LedgerEntry] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    stored_profiles: dict[str, Profile] = field(default_factory=dict)
    entitled: list[str] = field(default_factory=list)

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
        return {
            subscriber: self.stored_profiles[subscriber]
            for subscriber in subscriber_ids
            if subscriber in self.stored_profiles
        }

    def entitled_subscriber_ids(self) -> list[str]:
        return list(self.entitled)


def invoice(
    invoice_id: str,
    charge_id: str | None,
    amount: int = 1800,
    currency: str = "cny",
    created: int = NOON,
    status: str = "paid",
    customer: str = "cus_A",
) -> dict[str, Any]:
    return {
        "id": invoice_id,
        "object": "invoice",
        "amount_paid": amount if status == "paid" else 0,
        "currency": currency,
        "created": created,
        "status": status,
        "customer": customer,
        "charge": charge_id,
        "status_transitions": {"paid_at": created if status == "paid" else None},
    }


def balance_transaction(
    transaction_id: str,
    source: str,
    amount: int,
    currency: str = "cny",
    created: int = NOON,
    kind: str = "charge",
    fee: int = 0,
    exchange_rate: float | None = None,
) -> dict[str, Any]:
    return {
        "id": transaction_id,
        "object": "balance_transaction",
        "amount": amount,
        "currency": currency,
        "created": created,
        "exchange_rate": exchange_rate,
        "fee": fee,
        "net": amount - fee,
        "source": source,
        "type": kind,
    }


def charge(
    charge_id: str,
    transaction_id: str,
    amount: int = 1800,
    currency: str = "cny",
    created: int = NOON,
    status: str = "succeeded",
    customer: str = "cus_A",
    payment_intent: str | None = None,
) -> dict[str, Any]:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "currency": currency,
        "created": created,
        "status": status,
        "customer": customer,
        "balance_transaction": transaction_id if status == "succeeded" else None,
        "payment_intent": payment_intent,
    }


def refund(
    refund_id: str,
    charge_id: str,
    amount: int,
    currency: str = "cny",
    created: int = NOON,
    status: str = "succeeded",
    transaction_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "charge": charge_id,
        "currency": currency,
        "created": created,
        "status": status,
        "balance_transaction": transaction_id,
    }


def paid_entry(
    invoice_id: str,
    charge_id: str,
    transaction_id: str,
    amount: int = 1800,
    currency: str = "cny",
    created: int = NOON,
    settlement: tuple[int, str] | None = None,
    owner_pk: str = "SUB#sbr_A",
) -> LedgerEntry:
    settled_amount, settled_currency = settlement or (amount, currency)
    return LedgerEntry(
        owner_pk=owner_pk,
        kind="invoice_paid",
        amount=amount,
        currency=currency,
        created=created,
        stripe_ids={
            "invoice": invoice_id,
            "charge": charge_id,
            "balance_transaction": transaction_id,
        },
        settlement_amount=settled_amount,
        settlement_currency=settled_currency,
        fee_amount=0,
    )


def refund_entry(
    refund_id: str, charge_id: str, amount: int, currency: str = "cny", created: int = NOON
) -> LedgerEntry:
    return LedgerEntry(
        owner_pk="SUB#sbr_A",
        kind="refund",
        amount=-amount,
        currency=currency,
        created=created,
        stripe_ids={"charge": charge_id, "refund": refund_id},
    )
