"""Routes added to localstripe for the Stripe shim: renew a subscription, pay an open invoice.

localstripe keeps its objects in module globals that only its own event loop may touch, so
these routes are registered on the aiohttp application that `LocalStripe` serves and run on
that loop like localstripe's own routes. They authenticate like localstripe's API (a secret key
that starts with `sk_`), and their errors have Stripe's shape.

- `POST /_shim/subscriptions/{id}/renew` (form or JSON: `balance`, optional `discount[amount]`
  and `discount[description]`) renews an `active` or `past_due` subscription now. Its period
  moves on by one interval, then a finalized renewal invoice is created from the subscription
  items and the customer's pending invoice items. A `discount` becomes a negative pending
  invoice item first. `balance` is the customer's balance in the pinned API version's sign
  (negative is a credit): localstripe subtracts it from the invoice total and stores it,
  sign inverted, as `starting_balance`. The invoice is then charged to the customer's default
  payment method. On success localstripe sends `invoice.payment_succeeded` and the subscription
  is `active`. On failure the invoice stays `open` with `attempt_count` 1, the subscription
  becomes `past_due`, and `invoice.payment_failed` is sent. Either way `invoice.finalized` and
  `customer.subscription.updated` (with `previous_attributes`) are sent. Returns the invoice.
- `POST /_shim/invoices/{id}/pay` pays an open invoice like localstripe's
  `POST /v1/invoices/{id}/pay`, then counts the attempt in `attempt_count`. When the payment
  changes the subscription's status, `customer.subscription.updated` is sent. A declined card
  sends `invoice.payment_failed` and returns 402 `card_error` with code `card_declined`.

Both treat an asynchronous (SEPA debit) payment that is still processing as failed, because
localstripe settles it half a second later.

- `POST /_shim/customers/{id}/unset` (JSON: `fields`, a list of customer fields, and
  `metadata_keys`, a list of keys or `"*"` for all) sets the fields to null and removes the
  metadata keys, then sends `customer.updated`. Stripe unsets a field given the empty string,
  where localstripe would store the empty string and cannot remove a metadata key at all, so
  the shim's customer update uses this route for those parameters. Returns the customer.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from aiohttp import web

# Importing localstripe's server registers its routes, and aiohttp 3.x warns once per route.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Bare functions are deprecated", DeprecationWarning)
    from localstripe import resources, server
    from localstripe.errors import UserError

RENEWABLE_STATUSES: Final = ("active", "past_due")
# Customer fields that Stripe unsets when a request gives them the empty string.
UNSETTABLE_CUSTOMER_FIELDS: Final = frozenset(
    {"name", "email", "phone", "description", "address", "preferred_locales"}
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, **fields: str) -> web.Response:
    body = {"error": {"type": "invalid_request_error", "message": message, **fields}}
    response: web.Response = server.json_response(body, status=status)
    return response


def _read_integer(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name, 0)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise UserError(400, f"Invalid {name}: must be an integer", {"param": name}) from exc


def _send_subscription_updated(subscription: Any, previous: Mapping[str, Any]) -> None:
    """Send `customer.subscription.updated` with the attributes that changed since `previous`."""
    event = resources.Event("customer.subscription.updated", subscription)
    event.data["previous_attributes"] = {
        name: value for name, value in previous.items() if getattr(subscription, name) != value
    }
    resources.schedule_webhook(event)


def _create_cycle_invoice(subscription: Any, customer: Any, balance: int) -> Any:
    """Create and finalize the invoice of the subscription's current period."""
    pending = [
        item
        for item in resources.InvoiceItem._api_list_all(None, customer=customer.id, limit=99)._list
        if item.invoice is None
    ]

    # localstripe subtracts the legacy `account_balance` (a credit is positive there) from the
    # invoice total, so it is set for this one invoice and restored right after.
    previous_balance = customer.account_balance
    customer.account_balance = -balance
    try:
        invoice = resources.Invoice(
            customer=customer.id,
            subscription=subscription.id,
            items=pending + subscription.items._list,
            tax_percent=subscription.tax_percent,
            default_tax_rates=[rate.id for rate in subscription.default_tax_rates or []],
            date=subscription.current_period_start,
        )
    finally:
        customer.account_balance = previous_balance

    invoice._finalize()
    resources.schedule_webhook(resources.Event("invoice.finalized", invoice))
    return invoice


def _collect(invoice: Any, customer: Any) -> bool:
    """Charge the finalized invoice to the customer's default payment method, and return whether it is paid."""
    if invoice.status == "paid":
        # Nothing is left to charge, and localstripe sends no event for that on its own.
        invoice._on_payment_success()
        return True
    if customer._get_default_payment_method_or_source() is None:
        return False
    resources.Invoice._api_pay_invoice(invoice.id)
    return bool(invoice.status == "paid")


