"""Stripe's list endpoints for the local shim, and automatic payouts over balance transactions.

Served newest first with Stripe's paging (`limit` 1 to 100, default 10, `starting_after`,
`ending_before`, `has_more`): `GET /v1/invoices`, `/v1/charges`, `/v1/refunds`,
`/v1/balance_transactions`, `/v1/payouts` and `/v1/events`. Objects with the same `created`
second keep their creation order, newest first. Each list takes `created` (an integer or
`gt`/`gte`/`lt`/`lte`) and these filters:

- invoices: `customer`, `subscription`, `status`;
- charges: `customer`, `payment_intent`;
- refunds: `charge`, `payment_intent`;
- balance transactions: `currency`, `payout`, `source`, `type`;
- payouts: `arrival_date` (like `created`), `status`;
- events: `type`, `types[]` (at most 20).

localstripe owns invoices, charges, refunds and most balance transactions and events. The
shim adds its own: the balance transactions of disputes and payouts, its events, and payouts.
Payouts exist only through `create_payout()`, an automatic payout over available balance
transactions, because localstripe's own payouts are euro-only with a made-up balance
transaction. A payout's balance transactions are listed with `payout=`, together with the
payout's own transaction (type `payout`, the negative amount).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from infra.local.emulators.stripe_api import (
    CREATED_OPERATORS,
    Emit,
    Params,
    StripeApiError,
    invalid_parameter,
    new_id,
    paginate,
    read_currency,
    read_expand,
    resource_missing,
)
from infra.local.emulators.stripe_client import LocalStripeClient

PAGING_PARAMETERS: Final = frozenset({"ending_before", "expand", "limit", "starting_after"})
MAX_EVENT_TYPES: Final = 20
PAYOUT_STATUSES: Final = ("paid", "pending", "in_transit", "canceled", "failed")
INVOICE_STATUSES: Final = ("draft", "open", "paid", "uncollectible", "void")


@dataclass(frozen=True)
class ListSpec:
    """One list endpoint: the localstripe kind behind it and the equality filters it takes."""

    kind: str
    url: str
    filters: tuple[str, ...]
    localstripe: bool = True


LISTS: Final[Mapping[str, ListSpec]] = {
    "invoices": ListSpec("invoice", "/v1/invoices", ("customer", "subscription", "status")),
    "charges": ListSpec("charge", "/v1/charges", ("customer", "payment_intent")),
    "refunds": ListSpec("refund", "/v1/refunds", ("charge", "payment_intent")),
    "balance_transactions": ListSpec(
        "balance_transaction", "/v1/balance_transactions", ("currency", "source", "type")
    ),
    "payouts": ListSpec("payout", "/v1/payouts", ("status",), localstripe=False),
    "events": ListSpec("event", "/v1/events", ("type",)),
}


@dataclass(frozen=True)
class _Summary:
    object_id: str
    created: int
    # Creation order within its source, so that objects of one second stay in order.
    position: int
    # 0 for localstripe's objects, 1 for the shim's: the shim's come after at the same second.
    source: int


def read_range(params: Params, name: str) -> dict[str, int] | None:
    """Read a `created`-style filter: an integer, or a hash of gt, gte, lt and lte."""
    value = params.values.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, Mapping):
        exact = params.integer(name, minimum=0)
        assert exact is not None
        return {"gte": exact, "lte": exact}
    bounds = Params(value, name)
    bounds.reject_unknown(CREATED_OPERATORS)
    read = {operator: bounds.integer(operator, minimum=0) for operator in CREATED_OPERATORS}
    return {operator: limit for operator, limit in read.items() if limit is not None}


def in_range(value: int, bounds: Mapping[str, int] | None) -> bool:
    if not bounds:
        return True
    return (
        ("gt" not in bounds or value > bounds["gt"])
        and ("gte" not in bounds or value >= bounds["gte"])
        and ("lt" not in bounds or value < bounds["lt"])
        and ("lte" not in bounds or value <= bounds["lte"])
    )


def payout_balance_transaction(payout: Mapping[str, Any], created: int) -> dict[str, Any]:
    """Return a payout's own balance transaction: the amount leaving the Stripe balance."""
    amount = -int(payout["amount"])
    return {
        "id": new_id("txn_"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": created,
        "balance_type": "payments",
        "created": created,
        "currency": payout["currency"],
        "description": "STRIPE PAYOUT",
        "exchange_rate": None,
        "fee": 0,
        "fee_details": [],
        "net": amount,
        "reporting_category": "payout",
        "source": payout["id"],
        "status": "available",
        "type": "payout",
    }


class ObjectLists:
    """The shim's list endpoints and its payouts.

    `shim_transactions` returns the shim's dispute balance transactions, `shim_events` the
    shim's events, `reshape` brings localstripe's objects to the pinned API version in place,
    and `emit` sends a shim event.
    """

    def __init__(
        self,
        localstripe: LocalStripeClient,
        shim_transactions: Callable[[], list[dict[str, Any]]],
        shim_events: Callable[[], list[dict[str, Any]]],
        reshape: Callable[[Any], bool],
        emit: Emit,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._localstripe = localstripe
        self._shim_transactions = shim_transactions
        self._shim_events = shim_events
        self._reshape = reshape
        self._emit = emit
        self._clock = clock
        self._lock = threading.Lock()
        self._payouts: dict[str, dict[str, Any]] = {}
        # Balance transaction ids per payout, the payout's own transaction included.
        self._payout_members: dict[str, list[str]] = {}
        self._payout_transactions: dict[str, dict[str, Any]] = {}
        self._paid_out: set[str] = set()

    # -- lists ----------------------------------------------------------------------------------

    def list_page(self, name: str, params: Params) -> dict[str, Any]:
        """Return one page of a list endpoint, as `GET /v1/{name}` does on Stripe."""
        spec = LISTS[name]
        extra = {"created", *spec.filters}
        if name == "balance_transactions":
            extra.add("payout")
        if name == "payouts":
            extra.add("arrival_date")
        if name == "events":
            extra.add("types")
        params.reject_unknown(PAGING_PARAMETERS | extra)
        read_expand(params, ())
        created = read_range(params, "created")
        equals = {field: value for field in spec.filters if (value := params.text(field))}
        if name == "invoices" and "status" in equals and equals["status"] not in INVOICE_STATUSES:
            raise invalid_parameter("status", "one of " + ", ".join(INVOICE_STATUSES))
        if name == "balance_transactions" and "currency" in equals:
            equals["currency"] = read_currency(params)

        if name == "payouts":
            summaries = self._payout_summaries(
                created, read_range(params, "arrival_date"), equals.get("status")
            )
        else:
            types = None
            if name == "events":
                types = params.texts("types", max_items=MAX_EVENT_TYPES)
                if types is not None and "type" in equals:
                    raise StripeApiError(
                        400, "You may only specify one of these parameters: type, types.",
                        param="types",
                    )  # fmt: skip
            ids = None
            if name == "balance_transactions" and (payout := params.text("payout")):
                ids = self._payout_member_ids(payout)
            summaries = self._localstripe_summaries(spec.kind, created, equals, types, ids)
            summaries += self._shim_summaries(name, created, equals, types, ids)

        summaries.sort(key=lambda s: (s.created, s.source, s.position), reverse=True)
        page = paginate(
            [{"id": summary.object_id} for summary in summaries], params, spec.url, spec.kind
        )
        page["data"] = self._full_objects(spec.kind, [item["id"] for item in page["data"]])
        return page

    def _localstripe_summaries(
        self,
        kind: str,
        created: dict[str, int] | None,
        equals: dict[str, str],
        types: list[str] | None,
        ids: list[str] | None,
    ) -> list[_Summary]:
        request: dict[str, Any] = {"kind": kind, "equals": equals}
        if created:
            request["created"] = created
        if types is not None:
            request["types"] = types
        if ids is not None:
            request["ids"] = ids
        found = self._localstripe.call_json("/_shim/objects/summaries", request)
        return [
            _Summary(str(object_id), int(moment), int(position), 0)
            for object_id, moment, position in found.get("data") or []
        ]

    def _shim_summaries(
        self,
        name: str,
        created: dict[str, int] | None,
        equals: dict[str, str],
        types: list[str] | None,
        ids: list[str] | None,
    ) -> list[_Summary]:
        if name == "balance_transactions":
            with self._lock:
                owned = [*self._payout_transactions.values()]
            owned = [*self._shim_transactions(), *owned]
        elif name == "events":
            owned = self._shim_events()
        else:
            return []
        requested = None if ids is None else set(ids)
        return [
            _Summary(str(item["id"]), int(item["created"]), position, 1)
            for position, item in enumerate(owned)
            if (requested is None or item["id"] in requested)
            and in_range(int(item["created"]), created)
            and (types is None or item.get("type") in types)
            and all(item.get(field) == value for field, value in equals.items())
        ]

    def _full_objects(self, kind: str, ids: list[str]) -> list[dict[str, Any]]:
        owned: dict[str, dict[str, Any]] = {}
        if kind == "balance_transaction":
            owned = {str(item["id"]): item for item in self._shim_transactions()}
            with self._lock:
                owned.update(copy.deepcopy(self._payout_transactions))
        elif kind == "event":
            owned = {str(item["id"]): item for item in self._shim_events()}
        elif kind == "payout":
            with self._lock:
                owned = copy.deepcopy(self._payouts)

        foreign = [object_id for object_id in ids if object_id not in owned]
        exported: dict[str, dict[str, Any]] = {}
        if foreign:
            found = self._localstripe.call_json(
                "/_shim/objects/export", {"kind": kind, "ids": foreign}
            )
            data = found.get("data") or []
            self._reshape(data)
            exported = {str(item["id"]): item for item in data}
        return [owned.get(object_id) or exported[object_id] for object_id in ids]

    # -- payouts --------------------------------------------------------------------------------

    def _payout_summaries(
        self, created: dict[str, int] | None, arrival: dict[str, int] | None, status: str | None
    ) -> list[_Summary]:
        if status is not None and status not in PAYOUT_STATUSES:
            raise invalid_parameter("status", "one of " + ", ".join(PAYOUT_STATUSES))
        with self._lock:
            payouts = list(self._payouts.values())
        return [
            _Summary(str(payout["id"]), int(payout["created"]), position, 1)
            for position, payout in enumerate(payouts)
            if in_range(int(payout["created"]), created)
            and in_range(int(payout["arrival_date"]), arrival)
            and (status is None or payout["status"] == status)
        ]

    def _payout_member_ids(self, payout_id: str) -> list[str]:
        with self._lock:
            members = self._payout_members.get(payout_id)
        if members is None:
            raise resource_missing("payout", payout_id, "payout")
        return list(members)

    def retrieve_payout(self, payout_id: str, params: Params) -> dict[str, Any]:
        params.reject_unknown({"expand"})
        read_expand(params, ())
        with self._lock:
            payout = self._payouts.get(payout_id)
            if payout is None:
                raise resource_missing("payout", payout_id)
            return copy.deepcopy(payout)

    def balance_transaction(self, transaction_id: str) -> dict[str, Any] | None:
        """Return a payout's own balance transaction, or None if it is not one."""
        with self._lock:
            found = self._payout_transactions.get(transaction_id)
            return None if found is None else copy.deepcopy(found)

    def create_payout(
        self,
        currency: str,
        arrival_date: int,
        balance_transactions: Sequence[str] | None = None,
        amount: int | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """Pay out balance transactions automatically, as Stripe's payout schedule would.

        The payout covers `balance_transactions`, or else every available transaction in
        `currency` that no payout covers yet, payouts excluded. Its amount is the sum of their
        `net` unless `amount` is given, which a test uses to plant a payout that does not add
        up. It is `paid` once `arrival_date` has passed, else `in_transit`. Sends
        `payout.created`, and `payout.paid` when paid. Raises StripeApiError naming the
        parameter when a transaction is unknown, in another currency or already paid out, or
        when the amount is not positive.
        """
        if arrival_date < 0:
            raise invalid_parameter("arrival_date", "a Unix time in seconds")
        now = int(self._clock())
        created = now if created is None else created
        members = self._payout_candidates(currency, balance_transactions)
        total = sum(int(member["net"]) for member in members)
        amount = total if amount is None else amount
        if amount <= 0:
            raise invalid_parameter("amount", "a positive amount: the transactions add up to 0")

        payout_id = new_id("po_")
        payout: dict[str, Any] = {
            "id": payout_id,
            "object": "payout",
            "amount": amount,
            "application_fee": None,
            "application_fee_amount": None,
            "arrival_date": arrival_date,
            "automatic": True,
            "balance_transaction": None,
            "created": created,
            "currency": currency,
            "description": "STRIPE PAYOUT",
            "destination": "ba_" + new_id("", 24),
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": {},
            "method": "standard",
            "original_payout": None,
            "payout_method": None,
            "reconciliation_status": "completed",
            "reversed_by": None,
            "source_type": "card",
            "statement_descriptor": None,
            "status": "paid" if arrival_date <= now else "in_transit",
            "trace_id": None,
            "type": "bank_account",
        }
        own = payout_balance_transaction(payout, created)
        payout["balance_transaction"] = own["id"]
        member_ids = [str(member["id"]) for member in members]
        with self._lock:
            if self._paid_out.intersection(member_ids):
                raise invalid_parameter("balance_transactions", "transactions no payout covers")
            self._paid_out.update(member_ids)
            self._payouts[payout_id] = payout
            self._payout_transactions[own["id"]] = own
            self._payout_members[payout_id] = [*member_ids, own["id"]]
            created_payout = copy.deepcopy(payout)

        self._emit("payout.created", created_payout)
        if created_payout["status"] == "paid":
            self._emit("payout.paid", created_payout)
        return created_payout

    def _payout_candidates(
        self, currency: str, requested: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        with self._lock:
            paid_out = set(self._paid_out)
        owned = {str(item["id"]): item for item in self._shim_transactions()}
        if requested is None:
            request = {"kind": "balance_transaction", "equals": {"currency": currency}}
            found = self._localstripe.call_json("/_shim/objects/summaries", request)
            ids = [str(row[0]) for row in found.get("data") or []]
            ids += [key for key, item in owned.items() if item["currency"] == currency]
            ids = [object_id for object_id in ids if object_id not in paid_out]
        else:
            ids = list(requested)
            if len(set(ids)) != len(ids):
                raise invalid_parameter("balance_transactions", "distinct transaction ids")

        foreign = [object_id for object_id in ids if object_id not in owned]
        exported: dict[str, dict[str, Any]] = {}
        if foreign:
            known = self._localstripe.call_json(
                "/_shim/objects/summaries", {"kind": "balance_transaction", "ids": foreign}
            )
            missing = set(foreign) - {str(row[0]) for row in known.get("data") or []}
            if missing:
                raise resource_missing(
                    "balance_transaction", sorted(missing)[0], "balance_transactions"
                )
            found = self._localstripe.call_json(
                "/_shim/objects/export", {"kind": "balance_transaction", "ids": foreign}
            )
            exported = {str(item["id"]): item for item in found.get("data") or []}

        members = [owned.get(object_id) or exported[object_id] for object_id in ids]
        for member in members:
            if member["currency"] != currency:
                raise invalid_parameter(
                    "balance_transactions", f"transactions in the payout currency {currency}"
                )
            if member["id"] in paid_out:
                raise invalid_parameter("balance_transactions", "transactions no payout covers")
        return members
