"""Reads of the money ledger, customer links and subscriber profiles for the reconciliation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from idsentry.adapters.table import MainTable
from idsentry.services.money_ledger import LedgerPageRequest, ledger_page, parse_request
from idsentry.services.reconcile_model import LedgerEntry, Period, Profile

ENTITLED_INDEX_KEY = "ENTITLED"
# BatchGetItem reads at most 100 keys, and a Query page of the index is read at this size too.
BATCH_SIZE = 100


class LedgerSource(Protocol):
    """Records of the service: money ledger entries, customer owners and subscriber profiles."""

    def entries(self, period: Period) -> list[LedgerEntry]:
        """Return the ledger entries whose `created` lies in the period."""
        ...

    def entries_at(self, keys: Sequence[tuple[str, str]]) -> list[LedgerEntry]:
        """Return the ledger entries stored under these (pk, sk) keys, skipping absent keys."""
        ...

    def owners(self, customer_ids: Iterable[str]) -> dict[str, str]:
        """Return the ledger partition ("SUB#..." or an archive) of each linked Stripe customer."""
        ...

    def profiles(self, subscriber_ids: Iterable[str]) -> dict[str, Profile]:
        """Return the profile of each subscriber that has one."""
        ...

    def entitled_subscriber_ids(self) -> list[str]:
        """Return every subscriber the service currently monitors."""
        ...


def entry_from_item(owner_pk: str, item: Mapping[str, Any]) -> LedgerEntry:
    """Build a ledger entry from a stored ledger item."""

    def optional(name: str) -> Any:
        value = item.get(name)
        return None if value is None else value

    settlement_amount = optional("settlement_amount")
    fee = optional("fee_amount")
    return LedgerEntry(
        owner_pk=owner_pk,
        kind=str(item["kind"]),
        amount=int(item["amount"]),
        currency=str(item["currency"]),
        created=int(item["created"]),
        stripe_ids={str(key): str(value) for key, value in (item.get("stripe_ids") or {}).items()},
        settlement_amount=None if settlement_amount is None else int(settlement_amount),
        settlement_currency=optional("settlement_currency"),
        fee_amount=None if fee is None else int(fee),
    )


def _chunks(values: Sequence[Any], size: int = BATCH_SIZE) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class TableLedgerSource:
    """`LedgerSource` over the main table: the `LEDGER#{day}` and `ENTITLED` index partitions."""

    def __init__(self, table: MainTable) -> None:
        self._table = table

    def entries(self, period: Period) -> list[LedgerEntry]:
        found: list[LedgerEntry] = []
        for day in period.utc_days():
            request = LedgerPageRequest(day=day, limit=BATCH_SIZE)
            while True:
                page = ledger_page(self._table, request)
                for item in page["items"]:
                    owner = item["owner"]
                    entry = entry_from_item(f"{str(owner['kind']).upper()}#{owner['id']}", item)
                    if period.contains(entry.created):
                        found.append(entry)
                if not page["cursor"]:
                    break
                request = parse_request(day, {"cursor": page["cursor"], "limit": str(BATCH_SIZE)})
        return found

    def entries_at(self, keys: Sequence[tuple[str, str]]) -> list[LedgerEntry]:
        unique = list(dict.fromkeys(keys))
        found: list[LedgerEntry] = []
        for chunk in _chunks(unique):
            items = self._table.get_many(chunk)
            for pk, sk in chunk:
                item = items.get((pk, sk))
                if item is not None and str(item.get("sk", "")).startswith("LEDGER#"):
                    found.append(entry_from_item(pk, item))
        return found

    def owners(self, customer_ids: Iterable[str]) -> dict[str, str]:
        unique = sorted(set(customer_ids))
        owners: dict[str, str] = {}
        for chunk in _chunks(unique):
            items = self._table.get_many([(f"STRIPECUS#{customer}", "LINK") for customer in chunk])
            for customer in chunk:
                link = items.get((f"STRIPECUS#{customer}", "LINK"))
                if link is None:
                    continue
                erased = link.get("erased_ledger_pk")
                owners[customer] = str(erased) if erased else f"SUB#{link['subscriber_id']}"
        return owners

    def profiles(self, subscriber_ids: Iterable[str]) -> dict[str, Profile]:
        unique = sorted(set(subscriber_ids))
        profiles: dict[str, Profile] = {}
        for chunk in _chunks(unique):
            items = self._table.get_many([(f"SUB#{subscriber}", "PROFILE") for subscriber in chunk])
            for subscriber in chunk:
                item = items.get((f"SUB#{subscriber}", "PROFILE"))
                if item is None:
                    continue
                past_due_since = item.get("past_due_since")
                profiles[subscriber] = Profile(
                    subscriber_id=subscriber,
                    subscription_id=item.get("subscription_id"),
                    status=item.get("status"),
                    monitored=bool(item.get("monitored", False)),
                    past_due_since=None if past_due_since is None else int(past_due_since),
                )
        return profiles

    def entitled_subscriber_ids(self) -> list[str]:
        subscribers: list[str] = []
        request: dict[str, Any] = {
            "TableName": self._table.name,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :entitled",
            "ExpressionAttributeValues": {":entitled": {"S": ENTITLED_INDEX_KEY}},
            "Limit": BATCH_SIZE,
        }
        while True:
            page = self._table.client().query(**request)
            subscribers.extend(str(item["gsi1sk"]["S"]) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return subscribers
            request["ExclusiveStartKey"] = last
