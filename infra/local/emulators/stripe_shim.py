"""Stripe shim in front of localstripe: the routes, controls, shapes and webhooks it lacks.

`StripeShim` is an HTTP server that the official stripe SDK (16.1.0, API version
`2026-10-28.endive`) uses as its API base. It serves what localstripe 1.15.10 lacks and passes
every other request to a running `LocalStripe` (see `infra/local/emulators/stripe.py`):

    with LocalStripe() as local_stripe, StripeShim(local_stripe.base_url) as shim:
        client = stripe.StripeClient(TEST_API_KEY, base_addresses={"api": shim.base_url})

Served by the shim (authenticated like Stripe, with any secret key that starts with `sk_`):

- `POST /v1/prices`, `GET /v1/prices/{id}`, `GET /v1/prices` (filters `active`, `currency`,
  `product`, `type`, `lookup_keys[]`, paging). A recurring price is also a localstripe Plan with
  the same id, as on Stripe, so subscriptions in localstripe can use it. A one-off price lives in
  the shim only. `GET /v1/prices/{id}` of a Plan created directly in localstripe returns it in
  the Price shape.
- `POST /v1/checkout/sessions` (modes `subscription` and `payment`, one line item, at most one
  `discounts` entry, `payment_intent_data[metadata]` in payment mode) and
  `GET /v1/checkout/sessions/{id}`. The hosted page is `GET /checkout/{id}`, in 简体中文 or
  English by the session's `locale`, with a choice of test cards. `POST /checkout/{id}/pay`
  (optional `payment_method`, one of the test ids in `stripe_charges.TEST_CARDS`, default
  `pm_card_visa`) pays through localstripe: it creates the subscription (with
  `subscription_data[metadata]`, its first invoice `billing_reason: "subscription_create"`) or
  a confirmed PaymentIntent, redeems the discount, completes the session and sends
  `checkout.session.completed`. A browser form gets a 303 redirect to `success_url`, and a
  request with `Accept: application/json` gets `{"checkout_session": ..., "event_id": ...}`.
- `POST /v1/coupons`, validated with errors that name the parameter, with Stripe's generated
  id when none is given, and `name`, `max_redemptions` and `redeem_by` kept by the shim.
  Retrieving, listing and deleting coupons is localstripe's.
- `POST /v1/promotion_codes`, `GET /v1/promotion_codes/{id}`, `GET /v1/promotion_codes`
  (filters `active`, `code`, `coupon`, `customer`, `created`, paging) and
  `POST /v1/promotion_codes/{id}` (`active`, `metadata`). A Checkout Session's coupon or code
  is checked (exists, active, not expired or used up, customer, `minimum_amount`,
  `first_time_transaction`, currency of an `amount_off` coupon) at creation and again at
  payment, and counted in `times_redeemed` once per completed session. The discount takes off
  `amount_total` in payment mode. In subscription mode it takes off the first invoice, and a
  `repeating` or `forever` coupon also takes off the renewals it covers. The subscription and
  its invoices list the `di_...` discount in `discounts`.
- `POST /v1/customers/{id}/balance_transactions` (`amount` not 0, negative is a credit,
  `currency` equal to the customer's), `GET .../{id}`, `POST .../{id}` (`description`,
  `metadata`) and the list. Customers are served with `balance` (the sum) and `currency`.
  `balance` on `POST /v1/customers` is rejected, because localstripe would apply it to every
  invoice.
- `POST /v1/customers/{id}` unsets `name`, `email`, `phone`, `description`, `address` and
  `preferred_locales` given the empty string, removes every metadata key given `metadata=""`
  and one key given `metadata[key]=""`, as Stripe does. localstripe would store the empty
  strings; other parameters still go to localstripe's update.
- `POST /v1/refunds` refunds through localstripe (by default what is left of the charge), then
  sends `refund.created` and `charge.refunded` with the charge. A refund keeps its `reason`. A
  disputed, fully refunded or smaller charge is rejected as on Stripe.
- `GET /v1/disputes/{id}`, `GET /v1/disputes` (filters `charge`, `payment_intent`, `created`,
  paging), and `POST /v1/disputes/{id}/close`, which accepts the dispute (lost).
  `GET /v1/balance_transactions/{id}` also returns a dispute's withdrawal and reinstatement.
- `POST /v1/invoices/{id}/pay` pays an open invoice with the customer's default payment method
  and counts the attempt in `attempt_count`. A paid invoice brings a `past_due` subscription
  back to `active` with `customer.subscription.updated`. A declined card returns 402
  `card_declined` and sends `invoice.payment_failed`.
- `POST /v1/billing_portal/sessions`. The portal page `GET /portal/{id}` lists the customer's
  subscriptions, and `POST /portal/{id}/subscriptions/{subscription_id}/cancel` cancels one in
  localstripe, which emits `customer.subscription.deleted`. The cancel route also returns JSON
  to `Accept: application/json`.
- `GET /v1/events/{id}`: the shim's own events first, else localstripe's.
- The lists `GET /v1/invoices`, `/v1/charges`, `/v1/refunds`, `/v1/balance_transactions`,
  `/v1/payouts` (with `GET /v1/payouts/{id}`) and `/v1/events`, newest first with Stripe's
  paging and `created` filters, localstripe's objects and the shim's together (see
  `stripe_lists.py` for the filters each takes).
- The `Idempotency-Key` header on every `POST /v1/...`, forwarded routes included: a repeated
  key returns the stored response with `Idempotent-Replayed: true`, a key reused with other
  parameters gets 400 `idempotency_error`, and a key still in progress gets 409. Stored are 2xx
  responses and 402 (declined card), for 24 hours. Other errors are not stored, so a retry runs
  the request again, where Stripe would replay errors raised after validation.

Shim controls, which are not Stripe APIs. Each is a method of `StripeShim` and a `POST` route
without API key that takes form or JSON parameters and returns JSON, for `make run`:

- `renew_subscription(subscription_id)`, `POST /_shim/subscriptions/{id}/renew`: renew an
  `active` or `past_due` subscription now, as Stripe does at the end of a period. The period
  moves on by one interval, and the renewal invoice (`billing_reason: "subscription_cycle"`)
  takes off the discount and the customer's balance (`starting_balance`, `ending_balance`, an
  `applied_to_invoice` balance transaction), then is charged to the default payment method.
  Paid: `invoice.paid`, `invoice.payment_succeeded`, `customer.subscription.updated`. Declined:
  the invoice stays open with `attempt_count` 1, the subscription becomes `past_due`,
  `invoice.payment_failed` and `customer.subscription.updated`. Both also send
  `invoice.created` and `invoice.finalized`. Returns the invoice.
- `set_default_payment_method(customer_id, payment_method)`,
  `POST /_shim/customers/{id}/default_payment_method` (`payment_method`): attach a new
  PaymentMethod for a Stripe test id, for example `pm_card_chargeCustomerFail` (every charge
  declined) or `pm_card_visa`, as the customer's `invoice_settings.default_payment_method`.
- `create_dispute(charge_id, reason="fraudulent")`, `POST /_shim/charges/{id}/dispute`
  (`reason`): open a `needs_response` dispute of the whole charge, which withdraws the amount
  and a 1500 minor-unit fee and sends `charge.dispute.created` and
  `charge.dispute.funds_withdrawn`.
- `close_dispute(dispute_id, won)`, `POST /_shim/disputes/{id}/close` (`won=true|false`):
  close an open dispute. A won dispute reinstates amount and fee and sends
  `charge.dispute.closed` and `charge.dispute.funds_reinstated`. A lost one sends
  `charge.dispute.closed` only.
- `pay_checkout_session(session_id, payment_method="pm_card_visa")`, the Checkout page's pay
  route.
- `create_payout(currency, arrival_date, balance_transactions=None, amount=None)`,
  `POST /_shim/payouts` (`currency`, `arrival_date`, `balance_transactions[]`, `amount`): an
  automatic payout over the given balance transactions, or over every one that no payout covers
  yet. `amount` overrides the sum of their `net`, to plant a payout that does not add up.
  Sends `payout.created`, and `payout.paid` once `arrival_date` has passed.
- `seed_charges(customer_id, payment_method, currency, charges)`: succeeded charges and refunds
  dated in the past, without events, for reconciliation tests and the bench (method only).
- `request_counts()` and `reset_request_counts()`: the API requests served, by route, for tests
  that count a client's requests. `rate_limit_next(count)`: reject the next `count` API requests
  with 429 `rate_limit`. `fail_next(count, status, route)`: fail the next `count` requests of one
  route (named as `request_counts()` names it), or of any route, with 429 or 500 `api_error`;
  `injected_faults()` counts the failures sent, by status.

Everything else is forwarded to localstripe with its method, path, query, body and the
Authorization, Content-Type, Accept and Stripe-Version headers. JSON objects in responses and
events come back reshaped where the pinned version differs, at any depth: subscriptions get
`items.data[].current_period_start`/`current_period_end` and `items.data[].price`,
`discounts`, `currency`, `collection_method` and `default_payment_method`; invoices get the
shim's `billing_reason`, balances and discounts, and `amount_remaining`; charges get
`payment_method_details` (with the card's `brand`, `last4` and `fingerprint`), `disputed`,
`amount_captured`, `outcome` and `billing_details`; card PaymentMethods get the test card's
brand and the same fingerprint as their charges (see `stripe_charges.py`); customers get
`balance` and `currency` instead of `account_balance`; coupons get `times_redeemed` and the
shim's fields; and every event gets `api_version: "2026-10-28.endive"`, `pending_webhooks` and
`request`.

Webhooks: at `start()` the shim registers itself with localstripe (endpoint id `stripe-shim`,
signed with a random secret that the shim checks) and forwards localstripe's events, reshaped
as above, together with its own events, to the single endpoint set by `configure_webhook()`.
For each `invoice.payment_succeeded` from localstripe the shim also sends `invoice.paid`.
Each attempt is signed with the time it is sent: `Stripe-Signature: t=<now>,v1=<HMAC-SHA256 of
"t.body">`. A non-2xx response or a connection error is retried after each of `retry_delays`.
`set_delivery()` duplicates, shuffles or delays deliveries for tests, `flush()` sends everything
held and waits, and `deliveries()` lists every attempt without bodies. Do not also register the
product's endpoint directly with `LocalStripe.configure_webhook()`, or it receives every
localstripe event twice.

Known gaps, where the pinned version differs from what the shim returns:

- Subscriptions keep localstripe's legacy fields (top-level `plan`, `quantity`,
  `current_period_*`, `discount`, `tax_percent`) and lack `billing_mode` and
  `cancellation_details`. `expand[]=discounts` is rejected by localstripe.
- Invoices lack `payments` and `total_taxes`, keep `charge` as a whole Charge object, and list a
  discount as a negative line item. PaymentIntents expand `latest_charge`. See
  `docs/localstripe-gaps.md`.
- Time does not pass on its own: a subscription renews only through `renew_subscription()`,
  a Checkout Session never sends `checkout.session.expired`, and a `past_due` subscription is
  never retried or canceled.
- Payouts exist only through `create_payout()`: `POST /v1/payouts` (a manual payout) is not
  served, and the shim has no way to fail, cancel or reverse a payout.
- Checkout Sessions take exactly one line item with an existing price (no `price_data`), no
  `customer_email` collection on the page, no `setup` mode, and no `expand`.
  `allow_promotion_codes` is stored but the page has no code field. A card declined at
  checkout leaves an `incomplete` subscription in localstripe.
- The balance applies to renewal invoices only, in the customer's currency, and not to the
  first invoice of a Checkout Session.
- Coupons with `applies_to` or `currency_options` are rejected, and updating a coupon's `name`
  is forwarded to localstripe, which rejects it.
- Disputes cannot take evidence (`POST /v1/disputes/{id}` is not served), and never pass
  through `under_review`.
- Prices cannot be updated or deleted, and a Plan created directly in localstripe is retrievable
  as a Price but not listed.
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
import logging
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from idsentry.adapters.stripe_gateway import API_VERSION
from idsentry.i18n import Locale
from idsentry.services.stripe_signature import SignatureError, verify
from infra.local.emulators.base import LoopbackHTTPServer, Request, Response, json_response
from infra.local.emulators.stripe import TEST_API_KEY, WEBHOOK_CONFIG_PREFIX, is_loopback_http_url
from infra.local.emulators.stripe_api import (
    ID_SEGMENT,
    MAX_LIST_LIMIT,
    ApiRoute,
    LocalStripeError,
    Params,
    RouteHandler,
    StripeApiError,
    api_key_from,
    api_route,
    invalid_parameter,
    missing_parameter,
    new_id,
    paginate,
    query_pairs,
    read_currency,
    read_expand,
    read_http_url,
    request_params,
    resource_missing,
    unrecognized_route,
    unsupported_parameter,
)
from infra.local.emulators.stripe_balances import CustomerBalances
from infra.local.emulators.stripe_charges import (
    TEST_CARDS,
    PaymentMethodCache,
    check_refundable,
    create_test_payment_method,
    read_refund_reason,
    read_test_card,
    reshape_charge,
    reshape_payment_method,
)
from infra.local.emulators.stripe_client import LocalStripeClient
from infra.local.emulators.stripe_disputes import Disputes
from infra.local.emulators.stripe_extensions import UNSETTABLE_CUSTOMER_FIELDS
from infra.local.emulators.stripe_lists import LISTS, ObjectLists
from infra.local.emulators.stripe_pages import (
    PAGE_TEXT,
    format_amount,
    html_page,
    page_locale,
    redirect,
    wants_json,
)
from infra.local.emulators.stripe_promotions import Discount, Promotions
from infra.local.emulators.stripe_webhooks import (
    DEFAULT_RETRY_DELAYS,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSender,
)
from infra.local.replay import Replay

logger = logging.getLogger(__name__)

__all__ = ["StripeApiError", "StripeShim", "WebhookDelivery"]

LOCALSTRIPE_ENDPOINT_ID = "stripe-shim"
LOCALSTRIPE_EVENTS_PATH = "/_shim/localstripe-events"
TEST_CARD_PAYMENT_METHOD = "pm_card_visa"
FLUSH_TIMEOUT_SECONDS = 30.0
# Stripe's defaults: a Checkout Session expires 24 hours after creation
# (https://docs.stripe.com/payments/checkout/managing-limited-inventory), and an idempotency key
# is kept for at least 24 hours and is at most 255 characters long
# (https://docs.stripe.com/api/idempotent_requests).
CHECKOUT_SESSION_LIFETIME_SECONDS = 24 * 3600
IDEMPOTENCY_KEY_LIFETIME_SECONDS = 24 * 3600
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_LOOKUP_KEYS = 10

# The `locale` values that Checkout Sessions accept in stripe-python 16.1.0
# (stripe/checkout/_session.py). "zh" is Simplified Chinese.
CHECKOUT_LOCALES: Final = frozenset(
    {
        "auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi",
        "fil", "fr", "fr-CA", "hi-IN", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms",
        "mt", "nb", "nl", "pl", "pt", "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi",
        "zh", "zh-HK", "zh-TW",
    }
)  # fmt: skip
PRICE_INTERVALS: Final = ("day", "week", "month", "year")
FORWARDED_REQUEST_HEADERS: Final = ("Authorization", "Content-Type", "Accept", "Stripe-Version")
PAYMENT_METHOD_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
CARD_BRAND_NAMES: Final = {"visa": "Visa", "mastercard": "Mastercard", "unionpay": "UnionPay"}
# The test cards the hosted Checkout page offers, first the default.
CHECKOUT_TEST_CARDS: Final = (
    "pm_card_visa",
    "pm_card_mastercard",
    "pm_card_unionpay",
    "pm_card_visa_debit",
    "pm_card_chargeCustomerFail",
)


# ---------------------------------------------------------------------------------------------
# The shim


@dataclass
class _CheckoutSession:
    resource: dict[str, Any]
    price_id: str
    quantity: int
    subscription_metadata: dict[str, str]
    discount: Discount | None = None
    # The `payment_intent_data` of a payment-mode session: its `metadata` only.
    payment_intent_data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _StoredResponse:
    fingerprint: str
    response: Response
    stored_at: float


class IdempotencyStore:
    """Responses kept by Idempotency-Key for 24 hours, so that a repeated POST is replayed.

    Stored are 2xx responses and 402 (a declined card). Stripe also replays any other error
    raised after the endpoint started, 500 included, but not validation errors. The shim cannot
    tell those apart, so a retry after any other error runs the request again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Insertion order is storage order, so the oldest entries come first.
        self._responses: dict[str, _StoredResponse] = {}
        self._in_flight: set[str] = set()

    def begin(self, key: str, fingerprint: str) -> Response | None:
        """Return the stored response for `key`, or None after marking the key in flight.

        Raises StripeApiError when the key is too long (400), was used with other parameters
        (400) or is still in flight (409).
        """
        if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            raise StripeApiError(
                400,
                f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters",
                error_type="idempotency_error",
            )

        now = time.monotonic()
        with self._lock:
            while self._responses:
                oldest = next(iter(self._responses))
                if now - self._responses[oldest].stored_at <= IDEMPOTENCY_KEY_LIFETIME_SECONDS:
                    break
                del self._responses[oldest]

            stored = self._responses.get(key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise StripeApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                        error_type="idempotency_error",
                    )
                headers = {**stored.response.headers, "Idempotent-Replayed": "true"}
                return replace(stored.response, headers=headers)
            if key in self._in_flight:
                raise StripeApiError(
                    409,
                    "A request with the same Idempotency-Key is still in progress.",
                    error_type="idempotency_error",
                )
            self._in_flight.add(key)
            return None

    def finish(self, key: str, fingerprint: str, response: Response) -> None:
        with self._lock:
            self._in_flight.discard(key)
            if 200 <= response.status < 300 or response.status == 402:
                self._responses[key] = _StoredResponse(fingerprint, response, time.monotonic())

    def abandon(self, key: str) -> None:
        with self._lock:
            self._in_flight.discard(key)


