"""Stripe shim in front of localstripe: Prices, Checkout, the portal, pinned shapes and webhooks.

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
- `POST /v1/checkout/sessions` (modes `subscription` and `payment`, one line item) and
  `GET /v1/checkout/sessions/{id}`. The hosted page is `GET /checkout/{id}`, in 简体中文 or
  English by the session's `locale`. `POST /checkout/{id}/pay` pays with the test card
  `pm_card_visa` through localstripe: it creates the subscription (with
  `subscription_data[metadata]`) or a confirmed PaymentIntent, completes the session and
  sends `checkout.session.completed`. A browser form gets a 303 redirect to `success_url`, and
  a request with `Accept: application/json` gets `{"checkout_session": ..., "event_id": ...}`.
- `POST /v1/billing_portal/sessions`. The portal page `GET /portal/{id}` lists the customer's
  subscriptions, and `POST /portal/{id}/subscriptions/{subscription_id}/cancel` cancels one in
  localstripe, which emits `customer.subscription.deleted`. The cancel route also returns JSON
  to `Accept: application/json`.
- `GET /v1/events/{id}`: the shim's own events first, else localstripe's.
- The `Idempotency-Key` header on every `POST /v1/...`, forwarded routes included: a repeated
  key returns the stored response with `Idempotent-Replayed: true`, a key reused with other
  parameters gets 400 `idempotency_error`, and a key still in progress gets 409. Stored are 2xx
  responses and 402 (declined card), for 24 hours. Other errors are not stored, so a retry runs
  the request again, where Stripe would replay errors raised after validation.

Everything else is forwarded to localstripe with its method, path, query, body and the
Authorization, Content-Type, Accept and Stripe-Version headers. Responses come back unchanged,
except that every JSON object with `object: "subscription"` (at any depth, in events too) gets
`items.data[].current_period_start`/`current_period_end` copied from its top level and
`items.data[].price` built from the item's plan, and every event gets `api_version:
"2026-10-28.endive"`, `pending_webhooks` and `request`.

Webhooks: at `start()` the shim registers itself with localstripe (endpoint id `stripe-shim`,
signed with a random secret that the shim checks) and forwards localstripe's events, reshaped
as above, together with its own events, to the single endpoint set by `configure_webhook()`.
Each attempt is signed with the time it is sent: `Stripe-Signature: t=<now>,v1=<HMAC-SHA256 of
"t.body">`. A non-2xx response or a connection error is retried after each of `retry_delays`.
`set_delivery()` duplicates, shuffles or delays deliveries for tests, `flush()` sends everything
held and waits, and `deliveries()` lists every attempt without bodies. Do not also register the
product's endpoint directly with `LocalStripe.configure_webhook()`, or it receives every
localstripe event twice.

Known gaps, where the pinned version differs from what the shim returns:

- Subscriptions keep localstripe's legacy fields (top-level `plan`, `quantity`,
  `current_period_*`, `discount`, `tax_percent`) and lack `discounts`, `default_payment_method`,
  `collection_method`, `currency`, `billing_mode` and `cancellation_details`.
- Invoices, charges and customers are forwarded in localstripe's shapes (no `invoice.payments`,
  no `invoice.total_taxes`, legacy `customer.account_balance`, and so on). See
  `docs/localstripe-gaps.md`.
- `GET /v1/events` is forwarded: it lists localstripe's events only (oldest first), not the
  shim's `checkout.session.completed`.
- Checkout Sessions take exactly one line item with an existing price (no `price_data`), no
  discounts, no `customer_email` collection on the page, no `setup` mode, no
  `checkout.session.expired` event, and no `expand`. `allow_promotion_codes` is stored but the
  page has no code field.
- Prices cannot be updated or deleted, and a Plan created directly in localstripe is retrievable
  as a Price but not listed.
- Renewals and time advance, promotion codes, customer balance transactions and disputes are
  not implemented.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import heapq
import html
import http.client
import itertools
import json
import logging
import random
import re
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.message import Message
from typing import Any, Final, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from idsentry.adapters.stripe_gateway import API_VERSION
from idsentry.i18n import DEFAULT_LOCALE, Locale, negotiate_locale
from idsentry.money import Money, UnknownCurrencyError, exponent, format_money
from idsentry.services.stripe_signature import SignatureError, sign, verify
from infra.local.emulators.base import LoopbackHTTPServer, Request, Response, json_response
from infra.local.emulators.stripe import TEST_API_KEY, WEBHOOK_CONFIG_PREFIX, is_loopback_http_url

logger = logging.getLogger(__name__)

LOCALSTRIPE_ENDPOINT_ID = "stripe-shim"
LOCALSTRIPE_EVENTS_PATH = "/_shim/localstripe-events"
TEST_CARD_PAYMENT_METHOD = "pm_card_visa"
LOCALSTRIPE_TIMEOUT_SECONDS = 10.0
WEBHOOK_TIMEOUT_SECONDS = 10.0
FLUSH_TIMEOUT_SECONDS = 30.0
# Seconds before each retry of a failed webhook delivery: retry n waits retry_delays[n - 1].
# Stripe keeps retrying with backoff for much longer, but a few short retries are enough to show
# at-least-once delivery locally.
DEFAULT_RETRY_DELAYS: Final = (1.0, 2.0, 4.0)
# Stripe's defaults: a Checkout Session expires 24 hours after creation
# (https://docs.stripe.com/payments/checkout/managing-limited-inventory), and an idempotency key
# is kept for at least 24 hours and is at most 255 characters long
# (https://docs.stripe.com/api/idempotent_requests).
CHECKOUT_SESSION_LIFETIME_SECONDS = 24 * 3600
IDEMPOTENCY_KEY_LIFETIME_SECONDS = 24 * 3600
MAX_IDEMPOTENCY_KEY_LENGTH = 255
# Stripe's metadata limits (https://docs.stripe.com/api/metadata): 50 keys, keys up to 40
# characters, values up to 500 characters.
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
MAX_LOOKUP_KEYS = 10
MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 10

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
ID_ALPHABET: Final = string.ascii_letters + string.digits
PAYMENT_METHOD_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
FORM_KEY_PATTERN = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
INTEGER_PATTERN = re.compile(r"-?[0-9]{1,18}")


def new_id(prefix: str, length: int = 24) -> str:
    """Return a Stripe-style id such as `price_1a2B...`, random enough never to repeat locally."""
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


# ---------------------------------------------------------------------------------------------
# Errors in Stripe's shape


class StripeApiError(Exception):
    """An error returned to the client as Stripe does: `{"error": {"type", "message", ...}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type

    def response(self) -> Response:
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        if self.code is not None:
            error["code"] = self.code
        return json_response(self.status, {"error": error})


class LocalStripeError(StripeApiError):
    """A call from the shim to localstripe returned a status other than 200."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        client_error = 400 <= status < 500
        super().__init__(
            status if client_error else 502,
            f"localstripe rejected {method} {path}: HTTP {status} {detail}",
            error_type="invalid_request_error" if client_error else "api_error",
        )
        self.localstripe_status = status


def unknown_parameter(name: str) -> StripeApiError:
    return StripeApiError(400, f"Received unknown parameter: {name}", param=name)


def invalid_parameter(name: str, expected: str) -> StripeApiError:
    return StripeApiError(400, f"Invalid {name}: must be {expected}", param=name)


def missing_parameter(name: str) -> StripeApiError:
    return StripeApiError(
        400, f"Missing required param: {name}.", param=name, code="parameter_missing"
    )


def resource_missing(kind: str, object_id: str, param: str | None = None) -> StripeApiError:
    return StripeApiError(
        404 if param is None else 400,
        f"No such {kind}: '{object_id}'",
        param=param or "id",
        code="resource_missing",
    )


def unrecognized_route(method: str, path: str) -> StripeApiError:
    return StripeApiError(
        404,
        f"Unrecognized request URL ({method}: {path}). The local Stripe shim does not "
        "implement this route.",
    )


# ---------------------------------------------------------------------------------------------
# Stripe's form encoding: `a[b][0][c]=v` and `a[]=v`


def parse_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Build nested parameters from form pairs, as Stripe reads them.

    Bracketed keys become nested hashes, `name[]` appends to a list, and a hash whose keys are
    all digits (`line_items[0][price]`) becomes a list ordered by index. Raises StripeApiError
    naming the key when a key is malformed or set twice.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = FORM_KEY_PATTERN.fullmatch(key)
        if match is None:
            raise StripeApiError(400, f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        _insert_form_value(root, path, value, key)
    converted = _lists_from_indexes(root)
    assert isinstance(converted, dict)
    return converted


def _insert_form_value(root: dict[str, Any], path: list[str], value: str, key: str) -> None:
    node = root
    for position, segment in enumerate(path[:-1]):
        if path[position + 1] == "":
            # Only a trailing `[]` is accepted: `name[]` or `name[sub][]`.
            if position + 2 != len(path):
                raise StripeApiError(400, f"Invalid parameter name: {key}", param=key)
            values = node.setdefault(segment, [])
            if not isinstance(values, list):
                raise StripeApiError(400, f"Parameter {key} conflicts with another", param=key)
            values.append(value)
            return
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise StripeApiError(400, f"Parameter {key} conflicts with another", param=key)
        node = child

    last = path[-1]
    if last == "" or last in node:
        raise StripeApiError(400, f"Parameter {key} is set more than once", param=key)
    node[last] = value


def _lists_from_indexes(node: Any) -> Any:
    if isinstance(node, list):
        return [_lists_from_indexes(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {name: _lists_from_indexes(value) for name, value in node.items()}
    if converted and all(name.isdigit() for name in converted):
        return [converted[name] for name in sorted(converted, key=int)]
    return converted


def encode_form(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested parameters into form pairs the way stripe-python encodes them."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        key = f"{prefix}[{name}]" if prefix else str(name)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs.extend(encode_form(value, key))
        elif isinstance(value, list | tuple):
            pairs.extend(encode_form({str(i): item for i, item in enumerate(value)}, key))
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        else:
            pairs.append((key, str(value)))
    return pairs


def request_params(request: Request) -> dict[str, Any]:
    """Return the request's parameters: the query for GET and DELETE, else the form body."""
    if request.method in ("GET", "DELETE"):
        return parse_form(query_pairs(request))

    content_type = request.headers.get("Content-Type") or ""
    if content_type.startswith("application/json"):
        try:
            document = json.loads(request.body.decode("utf-8")) if request.body else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StripeApiError(400, "Invalid JSON request body") from exc
        if not isinstance(document, dict):
            raise StripeApiError(400, "The JSON request body must be an object")
        return document
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StripeApiError(400, "The request body is not valid UTF-8") from exc
    return parse_form(parse_qsl(text, keep_blank_values=True))


def query_pairs(request: Request) -> list[tuple[str, str]]:
    return [(name, value) for name, values in request.query.items() for value in values]


class Params:
    """Typed reads of one level of nested request parameters, with errors naming the field."""

    def __init__(self, values: Mapping[str, Any], prefix: str = "") -> None:
        self.values = values
        self.prefix = prefix

    def label(self, name: str) -> str:
        return f"{self.prefix}[{name}]" if self.prefix else name

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        known = set(allowed)
        for name in self.values:
            if name not in known:
                raise unknown_parameter(self.label(name))

    def text(self, name: str, *, required: bool = False, max_length: int = 5000) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise missing_parameter(self.label(name))
            return None
        if not isinstance(value, str):
            raise invalid_parameter(self.label(name), "a string")
        if len(value) > max_length:
            raise invalid_parameter(self.label(name), f"at most {max_length} characters")
        return value

    def required_text(self, name: str, *, max_length: int = 5000) -> str:
        value = self.text(name, required=True, max_length=max_length)
        assert value is not None
        return value

    def choice(self, name: str, choices: Iterable[str], *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        allowed = list(choices)
        if value is not None and value not in allowed:
            raise invalid_parameter(self.label(name), "one of " + ", ".join(allowed))
        return value

    def integer(self, name: str, *, minimum: int, required: bool = False) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise missing_parameter(self.label(name))
            return None
        if isinstance(value, bool):
            raise invalid_parameter(self.label(name), "an integer")
        if isinstance(value, str):
            if INTEGER_PATTERN.fullmatch(value) is None:
                raise invalid_parameter(self.label(name), "an integer")
            value = int(value)
        if not isinstance(value, int) or value < minimum:
            raise invalid_parameter(self.label(name), f"an integer of at least {minimum}")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value is True
        if value not in ("true", "false"):
            raise invalid_parameter(self.label(name), "true or false")
        return bool(value == "true")

    def child(self, name: str) -> Params | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, Mapping):
            raise invalid_parameter(self.label(name), "a hash")
        return Params(value, self.label(name))

    def children(self, name: str) -> list[Params] | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise invalid_parameter(self.label(name), "an array of hashes")
        return [Params(item, f"{self.label(name)}[{index}]") for index, item in enumerate(value)]

    def texts(self, name: str, *, max_items: int = 100) -> list[str] | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise invalid_parameter(self.label(name), "an array of strings")
        if len(value) > max_items:
            raise invalid_parameter(self.label(name), f"an array of at most {max_items} strings")
        return list(value)

    def metadata(self, name: str = "metadata") -> dict[str, str]:
        """Read Stripe metadata. A key posted with an empty value is left out, because Stripe unsets it."""
        value = self.values.get(name)
        if value is None or value == "":
            return {}
        label = self.label(name)
        if not isinstance(value, Mapping):
            raise invalid_parameter(label, "a hash of strings")
        if len(value) > MAX_METADATA_KEYS:
            raise invalid_parameter(label, f"a hash of at most {MAX_METADATA_KEYS} keys")
        metadata: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(item, str | int) or isinstance(item, bool):
                raise invalid_parameter(f"{label}[{key}]", "a string")
            if len(key) > MAX_METADATA_KEY_LENGTH:
                raise invalid_parameter(
                    f"{label}[{key}]", f"a key of at most {MAX_METADATA_KEY_LENGTH} characters"
                )
            if len(str(item)) > MAX_METADATA_VALUE_LENGTH:
                raise invalid_parameter(
                    f"{label}[{key}]", f"at most {MAX_METADATA_VALUE_LENGTH} characters"
                )
            if str(item):
                metadata[str(key)] = str(item)
        return metadata


def read_expand(params: Params, supported: Iterable[str]) -> list[str]:
    """Return the `expand` paths, rejecting any the shim cannot expand."""
    paths = params.texts("expand") or []
    allowed = set(supported)
    for path in paths:
        if path not in allowed:
            raise StripeApiError(
                400,
                f"expand of {path!r} is not supported by the local Stripe shim",
                param="expand",
            )
    return paths


def read_http_url(params: Params, name: str) -> str | None:
    value = params.text(name, max_length=5000)
    if value is None:
        return None
    split = urlsplit(value)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise invalid_parameter(params.label(name), "an absolute http or https URL")
    return value


def read_currency(params: Params) -> str:
    currency = params.required_text("currency", max_length=3).lower()
    try:
        exponent(currency)
    except UnknownCurrencyError as exc:
        raise invalid_parameter("currency", "a currency code Stripe supports") from exc
    return currency


def api_key_from(headers: Message) -> str | None:
    """Return the secret key from Bearer or Basic authorization, as localstripe accepts it."""
    scheme, _, credential = (headers.get("Authorization") or "").partition(" ")
    key = ""
    if scheme == "Bearer":
        key = credential.strip()
    elif scheme == "Basic":
        try:
            key = base64.b64decode(credential, validate=True).decode("utf-8").split(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
    return key if key.startswith("sk_") and len(key) > len("sk_") else None


def paginate(
    objects: Sequence[dict[str, Any]], params: Params, url: str, kind: str
) -> dict[str, Any]:
    """Return one page of `objects` (already newest first) as a Stripe list object."""
    limit = params.integer("limit", minimum=1)
    limit = DEFAULT_LIST_LIMIT if limit is None else min(limit, MAX_LIST_LIMIT)
    starting_after = params.text("starting_after")
    ending_before = params.text("ending_before")
    if starting_after is not None and ending_before is not None:
        raise StripeApiError(
            400,
            "You may only specify one of starting_after and ending_before.",
            param="ending_before",
        )

    ids = [str(item["id"]) for item in objects]
    if starting_after is not None:
        if starting_after not in ids:
            raise resource_missing(kind, starting_after, "starting_after")
        start = ids.index(starting_after) + 1
        page = list(objects[start : start + limit])
        has_more = start + limit < len(objects)
    elif ending_before is not None:
        if ending_before not in ids:
            raise resource_missing(kind, ending_before, "ending_before")
        end = ids.index(ending_before)
        page = list(objects[max(0, end - limit) : end])
        has_more = end - limit > 0
    else:
        page = list(objects[:limit])
        has_more = limit < len(objects)
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


# ---------------------------------------------------------------------------------------------
# Webhook delivery


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery attempt. `status` is the HTTP status, or None when no response arrived."""

    event_id: str
    event_type: str
    attempt: int
    status: int | None


@dataclass(frozen=True)
class _Endpoint:
    url: str
    secret: str
    events: frozenset[str] | None


@dataclass(frozen=True)
class _DeliveryJob:
    event_id: str
    event_type: str
    payload: bytes
    endpoint: _Endpoint
    attempt: int = 1


class WebhookSender:
    """Sends events to the configured endpoint from one worker thread, signing at send time.

    Jobs wait in a queue ordered by due time. Shuffled jobs wait in a held list until
    `flush()`, which releases them in a random order.
    """

    def __init__(self, retry_delays: Sequence[float], rng: random.Random) -> None:
        self._retry_delays = tuple(retry_delays)
        self._rng = rng
        self._condition = threading.Condition()
        self._endpoint: _Endpoint | None = None
        self._duplicate = False
        self._shuffle = False
        self._delay_seconds = 0.0
        self._held_for_flush: list[_DeliveryJob] = []
        self._queue: list[tuple[float, int, _DeliveryJob]] = []
        self._sequence = itertools.count()
        self._in_flight = 0
        self._records: list[WebhookDelivery] = []
        self._unsent: Counter[str] = Counter()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._condition:
            self._stopping = False
        self._thread = threading.Thread(target=self._run, name="StripeShim-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker. Deliveries still queued or held are dropped, and their count is logged."""
        with self._condition:
            self._stopping = True
            dropped = len(self._queue) + len(self._held_for_flush)
            self._queue.clear()
            self._held_for_flush.clear()
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=WEBHOOK_TIMEOUT_SECONDS + 1)
            self._thread = None
        if dropped:
            logger.warning("webhook deliveries dropped at stop", extra={"count": dropped})

    def configure(self, endpoint: _Endpoint) -> None:
        with self._condition:
            self._endpoint = endpoint

    def set_options(self, *, duplicate: bool, shuffle: bool, delay_seconds: float) -> None:
        with self._condition:
            self._duplicate = duplicate
            self._shuffle = shuffle
            self._delay_seconds = delay_seconds

    def submit(self, event: Mapping[str, Any]) -> None:
        """Queue `event` for the endpoint, unless none is configured or it filters the type out."""
        event_id, event_type = str(event["id"]), str(event["type"])
        with self._condition:
            endpoint = self._endpoint
            if endpoint is None or (
                endpoint.events is not None and event_type not in endpoint.events
            ):
                return

            # Stripe sends the same payload on every attempt, and only the signature changes.
            payload = json.dumps({**event, "pending_webhooks": 1}, indent=2, ensure_ascii=False)
            job = _DeliveryJob(event_id, event_type, payload.encode("utf-8"), endpoint)
            for _ in range(2 if self._duplicate else 1):
                self._unsent[event_id] += 1
                if self._shuffle:
                    self._held_for_flush.append(job)
                else:
                    self._push(job, time.monotonic() + self._delay_seconds)
            self._condition.notify_all()

    def pending_webhooks(self, event_id: str) -> int:
        """Return 1 while a delivery of the event has not succeeded yet, else 0."""
        with self._condition:
            return 1 if self._unsent[event_id] > 0 else 0

    def records(self) -> list[WebhookDelivery]:
        with self._condition:
            return list(self._records)

    def flush(self, deadline: float) -> None:
        """Release held jobs in a random order, then wait until the queue is empty.

        Raises TimeoutError when jobs are still queued or in flight at `deadline` (monotonic).
        """
        with self._condition:
            released, self._held_for_flush = self._held_for_flush, []
            self._rng.shuffle(released)
            due = time.monotonic() + self._delay_seconds
            for job in released:
                self._push(job, due)
            self._condition.notify_all()

            drained = self._condition.wait_for(
                lambda: not self._queue and self._in_flight == 0,
                timeout=max(0.0, deadline - time.monotonic()),
            )
            if not drained:
                raise TimeoutError(
                    f"{len(self._queue) + self._in_flight} webhook deliveries were still "
                    "pending when flush() timed out"
                )

    def _push(self, job: _DeliveryJob, due: float) -> None:
        heapq.heappush(self._queue, (due, next(self._sequence), job))

    def _next_job(self) -> _DeliveryJob | None:
        with self._condition:
            while not self._stopping:
                now = time.monotonic()
                if self._queue and self._queue[0][0] <= now:
                    _, _, job = heapq.heappop(self._queue)
                    self._in_flight += 1
                    return job
                self._condition.wait(timeout=self._queue[0][0] - now if self._queue else None)
            return None

    def _run(self) -> None:
        while (job := self._next_job()) is not None:
            status = self._send(job)
            self._finish(job, status)

    def _finish(self, job: _DeliveryJob, status: int | None) -> None:
        with self._condition:
            self._in_flight -= 1
            self._records.append(WebhookDelivery(job.event_id, job.event_type, job.attempt, status))
            if status is not None and 200 <= status < 300:
                self._unsent[job.event_id] -= 1
            elif job.attempt <= len(self._retry_delays):
                delay = self._retry_delays[job.attempt - 1]
                self._push(replace(job, attempt=job.attempt + 1), time.monotonic() + delay)
                logger.info(
                    "webhook delivery failed, retrying",
                    extra={"event_id": job.event_id, "attempt": job.attempt, "status": status},
                )
            else:
                logger.error(
                    "webhook delivery failed, no retries left",
                    extra={"event_id": job.event_id, "attempt": job.attempt, "status": status},
                )
            self._condition.notify_all()

    @staticmethod
    def _send(job: _DeliveryJob) -> int | None:
        split = urlsplit(job.endpoint.url)
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        # Signed immediately before sending, as Stripe signs each attempt.
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(job.payload, job.endpoint.secret, int(time.time())),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        # http.client talks to the socket directly, so no proxy from the environment applies.
        connection = http.client.HTTPConnection(
            split.hostname or "", split.port or 80, timeout=WEBHOOK_TIMEOUT_SECONDS
        )
        try:
            connection.request("POST", target, body=job.payload, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException) as exc:
            logger.warning(
                "webhook delivery got no response",
                extra={"event_id": job.event_id, "error_type": type(exc).__name__},
            )
            return None
        finally:
            connection.close()


# ---------------------------------------------------------------------------------------------
# Hosted pages


PAGE_TEXT: Final[dict[Locale, dict[str, str]]] = {
    "zh-CN": {
        "checkout_title": "IDSentry 测试支付",
        "notice": "这是本地测试页面，使用测试卡，不会发生真实扣款。",
        "product": "商品",
        "amount": "金额",
        "pay": "使用测试卡付款（4242 4242 4242 4242）",
        "cancel": "取消并返回",
        "paid": "此订单已付款。",
        "expired": "此支付会话已过期。",
        "continue": "继续",
        "payment_failed": "付款失败，订单仍未完成。",
        "portal_title": "IDSentry 订阅管理",
        "no_subscriptions": "没有进行中的订阅。",
        "subscription": "订阅",
        "status": "状态",
        "period_end": "当前周期结束（UTC）",
        "cancel_subscription": "取消订阅",
        "cancel_failed": "取消订阅失败，请稍后重试。",
        "back": "返回",
        "not_found": "找不到该页面。",
        "day": "每天",
        "week": "每周",
        "month": "每月",
        "year": "每年",
    },
    "en": {
        "checkout_title": "IDSentry test checkout",
        "notice": "This is a local test page. It uses a test card, and no real money moves.",
        "product": "Product",
        "amount": "Amount",
        "pay": "Pay with test card (4242 4242 4242 4242)",
        "cancel": "Cancel and go back",
        "paid": "This checkout is already paid.",
        "expired": "This checkout session has expired.",
        "continue": "Continue",
        "payment_failed": "The payment failed, and the checkout is still open.",
        "portal_title": "IDSentry subscription management",
        "no_subscriptions": "No current subscriptions.",
        "subscription": "Subscription",
        "status": "Status",
        "period_end": "Current period ends (UTC)",
        "cancel_subscription": "Cancel subscription",
        "cancel_failed": "The cancellation failed. Try again later.",
        "back": "Go back",
        "not_found": "This page was not found.",
        "day": "per day",
        "week": "per week",
        "month": "per month",
        "year": "per year",
    },
}


def page_locale(stripe_locale: str | None, accept_language: str | None) -> Locale:
    """Pick the page language from Stripe's `locale`, or from Accept-Language for `auto`."""
    if stripe_locale in (None, "auto"):
        tags = [part.split(";")[0].strip() for part in (accept_language or "").split(",")]
        return negotiate_locale([tag for tag in tags if tag])
    assert stripe_locale is not None
    if stripe_locale == "en" or stripe_locale.startswith("en-"):
        return "en"
    return DEFAULT_LOCALE


def format_amount(amount: int, currency: str, locale: Locale) -> str:
    try:
        return format_money(Money(amount, currency), locale)
    except UnknownCurrencyError:
        return f"{amount} {currency.upper()} (minor units)"


def html_page(locale: Locale, title: str, body: str, status: int = 200) -> Response:
    document = (
        "<!doctype html>\n"
        f'<html lang="{locale}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}"
        "button{font-size:1rem;padding:.6rem 1rem}.notice{color:#555}</style>\n"
        f"</head>\n<body>\n<main>\n<h1>{html.escape(title)}</h1>\n{body}</main>\n</body>\n</html>\n"
    )
    return Response(
        status=status, body=document.encode("utf-8"), content_type="text/html; charset=utf-8"
    )


def redirect(location: str) -> Response:
    return Response(status=303, content_type="text/plain", headers={"Location": location})


def wants_json(request: Request) -> bool:
    return "application/json" in (request.headers.get("Accept") or "")


# ---------------------------------------------------------------------------------------------
# The shim


@dataclass
class _CheckoutSession:
    resource: dict[str, Any]
    price_id: str
    quantity: int
    subscription_metadata: dict[str, str]


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


ApiHandler = Callable[["StripeShim", Request, Params, str | None], dict[str, Any] | None]

# Path prefixes the shim owns: a request under them that matches no route in API_ROUTES gets
# Stripe's 404 for an unknown route instead of being forwarded to localstripe.
# The Invoice Payments API is missing from localstripe, so it also gets that 404.
SHIM_API_PREFIXES: Final = (
    "/v1/prices",
    "/v1/checkout/",
    "/v1/billing_portal/",
    "/v1/invoice_payments",
)
ID_SEGMENT = r"(?P<id>[A-Za-z0-9_]+)"


class StripeShim(LoopbackHTTPServer):
    """The Stripe API for the local stack: localstripe plus the routes and shapes it lacks.

    `localstripe_url` is a running `LocalStripe`'s `base_url`. Port 0 (the default) lets the
    operating system pick a free port. `retry_delays` are the seconds before each retry of a
    failed webhook delivery, and `rng` orders shuffled deliveries.
    """

    def __init__(
        self,
        localstripe_url: str,
        port: int = 0,
        *,
        api_key: str = TEST_API_KEY,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        rng: random.Random | None = None,
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
        self._localstripe_host = split.hostname or ""
        self._localstripe_port = split.port or 80
        self._api_key = api_key
        self._lock = threading.Lock()
        self._price_lock = threading.Lock()
        self._state = _State()
        self._idempotency = IdempotencyStore()
        self._sender = WebhookSender(retry_delays, rng or random.Random())
        self._localstripe_secret = ""
        self._received = threading.Condition()
        self._received_event_ids: set[str] = set()
        self._event_ids_before_start: set[str] = set()

    # -- lifecycle and controls ---------------------------------------------------------------

    def start(self) -> Self:
        """Serve on 127.0.0.1, start the webhook worker and register with localstripe."""
        super().start()
        try:
            self._sender.start()
            self._localstripe_secret = "whsec_" + secrets.token_hex(24)
            self._call_localstripe_config(
                WEBHOOK_CONFIG_PREFIX + LOCALSTRIPE_ENDPOINT_ID,
                {
                    "url": self.base_url + LOCALSTRIPE_EVENTS_PATH,
                    "secret": self._localstripe_secret,
                },
            )
            # Registered first, listed second: an event created before registration is either
            # in this list or still delivered, because localstripe reads its endpoints at send
            # time. flush() waits only for events created after this point.
            self._event_ids_before_start = set(self._localstripe_event_ids())
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
            _Endpoint(url, secret, None if events is None else frozenset(events))
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

    def flush(self, timeout: float = FLUSH_TIMEOUT_SECONDS) -> None:
        """Send every event created so far and wait until each delivery is done or out of retries.

        It first waits for localstripe to pass on the events it has created (localstripe sends
        each about one second after creating it), then releases held events in a random order.
        Raises TimeoutError when that takes longer than `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        expected = set(self._localstripe_event_ids()) - self._event_ids_before_start
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

    # -- request routing ------------------------------------------------------------------------

    def loggable_path(self, path: str) -> str:
        for route in API_ROUTES:
            if route.pattern.fullmatch(path):
                return route.name
        for name, pattern in PAGE_ROUTES.items():
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
            if request.method == "POST" and request.path.startswith("/v1/"):
                return self._with_idempotency(request)
            return self._handle_api(request)
        except StripeApiError as exc:
            return exc.response()

    def _handle_api(self, request: Request) -> Response:
        try:
            for route in API_ROUTES:
                match = route.pattern.fullmatch(request.path)
                if match is None or route.method != request.method:
                    continue
                if api_key_from(request.headers) is None:
                    raise StripeApiError(
                        401, "Invalid API Key provided: use a secret key that starts with sk_"
                    )
                params = Params(request_params(request))
                result = route.handler(self, request, params, match.groupdict().get("id"))
                # A handler returns None for an object the shim does not own, such as an
                # event that localstripe created.
                return self._forward(request) if result is None else json_response(200, result)
            if request.path.startswith(SHIM_API_PREFIXES):
                raise unrecognized_route(request.method, request.path)
            return self._forward(request)
        except StripeApiError as exc:
            return exc.response()

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
        status, content_type, body = self._localstripe_request(
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
        """Reshape subscriptions and events inside `node` in place and return whether any changed."""
        changed = False
        if isinstance(node, list):
            for item in node:
                changed = self._reshape(item) or changed
        elif isinstance(node, dict):
            for value in node.values():
                changed = self._reshape(value) or changed
            if node.get("object") == "subscription":
                changed = self._reshape_subscription(node) or changed
            elif node.get("object") == "event":
                node["api_version"] = API_VERSION
                node.setdefault(
                    "pending_webhooks", self._sender.pending_webhooks(str(node.get("id")))
                )
                node.setdefault("request", {"id": None, "idempotency_key": None})
                changed = True
        return changed

    def _reshape_subscription(self, subscription: dict[str, Any]) -> bool:
        """Add the pinned version's item fields: billing period and price."""
        items = subscription.get("items")
        data = items.get("data") if isinstance(items, dict) else None
        if not isinstance(data, list):
            return False
        for item in data:
            if not isinstance(item, dict):
                continue
            item.setdefault("current_period_start", subscription.get("current_period_start"))
            item.setdefault("current_period_end", subscription.get("current_period_end"))
            plan = item.get("plan")
            if "price" not in item and isinstance(plan, dict):
                item["price"] = self._price_for_plan(plan)
        return True

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

    # -- localstripe calls ----------------------------------------------------------------------

    def _localstripe_request(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, str, bytes]:
        # http.client talks to the socket directly, so no proxy from the environment applies.
        connection = http.client.HTTPConnection(
            self._localstripe_host, self._localstripe_port, timeout=LOCALSTRIPE_TIMEOUT_SECONDS
        )
        try:
            connection.request(method, target, body=body, headers=dict(headers))
            response = connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            logger.error(
                "localstripe request failed",
                extra={
                    "method": method,
                    "path": self.loggable_path(urlsplit(target).path),
                    "error_type": type(exc).__name__,
                },
            )
            raise StripeApiError(
                502, "localstripe is not reachable from the shim", error_type="api_error"
            ) from exc
        finally:
            connection.close()
        return response.status, response.getheader("Content-Type") or "", content

    def _call_localstripe(
        self, method: str, path: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Call localstripe's API with the shim's own key and return the JSON object.

        Raises LocalStripeError when localstripe returns any status other than 200.
        """
        headers = {"Authorization": f"Bearer {self._api_key}"}
        encoded = urlencode(encode_form(params or {}))
        target, body = path, None
        if method in ("GET", "DELETE"):
            target = f"{path}?{encoded}" if encoded else path
        else:
            body = encoded.encode("utf-8")
            headers["Content-Type"] = "application/x-www-form-urlencoded"

        status, _, content = self._localstripe_request(method, target, body, headers)
        try:
            document = json.loads(content)
        except (UnicodeDecodeError, json.JSONDecodeError):
            document = None
        if status != 200 or not isinstance(document, dict):
            detail = ""
            if isinstance(document, dict) and isinstance(document.get("error"), dict):
                detail = str(document["error"].get("message") or "")
            raise LocalStripeError(method, path, status, detail)
        return document

    def _call_localstripe_config(self, path: str, body: Mapping[str, Any]) -> None:
        status, _, content = self._localstripe_request(
            "POST", path, json.dumps(body).encode("utf-8"), {"Content-Type": "application/json"}
        )
        if status != 200:
            detail = content.decode("utf-8", errors="replace")
            raise RuntimeError(f"localstripe rejected POST {path}: HTTP {status} {detail}")

    def _localstripe_event_ids(self) -> list[str]:
        ids: list[str] = []
        params: dict[str, Any] = {"limit": MAX_LIST_LIMIT}
        while True:
            page = self._call_localstripe("GET", "/v1/events", params)
            data = page.get("data") or []
            ids.extend(str(event["id"]) for event in data)
            if not page.get("has_more") or not data:
                return ids
            params["starting_after"] = ids[-1]

    def _require_localstripe(self, kind: str, object_id: str, param: str) -> dict[str, Any]:
        """Retrieve a referenced object, turning localstripe's 404 into Stripe's 400 on `param`."""
        try:
            return self._call_localstripe("GET", f"/v1/{kind}s/{quote(object_id, safe='')}")
        except LocalStripeError as exc:
            if exc.localstripe_status == 404:
                raise resource_missing(kind, object_id, param) from exc
            raise

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

    def create_price(self, request: Request, params: Params, _: str | None) -> dict[str, Any]:
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
                self._require_localstripe("product", product_id, "product")
            else:
                assert product_data is not None
                product_data.reject_unknown({"name", "metadata"})
                product = {
                    "name": product_data.required_text("name"),
                    "metadata": product_data.metadata(),
                }
                product_id = str(self._call_localstripe("POST", "/v1/products", product)["id"])

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
                self._call_localstripe("POST", "/v1/plans", plan)

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
        self, request: Request, params: Params, price_id: str | None
    ) -> dict[str, Any]:
        params.reject_unknown({"expand"})
        expand = read_expand(params, {"product"})
        assert price_id is not None
        with self._lock:
            stored = self._state.prices.get(price_id)
            price = copy.deepcopy(stored) if stored is not None else None
        if price is None:
            price = self._price_from_localstripe_plan(price_id)
        return self._expand_price(price, expand)

    def _price_from_localstripe_plan(self, price_id: str) -> dict[str, Any]:
        try:
            plan = self._call_localstripe("GET", f"/v1/plans/{quote(price_id, safe='')}")
        except LocalStripeError as exc:
            if exc.localstripe_status == 404:
                raise resource_missing("price", price_id) from exc
            raise
        return self._price_for_plan(plan)

    def list_prices(self, request: Request, params: Params, _: str | None) -> dict[str, Any]:
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
            price["product"] = self._call_localstripe(
                "GET", f"/v1/products/{quote(price['product'], safe='')}"
            )
        return price

    # -- Checkout Sessions ----------------------------------------------------------------------

    def create_checkout_session(
        self, request: Request, params: Params, _: str | None
    ) -> dict[str, Any]:
        params.reject_unknown(
            {
                "allow_promotion_codes", "cancel_url", "client_reference_id", "customer",
                "customer_email", "line_items", "locale", "metadata", "mode",
                "payment_method_types", "subscription_data", "success_url",
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
            self._require_localstripe("customer", customer, "customer")
        subscription_metadata = read_subscription_data(params, mode)
        payment_method_types = params.texts("payment_method_types") or ["card"]
        for index, method in enumerate(payment_method_types):
            if PAYMENT_METHOD_TYPE_PATTERN.fullmatch(method) is None:
                raise invalid_parameter(
                    f"payment_method_types[{index}]", "a payment method type such as card"
                )

        session_id = new_id("cs_test_", 58)
        created = int(time.time())
        amount = int(price["unit_amount"] or 0) * quantity
        session = {
            "id": session_id,
            "object": "checkout.session",
            "allow_promotion_codes": params.boolean("allow_promotion_codes"),
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": read_http_url(params, "cancel_url"),
            "client_reference_id": params.text("client_reference_id", max_length=200),
            "created": created,
            "currency": price["currency"],
            "customer": customer,
            "customer_email": customer_email,
            "expires_at": created + CHECKOUT_SESSION_LIFETIME_SECONDS,
            "invoice": None,
            "livemode": False,
            "locale": params.choice("locale", sorted(CHECKOUT_LOCALES)),
            "metadata": params.metadata(),
            "mode": mode,
            "payment_intent": None,
            "payment_method_types": payment_method_types,
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": read_http_url(params, "success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted",
            "url": f"{self.base_url}/checkout/{session_id}",
        }
        with self._lock:
            self._state.checkout_sessions[session_id] = _CheckoutSession(
                session, str(price["id"]), quantity, subscription_metadata
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
        self, request: Request, params: Params, session_id: str | None
    ) -> dict[str, Any]:
        params.reject_unknown({"expand"})
        read_expand(params, ())
        assert session_id is not None
        with self._lock:
            session = self._state.checkout_sessions.get(session_id)
            if session is None:
                raise resource_missing("checkout.session", session_id)
            return copy.deepcopy(session.resource)

    def pay_checkout_session(self, session_id: str) -> tuple[dict[str, Any], str]:
        """Pay an open session with the test card and return the session and the event id.

        Raises StripeApiError (404 unknown, 409 not open) or LocalStripeError.
        """
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

        try:
            if resource["mode"] == "subscription":
                updates = self._pay_subscription(session, resource)
            else:
                updates = self._pay_once(resource)
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
        self, session: _CheckoutSession, resource: Mapping[str, Any]
    ) -> dict[str, Any]:
        customer = resource["customer"]
        if customer is None:
            created = self._call_localstripe(
                "POST", "/v1/customers", {"email": resource["customer_email"]}
            )
            customer = str(created["id"])

        # Attaching the test id creates a new PaymentMethod, and that new id becomes the default.
        attached = self._call_localstripe(
            "POST", f"/v1/payment_methods/{TEST_CARD_PAYMENT_METHOD}/attach", {"customer": customer}
        )
        self._call_localstripe(
            "POST",
            f"/v1/customers/{quote(customer, safe='')}",
            {"invoice_settings": {"default_payment_method": attached["id"]}},
        )
        subscription = self._call_localstripe(
            "POST",
            "/v1/subscriptions",
            {
                "customer": customer,
                "items": [{"plan": session.price_id, "quantity": session.quantity}],
                "metadata": session.subscription_metadata or None,
            },
        )
        if subscription.get("status") != "active":
            raise StripeApiError(
                402,
                f"The test card payment left subscription {subscription.get('id')} "
                f"{subscription.get('status')}",
                code="card_declined",
                error_type="card_error",
            )
        return {
            "customer": customer,
            "subscription": subscription["id"],
            "invoice": subscription.get("latest_invoice"),
        }

    def _pay_once(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        if resource["amount_total"] == 0:
            # Stripe completes a free payment-mode session without a PaymentIntent.
            return {"payment_status": "no_payment_required"}

        # Retrieving the test id creates a new PaymentMethod in localstripe.
        payment_method = self._call_localstripe(
            "GET", f"/v1/payment_methods/{TEST_CARD_PAYMENT_METHOD}"
        )
        intent = self._call_localstripe(
            "POST",
            "/v1/payment_intents",
            {
                "amount": resource["amount_total"],
                "currency": resource["currency"],
                "customer": resource["customer"],
                "payment_method": payment_method["id"],
                "confirm": True,
            },
        )
        if intent.get("status") != "succeeded":
            raise StripeApiError(
                402,
                f"The test card payment left PaymentIntent {intent.get('id')} {intent.get('status')}",
                code="card_declined",
                error_type="card_error",
            )
        return {"payment_intent": intent["id"]}

    # -- Billing Portal -------------------------------------------------------------------------

    def create_portal_session(
        self, request: Request, params: Params, _: str | None
    ) -> dict[str, Any]:
        params.reject_unknown({"customer", "locale", "return_url"})
        customer = params.required_text("customer")
        return_url = read_http_url(params, "return_url")
        locale = params.choice("locale", sorted(CHECKOUT_LOCALES))
        self._require_localstripe("customer", customer, "customer")

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
            subscription = self._call_localstripe("GET", path)
        except LocalStripeError as exc:
            if exc.localstripe_status == 404:
                raise resource_missing("subscription", subscription_id) from exc
            raise
        if subscription.get("customer") != customer:
            raise resource_missing("subscription", subscription_id)

        canceled = self._call_localstripe("DELETE", path)
        self._reshape(canceled)
        logger.info(
            "stripe shim portal subscription canceled",
            extra={"portal_session_id": portal_id, "subscription_id": subscription_id},
        )
        return canceled

    # -- Events ---------------------------------------------------------------------------------

    def retrieve_event(
        self, request: Request, params: Params, event_id: str | None
    ) -> dict[str, Any] | None:
        """Return a shim event, or None so that localstripe's event is forwarded and reshaped."""
        assert event_id is not None
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
        amount = format_amount(int(resource["amount_total"]), str(resource["currency"]), locale)
        recurring = price.get("recurring")
        if isinstance(recurring, dict) and recurring.get("interval") in PRICE_INTERVALS:
            amount += " " + text[str(recurring["interval"])]
        body = (
            f'<p class="notice">{html.escape(text["notice"])}</p>\n'
            f"<p>{html.escape(text['product'])}: {html.escape(product_name)}</p>\n"
            f"<p>{html.escape(text['amount'])}: {html.escape(amount)}</p>\n"
            f'<form method="post" action="/checkout/{html.escape(session_id)}/pay">\n'
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
            product = self._call_localstripe("GET", f"/v1/products/{quote(product_id, safe='')}")
        except LocalStripeError as exc:
            logger.warning(
                "stripe shim product lookup failed",
                extra={"product_id": product_id, "status": exc.localstripe_status},
            )
            return product_id
        return str(product.get("name") or product_id)

    def _checkout_pay(self, request: Request, session_id: str) -> Response:
        try:
            session, event_id = self.pay_checkout_session(session_id)
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
        listed = self._call_localstripe(
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


@dataclass(frozen=True)
class ApiRoute:
    """A Stripe API route that the shim serves itself; `name` is the path as it is logged."""

    method: str
    pattern: re.Pattern[str]
    name: str
    handler: ApiHandler


def api_route(method: str, path: str, handler: ApiHandler) -> ApiRoute:
    pattern = re.compile(path.replace("<id>", ID_SEGMENT))
    return ApiRoute(method, pattern, path, handler)


API_ROUTES: Final = (
    api_route("POST", "/v1/prices", StripeShim.create_price),
    api_route("GET", "/v1/prices", StripeShim.list_prices),
    api_route("GET", "/v1/prices/<id>", StripeShim.retrieve_price),
    api_route("POST", "/v1/checkout/sessions", StripeShim.create_checkout_session),
    api_route("GET", "/v1/checkout/sessions/<id>", StripeShim.retrieve_checkout_session),
    api_route("POST", "/v1/billing_portal/sessions", StripeShim.create_portal_session),
    # NOTE: GET /v1/events (the list) is forwarded, so it omits the shim's own events.
    api_route("GET", "/v1/events/<id>", StripeShim.retrieve_event),
)

# The hosted pages and their control routes, by the name they are logged and dispatched with.
PAGE_ROUTES: Final = {
    "/checkout/<id>": re.compile(rf"/checkout/{ID_SEGMENT}"),
    "/checkout/<id>/pay": re.compile(rf"/checkout/{ID_SEGMENT}/pay"),
    "/portal/<id>": re.compile(rf"/portal/{ID_SEGMENT}"),
    "/portal/<id>/subscriptions/<subscription>/cancel": re.compile(
        rf"/portal/{ID_SEGMENT}/subscriptions/(?P<subscription>[A-Za-z0-9_]+)/cancel"
    ),
}
