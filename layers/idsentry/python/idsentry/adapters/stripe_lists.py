"""Stripe list and retrieve calls for the finance reconciliation, counted and retried on 429.

Lists page with `limit=100`, Stripe's largest page, and `starting_after`, so a list of n
objects costs ceil(n / 100) requests, and at least one. Requests go through the SDK's raw
request, which keeps its encoding, retries and errors but returns plain JSON.

Stripe returns 429 when a client exceeds its rate limits, and stripe-python 16.1.0 retries a
429 only when Stripe adds the `Stripe-Should-Retry: true` header. This adapter therefore
retries a 429 itself, with exponential backoff and jitter, at most `max_network_retries` times
per request: the same budget the SDK gets for connection errors, 409 and 5xx answers. A list
resumes after the last object it returned, so a retry neither repeats nor skips objects.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Protocol
from urllib.parse import quote, urlsplit

from idsentry.adapters.stripe_gateway import API_VERSION, PROVIDER
from idsentry.errors import ProviderError

logger = logging.getLogger(__name__)

PAGE_SIZE: Final = 100
DEFAULT_MAX_NETWORK_RETRIES: Final = 3
# The first retry waits about this long, and each later one twice as long, up to the maximum.
FIRST_BACKOFF_SECONDS: Final = 1.0
MAX_BACKOFF_SECONDS: Final = 30.0

# The SDK services that the reconciliation lists or retrieves, by the name callers use.
LISTED: Final = frozenset(
    {
        "balance_transactions",
        "charges",
        "disputes",
        "events",
        "invoices",
        "payouts",
        "refunds",
        "subscriptions",
    }
)
RETRIEVED: Final = frozenset({*LISTED, "checkout.sessions"})


class StripeLists(Protocol):
    """The Stripe reads of a reconciliation: whole lists, single objects and a request count."""

    def list_all(self, resource: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Yield every object of a list, newest first, fetching pages as they are consumed."""
        ...

    def retrieve(self, resource: str, object_id: str) -> dict[str, Any] | None:
        """Return one object, or None when Stripe has no object with that id."""
        ...

    def request_counts(self) -> dict[str, int]:
        """Return the HTTP requests made so far, by "METHOD /v1/path" with ids left out."""
        ...


def route_of(method: str, url: str) -> str:
    """Return "GET /v1/charges" for a list and "GET /v1/charges/<id>" for a retrieval."""
    parts = urlsplit(url).path.rstrip("/").split("/")
    named = [part if index < 3 else "<id>" for index, part in enumerate(parts)]
    if len(parts) > 3 and parts[2] == "checkout":
        named = [*parts[:4], *["<id>" for _ in parts[4:]]]
    return f"{method.upper()} {'/'.join(named)}"


class _CountingClient:
    """Wraps an SDK HTTP client's `request` to count each attempt, retries included."""

    def __init__(self, counts: Counter[str], lock: threading.Lock) -> None:
        self._counts = counts
        self._lock = lock

    def wrap(self, client: Any) -> Any:
        request = client.request
        counts, lock = self._counts, self._lock

        def counted(
            method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any
        ) -> Any:
            with lock:
                counts[route_of(method, url)] += 1
            return request(method, url, headers, post_data, **kwargs)

        client.request = counted
        return client


class StripeSdkLists:
    """`StripeLists` through the official SDK, whose client is created on first use.

    `http_client` replaces the SDK's default HTTP client (tests pass one that stays on
    127.0.0.1), `sleep` and `rng` drive the backoff so that tests need not wait.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        max_network_retries: int = DEFAULT_MAX_NETWORK_RETRIES,
        http_client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key:
            raise ProviderError(PROVIDER, "api_key must be configured", transient=False)
        if max_network_retries < 0:
            raise ValueError(f"max_network_retries must not be negative, got {max_network_retries}")
        self._api_key = api_key
        self._base_url = base_url
        self._max_network_retries = max_network_retries
        self._http_client = http_client
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._client: Any = None

    def _stripe_client(self) -> Any:
        if self._client is None:
            import stripe

            http_client = self._http_client or stripe.RequestsClient()
            options: dict[str, Any] = {
                "stripe_version": API_VERSION,
                "max_network_retries": self._max_network_retries,
                "http_client": _CountingClient(self._counts, self._lock).wrap(http_client),
            }
            if self._base_url:
                options["base_addresses"] = {"api": self._base_url.rstrip("/")}
            self._client = stripe.StripeClient(self._api_key, **options)
        return self._client

    def request_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def list_all(self, resource: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        if resource not in LISTED:
            raise ValueError(f"resource must be one of {', '.join(sorted(LISTED))}, got {resource}")
        import stripe

        base = {**params, "limit": PAGE_SIZE}
        last_id: str | None = None
        failures = 0
        while True:
            request = base if last_id is None else {**base, "starting_after": last_id}
            try:
                page = self._get(_path(resource), request)
            except stripe.RateLimitError as exc:
                failures += 1
                self._back_off(resource, failures, exc)
                continue
            except stripe.StripeError as exc:
                raise _provider_error(exc) from exc
            failures = 0
            items = page.get("data") or []
            for item in items:
                last_id = str(item["id"])
                yield item
            if not items or not page.get("has_more"):
                return

    def retrieve(self, resource: str, object_id: str) -> dict[str, Any] | None:
        if resource not in RETRIEVED:
            raise ValueError(
                f"resource must be one of {', '.join(sorted(RETRIEVED))}, got {resource}"
            )
        import stripe

        failures = 0
        while True:
            try:
                return self._get(f"{_path(resource)}/{quote(object_id, safe='')}", {})
            except stripe.RateLimitError as exc:
                failures += 1
                self._back_off(resource, failures, exc)
            except stripe.InvalidRequestError as exc:
                if exc.http_status == 404:
                    return None
                raise _provider_error(exc) from exc
            except stripe.StripeError as exc:
                raise _provider_error(exc) from exc

    def _get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        # The raw request encodes, retries and raises as a service call does, but returns the
        # JSON without turning each object into a StripeObject, which `to_dict` then undid.
        response = self._stripe_client().raw_request("get", path, **params)
        body: dict[str, Any] = response.data
        return body

    def _back_off(self, resource: str, failures: int, error: Exception) -> None:
        """Sleep before retry number `failures`, or raise once the retries are used up."""
        if failures > self._max_network_retries:
            logger.warning(
                "stripe rate limit retries exhausted",
                extra={"resource": resource, "attempts": failures},
            )
            raise ProviderError(PROVIDER, "rate limited", transient=True) from error
        delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (failures - 1))
        delay *= 0.5 + self._rng.random() / 2
        logger.info(
            "stripe rate limited, retrying",
            extra={"resource": resource, "attempt": failures, "retry_in_seconds": round(delay, 2)},
        )
        self._sleep(delay)


def _path(resource: str) -> str:
    """Return the API path of a listed or retrieved resource, such as /v1/checkout/sessions."""
    return "/v1/" + resource.replace(".", "/")


def _provider_error(exc: Any) -> ProviderError:
    import stripe

    transient = isinstance(exc, (stripe.APIConnectionError, stripe.APIError))
    code = getattr(exc, "code", None)
    detail = f"{type(exc).__name__} {code}" if code else type(exc).__name__
    return ProviderError(PROVIDER, detail, transient=transient, code=code)