@dataclass
class _State:
    """Everything the shim stores, guarded by `StripeShim._lock`."""

    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkout_sessions: dict[str, _CheckoutSession] = field(default_factory=dict)
    portal_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions_paying: set[str] = field(default_factory=set)
    # Fields of localstripe's invoices that the shim sets: billing_reason, balances, discounts.
    invoice_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    refund_reasons: dict[str, str] = field(default_factory=dict)


# Paths the shim owns: a request to them that matches no API route gets Stripe's 404 for an
# unknown route instead of being forwarded to localstripe. The Invoice Payments API is missing
# from localstripe, so it also gets that 404.
SHIM_API_PATHS = re.compile(
    r"/v1/(prices|checkout/|billing_portal/|invoice_payments|disputes|promotion_codes|payouts"
    rf"|customers/{ID_SEGMENT}/balance_transactions).*"
)


class StripeShim(LoopbackHTTPServer):
    """The Stripe API for the local stack: localstripe plus the routes and shapes it lacks.

    `localstripe_url` is a running `LocalStripe`'s `base_url`. Port 0 (the default) lets the
    operating system pick a free port. `retry_delays` are the seconds before each retry of a
    failed webhook delivery, `rng` orders shuffled deliveries, and `clock` returns the Unix time
    that promotion code and coupon expiry is checked against.
    """

    def __init__(
        self,
        localstripe_url: str,
        port: int = 0,
        *,
        api_key: str = TEST_API_KEY,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not is_loopback_http_url(localstripe_url):
            raise ValueError(
                "localstripe_url must be plain http to 127.0.0.1 or [::1], for example "
                "LocalStripe().start().base_url"
            )
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {port}")
        if not api_key.startswith("sk_"):
            raise ValueError("api_key must be a secret key that starts with sk_")
        if any(delay < 0 for delay in retry_delays):
            raise ValueError("retry_delays must contain only non-negative seconds")
        super().__init__(port)

        split = urlsplit(localstripe_url)
        self._localstripe = LocalStripeClient(
            split.hostname or "", split.port or 80, api_key, self.loggable_path
        )
        self._lock = threading.Lock()
        self._price_lock = threading.Lock()
        self._state = _State()
        self._idempotency = IdempotencyStore()
        self._sender = WebhookSender(retry_delays, rng or random.Random())
        self._localstripe_secret = ""
        self._received = threading.Condition()
        self._received_event_ids: set[str] = set()
        self._event_ids_before_start: set[str] = set()
        self._balances = CustomerBalances(self._localstripe)
        self._promotions = Promotions(self._localstripe, clock)
        self._disputes = Disputes(self._emit)
        self._payment_methods = PaymentMethodCache(self._localstripe)
        self._lists = ObjectLists(
            self._localstripe,
            self._disputes.balance_transactions,
            self._shim_events,
            self._reshape,
            self._emit,
            clock,
        )
        self._counts_lock = threading.Lock()
        self._request_counts: Counter[str] = Counter()
        self._rate_limited_requests = 0
        # Injected failures still to send: [remaining, status, route or None for any route].
        self._failures: list[list[Any]] = []
        self._injected: Counter[int] = Counter()
        self._api_routes = self._build_api_routes()

    # -- lifecycle and controls ---------------------------------------------------------------

    def start(self) -> Self:
        """Serve on 127.0.0.1, start the webhook worker and register with localstripe."""
        super().start()
        try:
            self._sender.start()
            self._localstripe_secret = "whsec_" + secrets.token_hex(24)
            self._localstripe.call_config(
                WEBHOOK_CONFIG_PREFIX + LOCALSTRIPE_ENDPOINT_ID,
                {
                    "url": self.base_url + LOCALSTRIPE_EVENTS_PATH,
                    "secret": self._localstripe_secret,
                },
            )
            # Registered first, listed second: an event created before registration is either
            # in this list or still delivered, because localstripe reads its endpoints at send
            # time. flush() waits only for events created after this point.
            self._event_ids_before_start = set(self._localstripe.event_ids())
        except BaseException:
            self.stop()
            raise
        logger.info("stripe shim started", extra={"port": self.port})
        return self

    def stop(self) -> None:
        """Stop the webhook worker and the server. localstripe keeps sending to the old port.

        Calling it twice, or before `start()`, is harmless.
        """
        self._sender.stop()
        super().stop()

    def configure_webhook(self, url: str, secret: str, events: Sequence[str] | None = None) -> None:
        """Set the one endpoint that receives every event, or only the types in `events`.

        Raises ValueError naming the invalid argument.
        """
        if not isinstance(url, str) or not is_loopback_http_url(url):
            raise ValueError(
                "url must be plain http to 127.0.0.1 or [::1], for example "
                "http://127.0.0.1:8080/v1/webhooks/stripe"
            )
        if not isinstance(secret, str) or not secret:
            raise ValueError("secret must be a non-empty string")
        if isinstance(events, str):
            raise ValueError("events must be a list of event types, not a string")
        if events is not None and not all(isinstance(event, str) and event for event in events):
            raise ValueError("events must contain only non-empty event type strings")

        self._sender.configure(
            WebhookEndpoint(url, secret, None if events is None else frozenset(events))
        )
        logger.info(
            "stripe shim webhook endpoint configured",
            extra={"event_type_count": None if events is None else len(events)},
        )

    def set_delivery(
        self, duplicate: bool = False, shuffle: bool = False, delay_seconds: float = 0.0
    ) -> None:
        """Set how later events are delivered: twice each, held for `flush()`, or delayed.

        Events already held for shuffling stay held until `flush()`.
        """
        if delay_seconds < 0:
            raise ValueError(f"delay_seconds must not be negative, got {delay_seconds}")
        self._sender.set_options(duplicate=duplicate, shuffle=shuffle, delay_seconds=delay_seconds)

    def set_replay(self, replay: Replay | None) -> None:
        """Send every later webhook twice, held and shuffled (see infra.local.replay).

        It applies on top of `set_delivery()`: a delivery that option makes twice is sent four
        times. None ends replay mode.
        """
        self._sender.set_replay(replay)

    def flush(self, timeout: float = FLUSH_TIMEOUT_SECONDS) -> None:
        """Send every event created so far and wait until each delivery is done or out of retries.

        It first waits for localstripe to pass on the events it has created (localstripe sends
        each about one second after creating it), then releases held events in a random order.
        Raises TimeoutError when that takes longer than `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        expected = set(self._localstripe.event_ids()) - self._event_ids_before_start
        with self._received:
            arrived = self._received.wait_for(
                lambda: expected <= self._received_event_ids,
                timeout=max(0.0, deadline - time.monotonic()),
            )
            if not arrived:
                missing = len(expected - self._received_event_ids)
                raise TimeoutError(f"{missing} localstripe events did not reach the shim in time")
        self._sender.flush(deadline)

    def deliveries(self) -> list[WebhookDelivery]:
        """Return every webhook delivery attempt so far, oldest first, without bodies."""
        return self._sender.records()

    # -- request counts and rate limits -------------------------------------------------------

    def request_counts(self) -> dict[str, int]:
        """Return the API requests served since start or the last reset, by "METHOD /route".

        Routes are named as in the logs, for example "GET /v1/charges" for the list and
        "GET /v1/charges/<more>" for a retrieval. Requests rejected with 429 count too.
        """
        with self._counts_lock:
            return dict(self._request_counts)

    def reset_request_counts(self) -> None:
        with self._counts_lock:
            self._request_counts.clear()

    def rate_limit_next(self, count: int) -> None:
        """Reject the next `count` API requests with 429 `rate_limit`, as Stripe does under load."""
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        with self._counts_lock:
            self._rate_limited_requests = count

    def fail_next(self, count: int, status: int = 500, route: str | None = None) -> None:
        """Fail the next `count` API requests of `route` (any route when None) with `status`.

        `route` is named as `request_counts()` names it, for example "GET /v1/events/<id>".
        429 is Stripe's `rate_limit` error, which the SDK does not retry; 500 is an `api_error`,
        which the SDK retries up to its `max_network_retries`.
        """
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        if status not in (429, 500):
            raise ValueError(f"status must be 429 or 500, got {status}")
        with self._counts_lock:
            self._failures.append([count, status, route])

    def clear_failures(self) -> None:
        """Disarm the failures of fail_next and rate_limit_next that were not sent yet."""
        with self._counts_lock:
            self._failures.clear()
            self._rate_limited_requests = 0

    def injected_faults(self) -> dict[int, int]:
        """Return how many requests the shim failed on purpose since start, by HTTP status."""
        with self._counts_lock:
            return dict(self._injected)

    def _count_request(self, request: Request) -> int | None:
        """Count an API request; return the status to fail it with, or None to serve it."""
        route = f"{request.method} {self.loggable_path(request.path)}"
        with self._counts_lock:
            self._request_counts[route] += 1
            for failure in self._failures:
                if failure[0] > 0 and failure[2] in (None, route):
                    failure[0] -= 1
                    self._injected[failure[1]] += 1
                    return int(failure[1])
            if self._rate_limited_requests <= 0:
                return None
            self._rate_limited_requests -= 1
            self._injected[429] += 1
            return 429

    # -- billing controls -----------------------------------------------------------------------

    def renew_subscription(self, subscription_id: str) -> dict[str, Any]:
        """Renew a subscription now, as Stripe does at the end of its period, and return the invoice.

        The period moves on by one interval. The renewal invoice (`billing_reason:
        "subscription_cycle"`) takes off the subscription's `forever` or `repeating` discount
        and the customer's balance, then is charged to the customer's default payment method.
        On success the invoice is paid and localstripe sends `invoice.payment_succeeded`, from
        which the shim sends `invoice.paid`. On failure the invoice stays open with
        `attempt_count` 1, the subscription becomes `past_due`, and `invoice.payment_failed` is
        sent. Both send `invoice.created`, `invoice.finalized` and
        `customer.subscription.updated`. Raises StripeApiError: 404 for an unknown
        subscription, 400 for one that is not `active` or `past_due`.
        """
        subscription = self._localstripe.retrieve("subscription", subscription_id)
        status = subscription.get("status")
        if status not in ("active", "past_due"):
            raise StripeApiError(
                400,
                f"Subscription {subscription_id} is {status}: only active or past_due "
                "subscriptions renew.",
                param="subscription",
            )
        customer_id = str(subscription["customer"])
        plan = subscription["plan"]
        currency = str(plan["currency"])
        subtotal = int(plan["amount"] or 0) * int(subscription.get("quantity") or 1)
        discount = self._promotions.renewal_discount(
            subscription_id, int(subscription["current_period_end"]), subtotal
        )

        with self._balances.lock:
            balance = self._balances.balance(customer_id)
            if self._balances.currency(customer_id) not in (None, currency):
                # NOTE: a balance in another currency than the subscription's is left unused.
                balance = 0
            body: dict[str, Any] = {"balance": balance}
            if discount is not None and discount[1] > 0:
                body["discount"] = {"amount": discount[1], "description": f"Discount {discount[0]}"}
            invoice = self._localstripe.call(
                "POST", f"/_shim/subscriptions/{quote(subscription_id, safe='')}/renew", body
            )

            # localstripe stores the balance with the legacy sign: a credit is positive there.
            starting, ending = -int(invoice["starting_balance"]), -int(invoice["ending_balance"])
            # localstripe's total already has the balance taken off, and Stripe's does not.
            fields: dict[str, Any] = {
                "billing_reason": "subscription_cycle",
                "starting_balance": starting,
                "ending_balance": ending,
                "total": int(invoice["amount_due"]) + ending - starting,
            }
            if "discount" in body and discount is not None:
                fields.update(discount_fields(invoice, discount[0], discount[1]))
            with self._lock:
                self._state.invoice_fields[str(invoice["id"])] = fields
            if ending != starting:
                self._balances.record_applied(
                    customer_id, str(invoice["id"]), ending - starting, currency
                )
        self._balances.note_currency(customer_id, currency)

        self._reshape(invoice)
        logger.info(
            "stripe shim subscription renewed",
            extra={
                "subscription_id": subscription_id,
                "invoice_id": invoice["id"],
                "invoice_status": invoice.get("status"),
            },
        )
        return invoice

    def set_default_payment_method(self, customer_id: str, payment_method: str) -> dict[str, Any]:
        """Attach a new PaymentMethod for a Stripe test id and make it the customer's default.

        `payment_method` is a test id such as "pm_card_visa" or "pm_card_chargeCustomerFail"
        (attaches, then every charge is declined). Returns the attached PaymentMethod. Raises
        StripeApiError naming `payment_method` or `customer`.
        """
        test_id = read_test_card(payment_method)
        self._localstripe.retrieve("customer", customer_id)

        attached = create_test_payment_method(self._localstripe, test_id, customer_id)
        self._localstripe.call(
            "POST",
            f"/v1/customers/{quote(customer_id, safe='')}",
            {"invoice_settings": {"default_payment_method": attached["id"]}},
        )
        reshape_payment_method(attached)
        logger.info(
            "stripe shim default payment method set",
            extra={"customer_id": customer_id, "payment_method_id": attached["id"]},
        )
        return attached

    def create_dispute(self, charge_id: str, reason: str = "fraudulent") -> dict[str, Any]:
        """Open a dispute of a succeeded charge and return it, as `Disputes.create` describes."""
        charge = self._localstripe.require("charge", charge_id, "charge")
        self._reshape(charge)
        return self._disputes.create(charge, reason)

    def close_dispute(self, dispute_id: str, won: bool) -> dict[str, Any]:
        """Close an open dispute as won or lost and return it, as `Disputes.close` describes."""
        return self._disputes.close(dispute_id, won)

    def create_payout(
        self,
        currency: str,
        arrival_date: int,
        balance_transactions: Sequence[str] | None = None,
        amount: int | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """Create an automatic payout and return it, as `ObjectLists.create_payout` describes."""
        payout = self._lists.create_payout(
            currency, arrival_date, balance_transactions, amount, created
        )
        logger.info("stripe shim payout created", extra={"payout_id": payout["id"]})
        return payout

    def seed_charges(
        self,
        customer_id: str,
        payment_method: str,
        currency: str,
        charges: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, str | None]]:
        """Create succeeded charges, and refunds, dated as given, without events.

        Each entry has `amount`, `created` and optionally `refund` and `refund_created`. Returns
        the ids of each charge, refund and their balance transactions. This is a test control:
        Stripe cannot backdate objects. See `stripe_list_extension.py`.
        """
        seeded = self._localstripe.call_json(
            "/_shim/seed/charges",
            {
                "customer": customer_id,
                "payment_method": payment_method,
                "currency": currency,
                "charges": [dict(charge) for charge in charges],
            },
        )
        data: list[dict[str, str | None]] = seeded["data"]
        return data

    # -- request routing ------------------------------------------------------------------------

    def _build_api_routes(self) -> tuple[ApiRoute, ...]:
        balances, disputes, promotions = self._balances, self._disputes, self._promotions
        lists = self._lists
        return (
            api_route("POST", "/v1/prices", self.create_price),
            api_route("GET", "/v1/prices", self.list_prices),
            api_route("GET", "/v1/prices/<id>", self.retrieve_price),
            api_route("POST", "/v1/checkout/sessions", self.create_checkout_session),
            api_route("GET", "/v1/checkout/sessions/<id>", self.retrieve_checkout_session),
            api_route("POST", "/v1/billing_portal/sessions", self.create_portal_session),
            api_route("GET", "/v1/events/<id>", self.retrieve_event),
            api_route("POST", "/v1/customers", self.check_customer_params),
            api_route("POST", "/v1/customers/<id>", self.update_customer),
            api_route(
                "POST",
                "/v1/customers/<id>/balance_transactions",
                lambda _, params, ids: balances.create(ids["id"], params),
            ),
            api_route(
                "GET",
                "/v1/customers/<id>/balance_transactions",
                lambda _, params, ids: balances.list(ids["id"], params),
            ),
            api_route(
                "GET",
                "/v1/customers/<id>/balance_transactions/<txn>",
                lambda _, params, ids: balances.retrieve(ids["id"], ids["txn"], params),
            ),
            api_route(
                "POST",
                "/v1/customers/<id>/balance_transactions/<txn>",
                lambda _, params, ids: balances.update(ids["id"], ids["txn"], params),
            ),
            api_route(
                "POST", "/v1/coupons", lambda _, params, ids: promotions.create_coupon(params)
            ),
            api_route(
                "POST", "/v1/promotion_codes", lambda _, params, ids: promotions.create_code(params)
            ),
            api_route(
                "GET", "/v1/promotion_codes", lambda _, params, ids: promotions.list_codes(params)
            ),
            api_route(
                "GET",
                "/v1/promotion_codes/<id>",
                lambda _, params, ids: promotions.retrieve_code(ids["id"], params),
            ),
            api_route(
                "POST",
                "/v1/promotion_codes/<id>",
                lambda _, params, ids: promotions.update_code(ids["id"], params),
            ),
            api_route("GET", "/v1/disputes", lambda _, params, ids: disputes.list(params)),
            api_route(
                "GET",
                "/v1/disputes/<id>",
                lambda _, params, ids: disputes.retrieve(ids["id"], params),
            ),
            # Accepting a dispute, as Stripe's API calls it, closes it as lost.
            api_route("POST", "/v1/disputes/<id>/close", self.accept_dispute),
            api_route("GET", "/v1/balance_transactions/<id>", self.retrieve_balance_transaction),
            api_route(
                "GET",
                "/v1/payouts/<id>",
                lambda _, params, ids: lists.retrieve_payout(ids["id"], params),
            ),
            *(
                api_route("GET", spec.url, list_handler(lists, name))
                for name, spec in LISTS.items()
            ),
            api_route("POST", "/v1/refunds", self.create_refund),
            api_route("POST", "/v1/invoices/<id>/pay", self.pay_invoice),
        )

    def loggable_path(self, path: str) -> str:
        for route in self._api_routes:
            if route.pattern.fullmatch(path):
                return route.name
        for name, pattern in {**PAGE_ROUTES, **CONTROL_ROUTES}.items():
            if pattern.fullmatch(path):
                return name
        if path == LOCALSTRIPE_EVENTS_PATH:
            return path
        forwarded = re.fullmatch(r"/v1/([a-z_]+)(/.*)?", path)
        if forwarded:
            return f"/v1/{forwarded.group(1)}" + ("/<more>" if forwarded.group(2) else "")
        return super().loggable_path(path)

    def handle(self, request: Request) -> Response:
        try:
            if request.path == LOCALSTRIPE_EVENTS_PATH and request.method == "POST":
                return self._receive_localstripe_event(request)
            if request.path.startswith(("/checkout/", "/portal/")):
                return self._handle_page(request)
            if request.path.startswith("/_shim/"):
                return self._handle_control(request)
            failure = self._count_request(request) if request.path.startswith("/v1/") else None
            if failure == 429:
                raise StripeApiError(
                    429,
                    "Too many requests hit the API too quickly. The local Stripe shim was told "
                    "to rate-limit this request.",
                    code="rate_limit",
                )
            if failure is not None:
                raise StripeApiError(
                    failure,
                    "An unknown error occurred. The local Stripe shim was told to fail this "
                    "request.",
                    error_type="api_error",
                )
            if request.method == "POST" and request.path.startswith("/v1/"):
                return self._with_idempotency(request)
            return self._handle_api(request)
        except StripeApiError as exc:
            return exc.response()

    def _handle_api(self, request: Request) -> Response:
        try:
            for route in self._api_routes:
                match = route.pattern.fullmatch(request.path)
                if match is None or route.method != request.method:
                    continue
                if api_key_from(request.headers) is None:
                    raise StripeApiError(
                        401, "Invalid API Key provided: use a secret key that starts with sk_"
                    )
                params = Params(request_params(request))
                result = route.handler(request, params, match.groupdict())
                # A handler returns None for an object the shim does not own, such as an
                # event that localstripe created.
                return self._forward(request) if result is None else json_response(200, result)
            if SHIM_API_PATHS.fullmatch(request.path):
                raise unrecognized_route(request.method, request.path)
            return self._forward(request)
        except StripeApiError as exc:
            return exc.response()

    def _handle_control(self, request: Request) -> Response:
        """Run one of the `/_shim/...` control routes, which take no API key, and return JSON."""
        matches = {
            name: pattern.fullmatch(request.path) for name, pattern in CONTROL_ROUTES.items()
        }
        match = next(((name, found) for name, found in matches.items() if found), None)
        if match is None or request.method != "POST":
            raise StripeApiError(
                404, f"Unrecognized control route ({request.method}: {request.path})."
            )
        name, found = match
        object_id = found.groupdict().get("id") or ""
        try:
            result = self._run_control(name, object_id, Params(request_params(request)))
        except StripeApiError as exc:
            logger.warning(
                "stripe shim control failed",
                extra={"control": name, "object_id": object_id, "status": exc.status},
            )
            raise
        return json_response(200, result)

    def _run_control(self, name: str, object_id: str, params: Params) -> dict[str, Any]:
        if name == "/_shim/subscriptions/<id>/renew":
            params.reject_unknown(())
            return self.renew_subscription(object_id)
        if name == "/_shim/customers/<id>/default_payment_method":
            params.reject_unknown({"payment_method"})
            return self.set_default_payment_method(
                object_id, params.required_text("payment_method")
            )
        if name == "/_shim/charges/<id>/dispute":
            params.reject_unknown({"reason"})
            return self.create_dispute(object_id, params.text("reason") or "fraudulent")
        if name == "/_shim/payouts":
            params.reject_unknown({"amount", "arrival_date", "balance_transactions", "currency"})
            arrival_date = params.integer("arrival_date", minimum=0, required=True)
            assert arrival_date is not None
            return self.create_payout(
                read_currency(params),
                arrival_date,
                params.texts("balance_transactions", max_items=10_000),
                params.integer("amount", minimum=1),
            )

        params.reject_unknown({"won"})
        won = params.boolean("won")
        if won is None:
            raise missing_parameter("won")
        return self.close_dispute(object_id, won)

    def _with_idempotency(self, request: Request) -> Response:
        """Run a POST once per Idempotency-Key and replay its stored response afterwards."""
        key = request.headers.get("Idempotency-Key")
        if not key:
            return self._handle_api(request)

        fingerprint = request_fingerprint(request)
        stored = self._idempotency.begin(key, fingerprint)
        if stored is not None:
            return stored
        try:
            response = self._handle_api(request)
        except BaseException:
            self._idempotency.abandon(key)
            raise
        self._idempotency.finish(key, fingerprint, response)
        return response

    # -- forwarding and shapes ------------------------------------------------------------------

    def _forward(self, request: Request) -> Response:
        pairs = query_pairs(request)
        target = request.path + (f"?{urlencode(pairs)}" if pairs else "")
        headers = {
            name: str(request.headers[name])
            for name in FORWARDED_REQUEST_HEADERS
            if request.headers.get(name) is not None
        }
        status, content_type, body = self._localstripe.request(
            request.method, target, request.body or None, headers
        )
        if status == 200 and content_type.startswith("application/json"):
            body = self._reshape_body(body)
        return Response(status=status, body=body, content_type=content_type)

    def _reshape_body(self, body: bytes) -> bytes:
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return body
        if not self._reshape(document):
            return body
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")

    def _reshape(self, node: Any) -> bool:
        """Reshape the objects inside `node` in place and return whether any changed.

        Reshaping an object twice gives the same result as once.
        """
        changed = False
        if isinstance(node, list):
            for item in node:
                changed = self._reshape(item) or changed
        elif isinstance(node, dict):
            for value in node.values():
                changed = self._reshape(value) or changed
            kind = node.get("object")
            if node.get("deleted") is True:
                # A deleted object is only its id, `object` and `deleted`.
                return changed
            if kind == "event":
                node["api_version"] = API_VERSION
                node.setdefault(
                    "pending_webhooks", self._sender.pending_webhooks(str(node.get("id")))
                )
                node.setdefault("request", {"id": None, "idempotency_key": None})
            elif kind == "subscription":
                self._reshape_subscription(node)
            elif kind == "invoice":
                self._reshape_invoice(node)
            elif kind == "charge":
                self._reshape_charge(node)
            elif kind == "payment_method":
                reshape_payment_method(node)
            elif kind == "customer":
                self._reshape_customer(node)
            elif kind == "coupon":
                self._promotions.reshape_coupon(node)
            elif kind == "refund":
                with self._lock:
                    node["reason"] = self._state.refund_reasons.get(str(node.get("id")))
            else:
                return changed
            changed = True
        return changed

    def _reshape_subscription(self, subscription: dict[str, Any]) -> None:
        """Add the pinned version's fields: item billing periods and prices, discounts, currency."""
        subscription["discounts"] = self._promotions.subscription_discount_ids(
            str(subscription.get("id"))
        )
        plan = subscription.get("plan")
        if isinstance(plan, dict):
            subscription.setdefault("currency", plan.get("currency"))
        subscription.setdefault("collection_method", "charge_automatically")
        subscription.setdefault("default_payment_method", None)

        items = subscription.get("items")
        data = items.get("data") if isinstance(items, dict) else None
        if not isinstance(data, list):
            return
        for item in data:
            if not isinstance(item, dict):
                continue
            item.setdefault("current_period_start", subscription.get("current_period_start"))
            item.setdefault("current_period_end", subscription.get("current_period_end"))
            plan = item.get("plan")
            if "price" not in item and isinstance(plan, dict):
                item["price"] = self._price_for_plan(plan)

    def _reshape_invoice(self, invoice: dict[str, Any]) -> None:
        """Set the fields the shim keeps for localstripe's invoices, with defaults for the rest."""
        with self._lock:
            fields = copy.deepcopy(self._state.invoice_fields.get(str(invoice.get("id"))) or {})
        invoice.setdefault("discounts", [])
        invoice.setdefault("total_discount_amounts", [])
        invoice.update(fields)
        if "starting_balance" not in fields:
            # Without a balance applied, localstripe's legacy balance fields are 0 or unset.
            invoice["starting_balance"] = 0
            invoice["ending_balance"] = None if invoice.get("status") == "draft" else 0
        amount_due, amount_paid = invoice.get("amount_due"), invoice.get("amount_paid")
        if isinstance(amount_due, int) and isinstance(amount_paid, int):
            invoice["amount_remaining"] = amount_due - amount_paid

    def _reshape_charge(self, charge: dict[str, Any]) -> None:
        payment_method = charge.get("payment_method")
        details = None
        if isinstance(payment_method, str):
            details = self._payment_methods.details(payment_method)
        disputed = self._disputes.is_disputed(str(charge.get("id")))
        reshape_charge(charge, details, disputed)

    def _reshape_customer(self, customer: dict[str, Any]) -> None:
        """Serve the shim's balance, negative for a credit, instead of localstripe's legacy field."""
        if customer.get("deleted"):
            return
        customer_id = str(customer.get("id"))
        customer.pop("account_balance", None)
        customer["balance"] = self._balances.balance(customer_id)
        customer["currency"] = self._balances.currency(customer_id)

    def _price_for_plan(self, plan: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            stored = self._state.prices.get(str(plan.get("id")))
            if stored is not None:
                return copy.deepcopy(stored)
        amount = plan.get("amount")
        return price_object(
            price_id=str(plan.get("id")),
            created=plan.get("created"),
            currency=str(plan.get("currency")),
            unit_amount=amount if isinstance(amount, int) else None,
            product=plan.get("product"),
            recurring={
                "interval": plan.get("interval"),
                "interval_count": plan.get("interval_count", 1),
                "meter": None,
                "trial_period_days": plan.get("trial_period_days"),
                "usage_type": plan.get("usage_type", "licensed"),
            },
            lookup_key=None,
            metadata=plan.get("metadata") or {},
            nickname=plan.get("nickname"),
            active=bool(plan.get("active", True)),
        )

    # -- webhooks from localstripe --------------------------------------------------------------

    def _receive_localstripe_event(self, request: Request) -> Response:
        try:
            verify(
                request.body,
                request.headers.get("Stripe-Signature"),
                [self._localstripe_secret],
                now=int(time.time()),
            )
        except SignatureError as exc:
            logger.warning("localstripe event rejected", extra={"reason": exc.code})
            return json_response(400, {"error": exc.code})

        event = json.loads(request.body)
        self._reshape(event)
        self._sender.submit(event)
        if event.get("type") == "invoice.payment_succeeded":
            # Stripe sends invoice.paid with every successful invoice payment; localstripe
            # 1.15.10 sends only invoice.payment_succeeded.
            self._emit("invoice.paid", event["data"]["object"])
        with self._received:
            self._received_event_ids.add(str(event["id"]))
            self._received.notify_all()
        return Response(status=200, body=b"{}")

    def _emit(self, event_type: str, resource: Mapping[str, Any]) -> dict[str, Any]:
        """Store and send a shim event whose `data.object` is a copy of `resource`."""
        event: dict[str, Any] = {
            "id": new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": copy.deepcopy(dict(resource))},
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        with self._lock:
            self._state.events[event["id"]] = event
        self._sender.submit(event)
        logger.info(
            "stripe shim event created", extra={"event_id": event["id"], "event_type": event_type}
        )
        return event

    # -- Prices ---------------------------------------------------------------------------------

    def create_price(
        self, request: Request, params: Params, _: Mapping[str, str]
    ) -> dict[str, Any]:
        params.reject_unknown(
            {
                "active", "currency", "expand", "lookup_key", "metadata", "nickname", "product",
                "product_data", "recurring", "transfer_lookup_key", "unit_amount",
            }
        )  # fmt: skip
        expand = read_expand(params, {"product"})
        currency = read_currency(params)
        unit_amount = params.integer("unit_amount", minimum=0, required=True)
        lookup_key = params.text("lookup_key", max_length=200)
        transfer = params.boolean("transfer_lookup_key") or False
        nickname = params.text("nickname")
        metadata = params.metadata()
        active = params.boolean("active")
        recurring = read_recurring(params)
        product_id = params.text("product")
        product_data = params.child("product_data")
        if (product_id is None) == (product_data is None):
            raise StripeApiError(
                400, "Provide exactly one of product and product_data.", param="product"
            )

        with self._price_lock:
            self._check_lookup_key(lookup_key, transfer)
            if product_id is not None:
                self._localstripe.require("product", product_id, "product")
            else:
                assert product_data is not None
                product_data.reject_unknown({"name", "metadata"})
                product = {
                    "name": product_data.required_text("name"),
                    "metadata": product_data.metadata(),
                }
                product_id = str(self._localstripe.call("POST", "/v1/products", product)["id"])

            price_id = new_id("price_")
            if recurring is not None:
                # A recurring price is also a Plan with the same id, as on Stripe.
                plan = {
                    "id": price_id,
                    "product": product_id,
                    "amount": unit_amount,
                    "currency": currency,
                    "interval": recurring["interval"],
                    "interval_count": recurring["interval_count"],
                    "nickname": nickname,
                    "metadata": metadata,
                }
                self._localstripe.call("POST", "/v1/plans", plan)

            price = price_object(
                price_id=price_id,
                created=int(time.time()),
                currency=currency,
                unit_amount=unit_amount,
                product=product_id,
                recurring=recurring,
                lookup_key=lookup_key,
                metadata=metadata,
                nickname=nickname,
                active=True if active is None else active,
            )
            with self._lock:
                if lookup_key is not None:
                    for other in self._state.prices.values():
                        if other["lookup_key"] == lookup_key:
                            other["lookup_key"] = None
                self._state.prices[price_id] = price

        logger.info("stripe shim price created", extra={"price_id": price_id})
        return self._expand_price(copy.deepcopy(price), expand)

    def _check_lookup_key(self, lookup_key: str | None, transfer: bool) -> None:
        if lookup_key is None or transfer:
            return
        with self._lock:
            owner = next(
                (p["id"] for p in self._state.prices.values() if p["lookup_key"] == lookup_key),
                None,
            )
        if owner is not None:
            raise StripeApiError(
                400,
                f"A price ({owner}) already uses that lookup key. Set transfer_lookup_key to "
                "move the key to the new price.",
                param="lookup_key",
            )

    def retrieve_price(
        self, request: Request, params: Params, ids: Mapping[str, str]
    ) -> dict[str, Any]:
        params.reject_unknown({"expand"})
        expand = read_expand(params, {"product"})
        price_id = ids["id"]
        with self._lock:
            stored = self._state.prices.get(price_id)
            price = copy.deepcopy(stored) if stored is not None else None
        if price is None:
            price = self._price_from_localstripe_plan(price_id)
        return self._expand_price(price, expand)

    def _price_from_localstripe_plan(self, price_id: str) -> dict[str, Any]:
        try:
            plan = self._localstripe.call("GET", f"/v1/plans/{quote(price_id, safe='')}")
        except LocalStripeError as exc:
            if exc.localstripe_status == 404:
                raise resource_missing("price", price_id) from exc
            raise
        return self._price_for_plan(plan)

    def list_prices(self, request: Request, params: Params, _: Mapping[str, str]) -> dict[str, Any]:
        params.reject_unknown(
            {
                "active", "currency", "ending_before", "expand", "limit", "lookup_keys",
                "product", "starting_after", "type",
            }
        )  # fmt: skip
        expand = read_expand(params, {"data.product"})
        active = params.boolean("active")
        currency = params.text("currency")
        product = params.text("product")
        price_type = params.choice("type", ("one_time", "recurring"))
        lookup_keys = params.texts("lookup_keys", max_items=MAX_LOOKUP_KEYS)

        with self._lock:
            prices = [copy.deepcopy(price) for price in reversed(self._state.prices.values())]
        selected = [
            price
            for price in prices
            if (active is None or price["active"] == active)
            and (currency is None or price["currency"] == currency.lower())
            and (product is None or price["product"] == product)
            and (price_type is None or price["type"] == price_type)
            and (lookup_keys is None or price["lookup_key"] in lookup_keys)
        ]
        page = paginate(selected, params, "/v1/prices", "price")
        if expand:
            page["data"] = [self._expand_price(price, ["product"]) for price in page["data"]]
        return page

    def _expand_price(self, price: dict[str, Any], expand: Sequence[str]) -> dict[str, Any]:
        if expand and isinstance(price.get("product"), str):
            price["product"] = self._localstripe.call(
                "GET", f"/v1/products/{quote(price['product'], safe='')}"
            )
        return price

    # -- Checkout Sessions ----------------------------------------------------------------------

    def create_checkout_session(
        self, request: Request, params: Params, _: Mapping[str, str]
    ) -> dict[str, Any]:
        params.reject_unknown(
            {
                "allow_promotion_codes", "cancel_url", "client_reference_id", "customer",
                "customer_email", "discounts", "line_items", "locale", "metadata", "mode",
                "payment_intent_data", "payment_method_options", "payment_method_types",
                "subscription_data", "success_url",
            }
        )  # fmt: skip
        mode = params.choice("mode", ("payment", "subscription", "setup"), required=True)
        if mode == "setup":
            raise StripeApiError(
                400, "mode setup is not supported by the local Stripe shim", param="mode"
            )
        price, quantity = self._read_line_item(params, mode)
        customer = params.text("customer")
        customer_email = params.text("customer_email", max_length=800)
        if customer is not None and customer_email is not None:
            raise StripeApiError(
                400,
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        if customer is not None:
            self._localstripe.require("customer", customer, "customer")
        subscription_metadata = read_subscription_data(params, mode)
        payment_intent_data = read_payment_intent_data(params, mode)
        # The hosted page pays by test card only, so the options of other methods are kept as
        # given and never used.
        payment_method_options = params.child("payment_method_options")
        payment_method_types = params.texts("payment_method_types") or ["card"]
        for index, method in enumerate(payment_method_types):
            if PAYMENT_METHOD_TYPE_PATTERN.fullmatch(method) is None:
                raise invalid_parameter(
                    f"payment_method_types[{index}]", "a payment method type such as card"
                )

        amount = int(price["unit_amount"] or 0) * quantity
        discount = self._promotions.read_discount(params, str(price["currency"]), amount, customer)
        discount_amount = 0 if discount is None else discount.amount

        session_id = new_id("cs_test_", 58)
        created = int(time.time())
        session = {
            "id": session_id,
            "object": "checkout.session",
            "allow_promotion_codes": params.boolean("allow_promotion_codes"),
            "amount_subtotal": amount,
            "amount_total": amount - discount_amount,
            "cancel_url": read_http_url(params, "cancel_url"),
            "client_reference_id": params.text("client_reference_id", max_length=200),
            "created": created,
            "currency": price["currency"],
            "customer": customer,
            "customer_email": customer_email,
            "discounts": [] if discount is None else [discount_entry(discount)],
            "expires_at": created + CHECKOUT_SESSION_LIFETIME_SECONDS,
            "invoice": None,
            "livemode": False,
            "locale": params.choice("locale", sorted(CHECKOUT_LOCALES)),
            "metadata": params.metadata(),
            "mode": mode,
            "payment_intent": None,
            "payment_method_options": (
                {} if payment_method_options is None else dict(payment_method_options.values)
            ),
            "payment_method_types": payment_method_types,
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": read_http_url(params, "success_url"),
            "total_details": {
                "amount_discount": discount_amount,
                "amount_shipping": 0,
                "amount_tax": 0,
            },
            "ui_mode": "hosted",
            "url": f"{self.base_url}/checkout/{session_id}",
        }
        with self._lock:
            self._state.checkout_sessions[session_id] = _CheckoutSession(
                session,
                str(price["id"]),
                quantity,
                subscription_metadata,
                discount,
                payment_intent_data,
            )
        logger.info(
            "stripe shim checkout session created",
            extra={"checkout_session_id": session_id, "mode": mode},
        )
        return copy.deepcopy(session)

    def _read_line_item(self, params: Params, mode: str | None) -> tuple[dict[str, Any], int]:
        items = params.children("line_items")
        if not items:
            raise missing_parameter("line_items")
        if len(items) != 1:
            # NOTE: one line item only, because localstripe subscriptions take exactly one item.
            raise StripeApiError(
                400, "The local Stripe shim accepts exactly one line item", param="line_items"
            )
        item = items[0]
        item.reject_unknown({"price", "quantity"})
        price_id = item.required_text("price")
        quantity = item.integer("quantity", minimum=1) or 1

        with self._lock:
            stored = self._state.prices.get(price_id)
            price = copy.deepcopy(stored) if stored is not None else None
        if price is None:
            try:
                price = self._price_from_localstripe_plan(price_id)
            except StripeApiError as exc:
                raise resource_missing("price", price_id, item.label("price")) from exc
        if not price["active"]:
            raise StripeApiError(400, "The price specified is inactive.", param=item.label("price"))
        if mode == "subscription" and price["type"] != "recurring":
            raise StripeApiError(
                400,
                "You must provide at least one recurring price in subscription mode.",
                param=item.label("price"),
            )
        if mode == "payment" and price["type"] == "recurring":
            raise StripeApiError(
                400,
                "You specified payment mode but passed a recurring price.",
                param=item.label("price"),
            )
        return price, quantity

    def retrieve_checkout_session(
        self, request: Request, params: Params, ids: Mapping[str, str]
    ) -> dict[str, Any]:
        params.reject_unknown({"expand"})
        read_expand(params, ())
        session_id = ids["id"]
        with self._lock:
            session = self._state.checkout_sessions.get(session_id)
            if session is None:
                raise resource_missing("checkout.session", session_id)
            return copy.deepcopy(session.resource)

    def pay_checkout_session(
        self, session_id: str, payment_method: str = TEST_CARD_PAYMENT_METHOD
    ) -> tuple[dict[str, Any], str]:
        """Pay an open session with a test card and return the session and the event id.

        `payment_method` is one of Stripe's test ids in `TEST_CARDS`, such as "pm_card_visa"
        or "pm_card_mastercard". The session's discount is checked again and redeemed. Raises
        StripeApiError (404 unknown, 409 not open, 400 invalid payment method or discount no
        longer redeemable, 402 declined) or LocalStripeError.
        """
        test_id = read_test_card(payment_method)
        with self._lock:
            session = self._state.checkout_sessions.get(session_id)
            if session is None:
                raise resource_missing("checkout.session", session_id)
            if session.resource["status"] != "open":
                raise StripeApiError(409, "This Checkout Session is already complete.")
            if time.time() >= session.resource["expires_at"]:
                raise StripeApiError(409, "This Checkout Session has expired.")
            if session_id in self._state.sessions_paying:
                raise StripeApiError(409, "A payment for this Checkout Session is in progress.")
            self._state.sessions_paying.add(session_id)
            resource = copy.deepcopy(session.resource)

        discount = session.discount
        try:
            if discount is not None:
                self._promotions.check(
                    discount,
                    str(resource["currency"]),
                    int(resource["amount_subtotal"]),
                    resource["customer"],
                )
                self._promotions.reserve(discount)
            try:
                if resource["mode"] == "subscription":
                    updates = self._pay_subscription(session, resource, test_id)
                else:
                    updates = self._pay_once(session, resource, test_id)
            except BaseException:
                if discount is not None:
                    self._promotions.release(discount)
                raise
        finally:
            with self._lock:
                self._state.sessions_paying.discard(session_id)

        with self._lock:
            session.resource.update({"status": "complete", "payment_status": "paid", **updates})
            completed = copy.deepcopy(session.resource)
        event = self._emit("checkout.session.completed", completed)
        logger.info(
            "stripe shim checkout session completed",
            extra={"checkout_session_id": session_id, "event_id": event["id"]},
        )
        return completed, str(event["id"])

    def _pay_subscription(
        self, session: _CheckoutSession, resource: Mapping[str, Any], test_id: str
    ) -> dict[str, Any]:
        customer = resource["customer"]
        if customer is None:
            created = self._localstripe.call(
                "POST", "/v1/customers", {"email": resource["customer_email"]}
            )
            customer = str(created["id"])

        # Attaching a test id creates a new PaymentMethod, and that new id becomes the default.
        attached = create_test_payment_method(self._localstripe, test_id, customer)
        self._localstripe.call(
            "POST",
            f"/v1/customers/{quote(customer, safe='')}",
            {"invoice_settings": {"default_payment_method": attached["id"]}},
        )
        discount = session.discount
        discount_item = None
        if discount is not None and discount.amount > 0:
            # localstripe subscriptions take no coupon, so the first invoice gets the discount
            # as a negative pending invoice item of the customer.
            # NOTE: another invoice of the same customer created in between would take it.
            discount_item = self._localstripe.call(
                "POST",
                "/v1/invoiceitems",
                {
                    "customer": customer,
                    "amount": -discount.amount,
                    "currency": resource["currency"],
                    "description": f"Discount {discount.coupon['id']}",
                },
            )
        try:
            subscription = self._localstripe.call(
                "POST",
                "/v1/subscriptions",
                {
                    "customer": customer,
                    "items": [{"plan": session.price_id, "quantity": session.quantity}],
                    "metadata": session.subscription_metadata or None,
                },
            )
        except StripeApiError:
            if discount_item is not None:
                self._localstripe.call(
                    "DELETE", f"/v1/invoiceitems/{quote(discount_item['id'], safe='')}"
                )
            raise

        invoice_id = str(subscription.get("latest_invoice"))
        active = subscription.get("status") == "active"
        fields: dict[str, Any] = {"billing_reason": "subscription_create"}
        if discount is not None and active:
            applied = self._promotions.apply(discount, customer, subscription=subscription["id"])
            invoice = self._localstripe.call("GET", f"/v1/invoices/{quote(invoice_id, safe='')}")
            fields.update(discount_fields(invoice, applied["id"], discount.amount))
        with self._lock:
            self._state.invoice_fields[invoice_id] = fields
        self._balances.note_currency(customer, str(resource["currency"]))

        if not active:
            raise StripeApiError(
                402,
                f"The test card payment left subscription {subscription.get('id')} "
                f"{subscription.get('status')}",
                code="card_declined",
                error_type="card_error",
            )
        self._announce_free_invoice(invoice_id)
        return {
            "customer": customer,
            "subscription": subscription["id"],
            "invoice": subscription.get("latest_invoice"),
        }

    def _announce_free_invoice(self, invoice_id: str) -> None:
        """Send the events of a first invoice that a discount made free.

        localstripe marks an invoice with nothing to pay as paid without any event, where
        Stripe sends `invoice.paid` and `invoice.payment_succeeded`.
        """
        invoice = self._localstripe.call("GET", f"/v1/invoices/{quote(invoice_id, safe='')}")
        if invoice.get("status") != "paid" or invoice.get("payment_intent") is not None:
            return
        self._reshape(invoice)
        self._emit("invoice.payment_succeeded", invoice)
        self._emit("invoice.paid", invoice)

    def _pay_once(
        self, session: _CheckoutSession, resource: Mapping[str, Any], test_id: str
    ) -> dict[str, Any]:
        if resource["amount_total"] == 0:
            # Stripe completes a free payment-mode session without a PaymentIntent.
            updates: dict[str, Any] = {"payment_status": "no_payment_required"}
        else:
            payment_method = create_test_payment_method(self._localstripe, test_id)
            intent = self._localstripe.call(
                "POST",
                "/v1/payment_intents",
                {
                    "amount": resource["amount_total"],
                    "currency": resource["currency"],
                    "customer": resource["customer"],
                    "payment_method": payment_method["id"],
                    "metadata": session.payment_intent_data.get("metadata") or None,
                    "confirm": True,
                },
            )
            if intent.get("status") != "succeeded":
                raise StripeApiError(
                    402,
                    f"The test card payment left PaymentIntent {intent.get('id')} "
                    f"{intent.get('status')}",
                    code="card_declined",
                    error_type="card_error",
                )
            updates = {"payment_intent": intent["id"]}

        if session.discount is not None:
            self._promotions.apply(
                session.discount, resource["customer"], checkout_session=str(resource["id"])
            )
        return updates

    # -- Customers, refunds, invoices and disputes --------------------------------------------

    def check_customer_params(self, request: Request, params: Params, _: Mapping[str, str]) -> None:
        """Reject `balance` on a customer, then let localstripe create or update it.

        localstripe would keep the balance as its legacy `account_balance` and subtract it from
        every later invoice, so balances change through balance transactions only.
        """
        if "balance" in params.values:
            raise StripeApiError(
                400,
                "The local Stripe shim sets a customer's balance only through "
                "POST /v1/customers/{id}/balance_transactions.",
                param="balance",
            )

    def update_customer(
        self, request: Request, params: Params, ids: Mapping[str, str]
    ) -> dict[str, Any] | None:
        """Update a customer as Stripe does, where the empty string unsets a field or metadata key.

        localstripe would store the empty strings, and it cannot remove a metadata key, so the
        emptied fields and keys go through localstripe's `/_shim/customers/{id}/unset` route
        and the rest through localstripe's own update. Without empty values the request is
        forwarded unchanged (None).
        """
        self.check_customer_params(request, params, ids)
        unset_fields = [
            name
            for name in UNSETTABLE_CUSTOMER_FIELDS
            if name in params.values and params.values[name] == ""
        ]
        metadata = params.values.get("metadata")
        unset_keys: list[str] | str = []
        if metadata == "":
            unset_keys = "*"
        elif isinstance(metadata, Mapping):
            unset_keys = [str(key) for key, value in metadata.items() if value == ""]
        if not unset_fields and not unset_keys:
            return None

        customer_id = ids["id"]
        path = f"/v1/customers/{quote(customer_id, safe='')}"
        self._localstripe.retrieve("customer", customer_id)
        remaining = {
            name: value
            for name, value in params.values.items()
            if name not in unset_fields and name != "metadata"
        }
        if isinstance(metadata, Mapping):
            kept = {key: value for key, value in metadata.items() if value != ""}
            if kept:
                remaining["metadata"] = kept
        if remaining:
            self._localstripe.call("POST", path, remaining)
        customer = self._localstripe.call_json(
            f"/_shim/customers/{quote(customer_id, safe='')}/unset",
            {"fields": unset_fields, "metadata_keys": unset_keys},
        )
        self._reshape(customer)
        logger.info("stripe shim customer fields unset", extra={"customer_id": customer_id})
        return customer

    def create_refund(
        self, request: Request, params: Params, _: Mapping[str, str]
    ) -> dict[str, Any]:
        """Refund a charge through localstripe, then send `refund.created` and `charge.refunded`."""
        params.reject_unknown(
            {"amount", "charge", "expand", "metadata", "payment_intent", "reason"}
        )
        read_expand(params, ())
        charge_id = params.text("charge")
        intent_id = params.text("payment_intent")
        if (charge_id is None) == (intent_id is None):
            raise StripeApiError(
                400, "Provide exactly one of charge and payment_intent.", param="charge"
            )
        amount = params.integer("amount", minimum=1)
        reason = read_refund_reason(params.values.get("reason"))
        metadata = params.metadata()

        if intent_id is not None:
            intent = self._localstripe.require("payment_intent", intent_id, "payment_intent")
            latest = intent.get("latest_charge")
            charge_id = latest.get("id") if isinstance(latest, dict) else latest
            if not isinstance(charge_id, str):
                raise StripeApiError(
                    400,
                    f"PaymentIntent {intent_id} has no charge to refund.",
                    param="payment_intent",
                )
        assert charge_id is not None
        charge = self._localstripe.require("charge", charge_id, "charge")
        check_refundable(charge, amount, self._disputes.is_disputed(charge_id))

        # Stripe refunds what is left of the charge by default, and localstripe its whole
        # amount. Naming the PaymentIntent makes localstripe record it on the refund.
        if amount is None:
            amount = int(charge["amount"]) - int(charge["amount_refunded"])
        target = {"charge": charge_id}
        if isinstance(charge.get("payment_intent"), str):
            target = {"payment_intent": charge["payment_intent"]}
        refund = self._localstripe.call(
            "POST", "/v1/refunds", {**target, "amount": amount, "metadata": metadata or None}
        )
        if reason is not None:
            with self._lock:
                self._state.refund_reasons[str(refund["id"])] = reason
        self._reshape(refund)
        refunded = self._localstripe.call("GET", f"/v1/charges/{quote(charge_id, safe='')}")
        self._reshape(refunded)
        self._emit("refund.created", refund)
        self._emit("charge.refunded", refunded)
        logger.info(
            "stripe shim refund created", extra={"refund_id": refund["id"], "charge_id": charge_id}
        )
        return refund

    def pay_invoice(
        self, request: Request, params: Params, ids: Mapping[str, str]
    ) -> dict[str, Any]:
        """Pay an open invoice with the customer's default payment method.

        A paid invoice brings a `past_due` or `incomplete` subscription back to `active` and
        sends `customer.subscription.updated`. A declined card returns 402 `card_declined` and
        sends `invoice.payment_failed`.
        """
        params.reject_unknown(
            {
                "expand",
                "forgive",
                "mandate",
                "off_session",
                "paid_out_of_band",
                "payment_method",
                "source",
            }
        )
        for name in ("forgive", "mandate", "paid_out_of_band", "payment_method", "source"):
            if name in params.values:
                raise unsupported_parameter(name)
        params.boolean("off_session")
        read_expand(params, ())
        invoice_id = ids["id"]
        self._localstripe.retrieve("invoice", invoice_id)

        invoice = self._localstripe.call(
            "POST", f"/_shim/invoices/{quote(invoice_id, safe='')}/pay"
        )
        self._reshape(invoice)
        return invoice

    def accept_dispute(
        self, request: Request, params: Params, ids: Mapping[str, str]
    ) -> dict[str, Any]:
        """Accept a dispute through `POST /v1/disputes/{id}/close`: it closes as lost."""
        params.reject_unknown({"expand"})
        read_expand(params, ())
        return self._disputes.close(ids["id"], won=False)

    def retrieve_balance_transaction(
        self, request: Request, params: Params, ids: Mapping[str, str]
    ) -> dict[str, Any] | None:
        """Return a dispute's or payout's balance transaction, or None to forward the request."""
        found = self._disputes.balance_transaction(ids["id"])
        return found if found is not None else self._lists.balance_transaction(ids["id"])

    # -- Billing Portal -------------------------------------------------------------------------

    def create_portal_session(
        self, request: Request, params: Params, _: Mapping[str, str]
    ) -> dict[str, Any]:
        params.reject_unknown({"customer", "locale", "return_url"})
        customer = params.required_text("customer")
        return_url = read_http_url(params, "return_url")
        locale = params.choice("locale", sorted(CHECKOUT_LOCALES))
        self._localstripe.require("customer", customer, "customer")

        session_id = new_id("bps_")
        session = {
            "id": session_id,
            "object": "billing_portal.session",
            "created": int(time.time()),
            "customer": customer,
            "flow": None,
            "livemode": False,
            "locale": locale,
            "on_behalf_of": None,
            "return_url": return_url,
            "url": f"{self.base_url}/portal/{session_id}",
        }
        with self._lock:
            self._state.portal_sessions[session_id] = session
        logger.info("stripe shim portal session created", extra={"portal_session_id": session_id})
        return copy.deepcopy(session)

    def cancel_portal_subscription(self, portal_id: str, subscription_id: str) -> dict[str, Any]:
        """Cancel one of the portal customer's subscriptions in localstripe and return it."""
        with self._lock:
            portal = self._state.portal_sessions.get(portal_id)
            customer = None if portal is None else portal["customer"]
        if customer is None:
            raise resource_missing("billing_portal.session", portal_id)

        path = f"/v1/subscriptions/{quote(subscription_id, safe='')}"
        try:
            subscription = self._localstripe.call("GET", path)
        except LocalStripeError as exc:
            if exc.localstripe_status == 404:
                raise resource_missing("subscription", subscription_id) from exc
            raise
        if subscription.get("customer") != customer:
            raise resource_missing("subscription", subscription_id)

        canceled = self._localstripe.call("DELETE", path)
        self._reshape(canceled)
        logger.info(
            "stripe shim portal subscription canceled",
            extra={"portal_session_id": portal_id, "subscription_id": subscription_id},
        )
        return canceled

    # -- Events ---------------------------------------------------------------------------------

    def _shim_events(self) -> list[dict[str, Any]]:
        """Return copies of the shim's own events, oldest first."""
        with self._lock:
            events = copy.deepcopy(list(self._state.events.values()))
        for event in events:
            event["pending_webhooks"] = self._sender.pending_webhooks(str(event["id"]))
        return events

    def retrieve_event(
        self, request: Request, params: Params, ids: Mapping[str, str]
    ) -> dict[str, Any] | None:
        """Return a shim event, or None so that localstripe's event is forwarded and reshaped."""
        event_id = ids["id"]
        with self._lock:
            stored = self._state.events.get(event_id)
            event = copy.deepcopy(stored) if stored is not None else None
        if event is None:
            return None
        params.reject_unknown({"expand"})
        read_expand(params, ())
        event["pending_webhooks"] = self._sender.pending_webhooks(event_id)
        return event

    # -- hosted pages ---------------------------------------------------------------------------

    def _handle_page(self, request: Request) -> Response:
        matches = {name: pattern.fullmatch(request.path) for name, pattern in PAGE_ROUTES.items()}
        if (match := matches["/checkout/<id>"]) and request.method == "GET":
            return self._checkout_page(request, match["id"])
        if (match := matches["/checkout/<id>/pay"]) and request.method == "POST":
            return self._checkout_pay(request, match["id"])
        if (match := matches["/portal/<id>"]) and request.method == "GET":
            return self._portal_page(request, match["id"])
        cancel = matches["/portal/<id>/subscriptions/<subscription>/cancel"]
        if cancel and request.method == "POST":
            return self._portal_cancel(request, cancel["id"], cancel["subscription"])

        locale = page_locale(None, request.headers.get("Accept-Language"))
        return html_page(locale, PAGE_TEXT[locale]["not_found"], "", status=404)

    def _checkout_page(self, request: Request, session_id: str) -> Response:
        with self._lock:
            session = self._state.checkout_sessions.get(session_id)
            resource = None if session is None else copy.deepcopy(session.resource)
            price_id = None if session is None else session.price_id
        if resource is None or price_id is None:
            locale = page_locale(None, request.headers.get("Accept-Language"))
            return html_page(locale, PAGE_TEXT[locale]["not_found"], "", status=404)

        locale = page_locale(resource["locale"], request.headers.get("Accept-Language"))
        text = PAGE_TEXT[locale]
        if resource["status"] == "complete":
            body = f"<p>{html.escape(text['paid'])}</p>\n"
            if resource["success_url"]:
                target = success_location(resource)
                body += (
                    f'<p><a href="{html.escape(target)}">{html.escape(text["continue"])}</a></p>\n'
                )
            return html_page(locale, text["checkout_title"], body)
        if time.time() >= resource["expires_at"]:
            return html_page(
                locale,
                text["checkout_title"],
                f"<p>{html.escape(text['expired'])}</p>\n",
                status=410,
            )

        price = self._price_for_page(price_id)
        product_name = self._product_name(price.get("product"))
        currency = str(resource["currency"])
        amount = format_amount(int(resource["amount_total"]), currency, locale)
        recurring = price.get("recurring")
        if isinstance(recurring, dict) and recurring.get("interval") in PRICE_INTERVALS:
            amount += " " + text[str(recurring["interval"])]
        body = (
            f'<p class="notice">{html.escape(text["notice"])}</p>\n'
            f"<p>{html.escape(text['product'])}: {html.escape(product_name)}</p>\n"
        )
        discount = int(resource["total_details"]["amount_discount"])
        if discount:
            subtotal = format_amount(int(resource["amount_subtotal"]), currency, locale)
            body += (
                f"<p>{html.escape(text['subtotal'])}: {html.escape(subtotal)}</p>\n"
                f"<p>{html.escape(text['discount'])}: "
                f"-{html.escape(format_amount(discount, currency, locale))}</p>\n"
            )
        options = "".join(
            f'<option value="{test_id}">{html.escape(card_label(test_id, locale))}</option>\n'
            for test_id in CHECKOUT_TEST_CARDS
        )
        body += (
            f"<p>{html.escape(text['amount'])}: {html.escape(amount)}</p>\n"
            f'<form method="post" action="/checkout/{html.escape(session_id)}/pay">\n'
            f'<p><label>{html.escape(text["card"])} <select name="payment_method">\n'
            f"{options}</select></label></p>\n"
            f'<button type="submit">{html.escape(text["pay"])}</button>\n</form>\n'
        )
        if resource["cancel_url"]:
            body += f'<p><a href="{html.escape(resource["cancel_url"])}">{html.escape(text["cancel"])}</a></p>\n'
        return html_page(locale, text["checkout_title"], body)

    def _price_for_page(self, price_id: str) -> dict[str, Any]:
        with self._lock:
            stored = self._state.prices.get(price_id)
            if stored is not None:
                return copy.deepcopy(stored)
        return self._price_from_localstripe_plan(price_id)

    def _product_name(self, product_id: Any) -> str:
        if not isinstance(product_id, str):
            return ""
        try:
            product = self._localstripe.call("GET", f"/v1/products/{quote(product_id, safe='')}")
        except LocalStripeError as exc:
            logger.warning(
                "stripe shim product lookup failed",
                extra={"product_id": product_id, "status": exc.localstripe_status},
            )
            return product_id
        return str(product.get("name") or product_id)

    def _checkout_pay(self, request: Request, session_id: str) -> Response:
        try:
            params = Params(request_params(request))
            params.reject_unknown({"payment_method"})
            payment_method = params.text("payment_method") or TEST_CARD_PAYMENT_METHOD
            session, event_id = self.pay_checkout_session(session_id, payment_method)
        except StripeApiError as exc:
            logger.warning(
                "stripe shim checkout payment failed",
                extra={"checkout_session_id": session_id, "status": exc.status},
            )
            if wants_json(request):
                return exc.response()
            return self._checkout_failure_page(request, session_id, exc)

        if wants_json(request):
            return json_response(200, {"checkout_session": session, "event_id": event_id})
        if session["success_url"]:
            return redirect(success_location(session))
        return redirect(f"/checkout/{session_id}")

    def _checkout_failure_page(
        self, request: Request, session_id: str, error: StripeApiError
    ) -> Response:
        with self._lock:
            session = self._state.checkout_sessions.get(session_id)
            stripe_locale = None if session is None else session.resource["locale"]
        locale = page_locale(stripe_locale, request.headers.get("Accept-Language"))
        text = PAGE_TEXT[locale]
        if error.status == 404:
            return html_page(locale, text["not_found"], "", status=404)
        if error.status == 409:
            # Already paid or expired: the page shows which.
            return redirect(f"/checkout/{session_id}")
        body = f"<p>{html.escape(text['payment_failed'])}</p>\n"
        return html_page(locale, text["checkout_title"], body, status=error.status)

    def _portal_page(self, request: Request, portal_id: str) -> Response:
        with self._lock:
            stored = self._state.portal_sessions.get(portal_id)
            portal = None if stored is None else copy.deepcopy(stored)
        if portal is None:
            locale = page_locale(None, request.headers.get("Accept-Language"))
            return html_page(locale, PAGE_TEXT[locale]["not_found"], "", status=404)

        locale = page_locale(portal["locale"], request.headers.get("Accept-Language"))
        text = PAGE_TEXT[locale]
        listed = self._localstripe.call(
            "GET", "/v1/subscriptions", {"customer": portal["customer"], "limit": MAX_LIST_LIMIT}
        )
        rows = [self._portal_row(portal_id, sub, locale) for sub in listed.get("data") or []]
        body = "".join(rows) or f"<p>{html.escape(text['no_subscriptions'])}</p>\n"
        if portal["return_url"]:
            body += f'<p><a href="{html.escape(portal["return_url"])}">{html.escape(text["back"])}</a></p>\n'
        return html_page(locale, text["portal_title"], body)

    @staticmethod
    def _portal_row(portal_id: str, subscription: Mapping[str, Any], locale: Locale) -> str:
        text = PAGE_TEXT[locale]
        subscription_id = str(subscription.get("id"))
        plan = subscription.get("plan")
        amount = ""
        if isinstance(plan, dict) and isinstance(plan.get("amount"), int):
            amount = format_amount(plan["amount"], str(plan.get("currency")), locale)
            if plan.get("interval") in PRICE_INTERVALS:
                amount += " " + text[str(plan["interval"])]
        period_end = subscription.get("current_period_end")
        ends = ""
        if isinstance(period_end, int):
            ends = time.strftime("%Y-%m-%d", time.gmtime(period_end))

        action = f"/portal/{portal_id}/subscriptions/{subscription_id}/cancel"
        return (
            "<section>\n"
            f"<h2>{html.escape(text['subscription'])} {html.escape(subscription_id)}</h2>\n"
            f"<p>{html.escape(amount)}</p>\n"
            f"<p>{html.escape(text['status'])}: {html.escape(str(subscription.get('status')))}</p>\n"
            f"<p>{html.escape(text['period_end'])}: {html.escape(ends)}</p>\n"
            f'<form method="post" action="{html.escape(action)}">\n'
            f'<button type="submit">{html.escape(text["cancel_subscription"])}</button>\n'
            "</form>\n</section>\n"
        )

    def _portal_cancel(self, request: Request, portal_id: str, subscription_id: str) -> Response:
        try:
            canceled = self.cancel_portal_subscription(portal_id, subscription_id)
        except StripeApiError as exc:
            logger.warning(
                "stripe shim portal cancellation failed",
                extra={"portal_session_id": portal_id, "status": exc.status},
            )
            if wants_json(request):
                return exc.response()
            locale = page_locale(None, request.headers.get("Accept-Language"))
            message = "not_found" if exc.status == 404 else "cancel_failed"
            return html_page(locale, PAGE_TEXT[locale][message], "", status=exc.status)
        if wants_json(request):
            return json_response(200, canceled)
        return redirect(f"/portal/{portal_id}")


def list_handler(lists: ObjectLists, name: str) -> RouteHandler:
    """Return the route handler of one of the list endpoints in `LISTS`."""

    def handle(request: Request, params: Params, ids: Mapping[str, str]) -> dict[str, Any]:
        return lists.list_page(name, params)

    return handle


def price_object(
    *,
    price_id: str,
    created: Any,
    currency: str,
    unit_amount: int | None,
    product: Any,
    recurring: dict[str, Any] | None,
    lookup_key: str | None,
    metadata: Mapping[str, Any],
    nickname: Any,
    active: bool,
) -> dict[str, Any]:
    """Return a Price in the pinned API version's shape."""
    return {
        "id": price_id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": dict(metadata),
        "nickname": nickname,
        "product": product,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time" if recurring is None else "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": None if unit_amount is None else str(unit_amount),
    }


def read_recurring(params: Params) -> dict[str, Any] | None:
    recurring = params.child("recurring")
    if recurring is None:
        return None
    recurring.reject_unknown({"interval", "interval_count", "usage_type"})
    interval = recurring.choice("interval", PRICE_INTERVALS, required=True)
    interval_count = recurring.integer("interval_count", minimum=1) or 1
    usage_type = recurring.choice("usage_type", ("licensed",)) or "licensed"
    return {
        "interval": interval,
        "interval_count": interval_count,
        "meter": None,
        "trial_period_days": None,
        "usage_type": usage_type,
    }


def read_payment_intent_data(params: Params, mode: str | None) -> dict[str, Any]:
    data = params.child("payment_intent_data")
    if data is None:
        return {}
    if mode != "payment":
        raise StripeApiError(
            400,
            "payment_intent_data can only be used in payment mode.",
            param="payment_intent_data",
        )
    data.reject_unknown({"metadata"})
    return {"metadata": data.metadata()}


def read_subscription_data(params: Params, mode: str | None) -> dict[str, str]:
    data = params.child("subscription_data")
    if data is None:
        return {}
    if mode != "subscription":
        raise StripeApiError(
            400,
            "subscription_data can only be used in subscription mode.",
            param="subscription_data",
        )
    data.reject_unknown({"metadata"})
    return data.metadata()


def card_label(test_id: str, locale: Locale) -> str:
    """Return a test card's label on the Checkout page, such as "Visa 4242 4242 4242 4242"."""
    card = TEST_CARDS[test_id]
    number = " ".join(card.number[start : start + 4] for start in range(0, len(card.number), 4))
    label = f"{CARD_BRAND_NAMES[card.brand]} {number}"
    if card.funding == "debit":
        label += f" ({PAGE_TEXT[locale]['debit']})"
    if test_id == "pm_card_chargeCustomerFail":
        label += f" ({PAGE_TEXT[locale]['declined']})"
    return label


def discount_entry(discount: Discount) -> dict[str, Any]:
    """Return a Checkout Session's `discounts` entry: the coupon, or the promotion code."""
    if discount.promotion_code is not None:
        return {"coupon": None, "promotion_code": discount.promotion_code}
    return {"coupon": discount.coupon["id"], "promotion_code": None}


def discount_fields(invoice: Mapping[str, Any], discount_id: str, amount: int) -> dict[str, Any]:
    """Return an invoice's discount fields. localstripe's subtotal already has the discount off."""
    return {
        "discounts": [discount_id],
        "subtotal": int(invoice["subtotal"]) + amount,
        "total_discount_amounts": [{"amount": amount, "discount": discount_id}],
    }


def success_location(session: Mapping[str, Any]) -> str:
    """Return `success_url` with Stripe's `{CHECKOUT_SESSION_ID}` template filled in."""
    return str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", str(session["id"]))


def request_fingerprint(request: Request) -> str:
    """Return a digest of a POST's method, path and parameters, independent of their order."""
    try:
        pairs = sorted(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        canonical = json.dumps(pairs)
    except UnicodeDecodeError:
        canonical = request.body.hex()
    return hashlib.sha256(f"{request.method} {request.path} {canonical}".encode()).hexdigest()


# The hosted pages and their control routes, by the name they are logged and dispatched with.
PAGE_ROUTES: Final = {
    "/checkout/<id>": re.compile(rf"/checkout/(?P<id>{ID_SEGMENT})"),
    "/checkout/<id>/pay": re.compile(rf"/checkout/(?P<id>{ID_SEGMENT})/pay"),
    "/portal/<id>": re.compile(rf"/portal/(?P<id>{ID_SEGMENT})"),
    "/portal/<id>/subscriptions/<subscription>/cancel": re.compile(
        rf"/portal/(?P<id>{ID_SEGMENT})/subscriptions/(?P<subscription>{ID_SEGMENT})/cancel"
    ),
}

# The shim's own controls, which are not Stripe API routes: `POST` only, no API key.
CONTROL_ROUTES: Final = {
    "/_shim/subscriptions/<id>/renew": re.compile(
        rf"/_shim/subscriptions/(?P<id>{ID_SEGMENT})/renew"
    ),
    "/_shim/customers/<id>/default_payment_method": re.compile(
        rf"/_shim/customers/(?P<id>{ID_SEGMENT})/default_payment_method"
    ),
    "/_shim/charges/<id>/dispute": re.compile(rf"/_shim/charges/(?P<id>{ID_SEGMENT})/dispute"),
    "/_shim/disputes/<id>/close": re.compile(rf"/_shim/disputes/(?P<id>{ID_SEGMENT})/close"),
    "/_shim/payouts": re.compile(r"/_shim/payouts"),
}