async def renew_subscription(request: web.Request) -> web.StreamResponse:
    data = await server.get_post_data(request) or {}
    balance = _read_integer(data, "balance")
    discount = data.get("discount")
    subscription_id = request.match_info["id"]
    subscription = resources.Subscription._api_retrieve(subscription_id)
    if subscription.status not in RENEWABLE_STATUSES:
        return _error(
            400,
            f"Subscription {subscription_id} is {subscription.status}: only active or past_due "
            "subscriptions renew.",
            param="subscription",
        )
    customer = resources.Customer._api_retrieve(subscription.customer)

    previous = {"latest_invoice": subscription.latest_invoice, "status": subscription.status}
    start_date = subscription.start_date
    discount_item = None
    try:
        # The new period starts where the current one ends.
        subscription.start_date = subscription.current_period_end
        if isinstance(discount, Mapping):
            discount_item = resources.InvoiceItem(
                customer=customer.id,
                subscription=subscription.id,
                amount=-_read_integer(discount, "amount"),
                currency=subscription.plan.currency,
                description=str(discount.get("description") or "Discount"),
            )
        invoice = _create_cycle_invoice(subscription, customer, balance)
    except Exception:
        # Nothing was invoiced, so the period and the pending items stay as they were.
        subscription.start_date = start_date
        if discount_item is not None and discount_item.invoice is None:
            resources.InvoiceItem._api_delete(discount_item.id)
        raise

    if not _collect(invoice, customer):
        invoice._shim_attempts = 1
        subscription._on_recurring_payment_failure(invoice)
        resources.schedule_webhook(resources.Event("invoice.payment_failed", invoice))
    _send_subscription_updated(subscription, previous)
    response: web.Response = server.json_response(invoice._export())
    return response


async def pay_invoice(request: web.Request) -> web.StreamResponse:
    invoice = resources.Invoice._api_retrieve(request.match_info["id"])
    subscription = None
    if invoice.subscription:
        subscription = resources.Subscription._api_retrieve(invoice.subscription)
    previous = {} if subscription is None else {"status": subscription.status}
    # An invoice that already has a PaymentIntent had one attempt, which failed.
    attempts = getattr(invoice, "_shim_attempts", 0 if invoice.payment_intent is None else 1)

    resources.Invoice._api_pay_invoice(invoice.id)
    invoice._shim_attempts = invoice.attempt_count = attempts + 1
    if subscription is not None and previous["status"] == "canceled":
        # localstripe would reactivate a canceled subscription whose invoice gets paid.
        subscription.status = "canceled"

    if invoice.status == "paid":
        if subscription is not None and subscription.status != previous["status"]:
            _send_subscription_updated(subscription, previous)
        response: web.Response = server.json_response(invoice._export())
        return response

    resources.schedule_webhook(resources.Event("invoice.payment_failed", invoice))
    charge = invoice.charge
    error = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
    }
    if charge is not None:
        error["charge"] = charge.id
    declined: web.Response = server.json_response({"error": error}, status=402)
    return declined


async def unset_customer_fields(request: web.Request) -> web.StreamResponse:
    data = await server.get_post_data(request) or {}
    fields = data.get("fields") or []
    metadata_keys = data.get("metadata_keys") or []
    if not isinstance(fields, list) or not all(
        name in UNSETTABLE_CUSTOMER_FIELDS for name in fields
    ):
        return _error(400, "fields must list customer fields Stripe can unset", param="fields")
    if metadata_keys != "*" and not (
        isinstance(metadata_keys, list) and all(isinstance(key, str) for key in metadata_keys)
    ):
        return _error(400, 'metadata_keys must be a list of keys or "*"', param="metadata_keys")
    customer = resources.Customer._api_retrieve(request.match_info["id"])

    for name in fields:
        setattr(customer, name, None)
    if metadata_keys == "*":
        customer.metadata = {}
    else:
        for key in metadata_keys:
            (customer.metadata or {}).pop(key, None)
    resources.schedule_webhook(resources.Event("customer.updated", customer))
    response: web.Response = server.json_response(customer._export())
    return response


EXTENSION_ROUTES: Final[tuple[tuple[str, str, Handler], ...]] = (
    ("POST", "/_shim/subscriptions/{id}/renew", renew_subscription),
    ("POST", "/_shim/invoices/{id}/pay", pay_invoice),
    ("POST", "/_shim/customers/{id}/unset", unset_customer_fields),
)
