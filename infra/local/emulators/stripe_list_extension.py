"""Routes added to localstripe for the Stripe shim's lists, and a bulk seed of charges for tests.

localstripe 1.15.10 lists most objects oldest first in store order, filters `created` on
charges by `gt` only, and has no `created` filter on invoices or refunds. It also exports each
charge with its `refunds`, `amount_refunded` and `refunded`, and each of those scans the whole
store, so exporting every charge of a large store takes quadratic time. The shim therefore
filters, orders and pages lists itself, and reads localstripe's objects through two routes
that run on localstripe's event loop like its own routes:

- `POST /_shim/objects/summaries` (JSON: `kind`, optional `created` with `gt`/`gte`/`lt`/`lte`,
  `equals` mapping attribute names to values, `types` for events, and `ids`) returns
  `{"data": [[id, created, position], ...]}` for every matching object of that kind, where
  `position` is the object's place in localstripe's store (its creation order).
- `POST /_shim/objects/export` (JSON: `kind`, `ids`) returns `{"data": [...]}`, the exported
  objects in the order of `ids`. Charges are exported with their refunds read from one index
  built per request, so a page costs one scan of the store.

For tests and the bench, `POST /_shim/seed/charges` (JSON: `customer`, `payment_method` of that
customer, `currency`, and `charges`, each with `amount`, `created` and an optional `refund`
amount and `refund_created`) creates succeeded card charges with their balance transactions,
and refunds with theirs, dated `created`. Stripe cannot backdate objects, but a reconciliation
test needs objects on both sides of a period boundary. No event is sent for them, because
localstripe sends none for a charge or refund created directly. It returns the ids only.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from aiohttp import web

# Importing localstripe's server registers its routes, and aiohttp 3.x warns once per route.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Bare functions are deprecated", DeprecationWarning)
    from localstripe import resources, server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The localstripe classes the shim lists, by Stripe's `object` name.
LISTED_KINDS: Final[Mapping[str, Any]] = {
    "balance_transaction": resources.BalanceTransaction,
    "charge": resources.Charge,
    "event": resources.Event,
    "invoice": resources.Invoice,
    "refund": resources.Refund,
}
RANGE_OPERATORS: Final = ("gt", "gte", "lt", "lte")
MAX_SEED_CHARGES: Final = 20_000


def _error(status: int, message: str, param: str) -> web.Response:
    body = {"error": {"type": "invalid_request_error", "message": message, "param": param}}
    response: web.Response = server.json_response(body, status=status)
    return response


def _in_range(value: Any, bounds: Mapping[str, int]) -> bool:
    if not isinstance(value, int):
        return False
    return (
        ("gt" not in bounds or value > bounds["gt"])
        and ("gte" not in bounds or value >= bounds["gte"])
        and ("lt" not in bounds or value < bounds["lt"])
        and ("lte" not in bounds or value <= bounds["lte"])
    )


def _read_bounds(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not set(value) <= set(RANGE_OPERATORS):
        raise ValueError("created must map gt, gte, lt or lte to integers")
    bounds = {str(name): int(limit) for name, limit in value.items()}
    return bounds


def _objects_of(kind: str) -> Iterable[tuple[int, Any]]:
    prefix = kind + ":"
    for position, (key, value) in enumerate(resources.store.items()):
        if isinstance(key, str) and key.startswith(prefix):
            yield position, value


async def object_summaries(request: web.Request) -> web.StreamResponse:
    data = await request.json()
    kind = data.get("kind")
    if kind not in LISTED_KINDS:
        return _error(400, f"kind must be one of {', '.join(LISTED_KINDS)}", "kind")
    try:
        bounds = _read_bounds(data.get("created"))
    except (TypeError, ValueError) as exc:
        return _error(400, str(exc), "created")
    equals = data.get("equals") or {}
    types = data.get("types")
    ids = data.get("ids")
    requested_ids = None if ids is None else set(ids)
    requested_types = None if types is None else set(types)

    summaries = []
    for position, obj in _objects_of(kind):
        if requested_ids is not None and obj.id not in requested_ids:
            continue
        if bounds and not _in_range(obj.created, bounds):
            continue
        if requested_types is not None and getattr(obj, "type", None) not in requested_types:
            continue
        if any(getattr(obj, name, None) != value for name, value in equals.items()):
            continue
        summaries.append([obj.id, obj.created, position])
    response: web.Response = server.json_response({"data": summaries})
    return response


def _refunds_by_charge() -> dict[str, list[Any]]:
    refunds: dict[str, list[Any]] = defaultdict(list)
    for _, refund in _objects_of("refund"):
        refunds[refund.charge].append(refund)
    return refunds


def export_objects(kind: str, ids: list[str]) -> list[dict[str, Any]]:
    """Export localstripe objects by id, with each charge's refunds read from a single index.

    localstripe's `Charge.refunds` lists refunds through `Refund._api_list_all`, which scans
    the store. That classmethod is replaced by an index lookup while this function exports,
    and restored before it returns. The export runs on localstripe's event loop without
    awaiting, so no other request runs while the replacement is in place.
    """
    cls = LISTED_KINDS[kind]
    refunds = _refunds_by_charge()
    original = resources.Refund.__dict__["_api_list_all"]

    def indexed(
        refund_cls: Any,
        url: str,
        charge: str | None = None,
        payment_intent: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Any:
        listed = resources.List(url, limit=limit, starting_after=starting_after)
        if charge is None and payment_intent is not None:
            charge = resources.PaymentIntent._api_retrieve(payment_intent).latest_charge.id
        found = refunds.get(charge or "", [])
        listed._list = sorted(found, key=lambda refund: refund.date, reverse=True)
        return listed

    resources.Refund._api_list_all = classmethod(indexed)
    try:
        return [cls._api_retrieve(object_id)._export() for object_id in ids]
    finally:
        resources.Refund._api_list_all = original


async def export_route(request: web.Request) -> web.StreamResponse:
    data = await request.json()
    kind = data.get("kind")
    ids = data.get("ids")
    if kind not in LISTED_KINDS:
        return _error(400, f"kind must be one of {', '.join(LISTED_KINDS)}", "kind")
    if not isinstance(ids, list) or not all(isinstance(object_id, str) for object_id in ids):
        return _error(400, "ids must be a list of object ids", "ids")
    response: web.Response = server.json_response({"data": export_objects(kind, ids)})
    return response


def _seed_one(
    customer: str, payment_method: str, currency: str, spec: Mapping[str, Any]
) -> dict[str, str | None]:
    created = int(spec["created"])
    charge = resources.Charge(
        amount=int(spec["amount"]), currency=currency, customer=customer, source=payment_method
    )
    charge._initialize_charge()
    if charge.status != "succeeded":
        raise ValueError("the payment method declined the seeded charge")
    charge.created = created
    transaction = resources.BalanceTransaction._api_retrieve(charge.balance_transaction)
    transaction.created = transaction.available_on = created
    seeded: dict[str, str | None] = {
        "charge": charge.id,
        "balance_transaction": charge.balance_transaction,
        "refund": None,
        "refund_balance_transaction": None,
    }

    refund_amount = spec.get("refund")
    if refund_amount is None:
        return seeded
    refund = resources.Refund(charge=charge.id, amount=int(refund_amount))
    refund_created = int(spec.get("refund_created") or created)
    refund.created = refund.date = refund_created
    refund_transaction = resources.BalanceTransaction._api_retrieve(refund.balance_transaction)
    refund_transaction.created = refund_transaction.available_on = refund_created
    seeded["refund"] = refund.id
    seeded["refund_balance_transaction"] = refund.balance_transaction
    return seeded


async def seed_charges(request: web.Request) -> web.StreamResponse:
    data = await request.json()
    customer = data.get("customer")
    payment_method = data.get("payment_method")
    currency = data.get("currency")
    specs = data.get("charges")
    if not isinstance(customer, str) or not isinstance(payment_method, str):
        return _error(400, "customer and payment_method must be ids", "customer")
    if not isinstance(currency, str) or not currency:
        return _error(400, "currency must be a currency code", "currency")
    if not isinstance(specs, list) or not 1 <= len(specs) <= MAX_SEED_CHARGES:
        return _error(400, f"charges must list 1 to {MAX_SEED_CHARGES} charges", "charges")
    resources.Customer._api_retrieve(customer)

    try:
        seeded = [_seed_one(customer, payment_method, currency.lower(), spec) for spec in specs]
    except (KeyError, TypeError, ValueError) as exc:
        return _error(400, f"invalid charge in charges: {exc}", "charges")
    response: web.Response = server.json_response({"data": seeded})
    return response


LIST_EXTENSION_ROUTES: Final[tuple[tuple[str, str, Handler], ...]] = (
    ("POST", "/_shim/objects/summaries", object_summaries),
    ("POST", "/_shim/objects/export", export_route),
    ("POST", "/_shim/seed/charges", seed_charges),
)
