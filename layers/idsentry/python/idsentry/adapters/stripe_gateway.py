"""Stripe reads for the billing consumer, behind an interface that returns plain dicts."""

from __future__ import annotations

from typing import Any, Protocol

from idsentry.errors import ProviderError

PROVIDER = "stripe"
# The API version of the stripe SDK pinned in uv.lock. The deployment's webhook endpoint must
# be created with the same version, because event payloads follow the endpoint's version.
API_VERSION = "2026-10-28.endive"


class StripeGateway(Protocol):
    """The Stripe objects the billing consumer reads, always fetched fresh."""

    def event(self, event_id: str) -> dict[str, Any]: ...

    def subscription(self, subscription_id: str) -> dict[str, Any]: ...

    def invoice(self, invoice_id: str) -> dict[str, Any]: ...

    def invoice_payment_charge(self, invoice_id: str) -> str | None: ...

    def checkout_session(self, session_id: str) -> dict[str, Any]: ...

    def charge(self, charge_id: str) -> dict[str, Any]: ...

    def dispute(self, dispute_id: str) -> dict[str, Any]: ...

    def customer(self, customer_id: str) -> dict[str, Any]: ...

    def payment_intent(self, payment_intent_id: str) -> dict[str, Any]: ...

    def create_balance_transaction(
        self, customer_id: str, params: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]: ...


class StripeCheckout(Protocol):
    """The Stripe writes that start a purchase; each takes an idempotency key."""

    def price_id(self, lookup_key: str) -> str: ...

    def create_customer(self, params: dict[str, Any], idempotency_key: str) -> str: ...

    def create_checkout_session(
        self, params: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]: ...

    def create_portal_session(
        self, params: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]: ...


class StripeAccountEraser(Protocol):
    """The Stripe writes of an account deletion: end the subscriptions, redact the customer."""

    def open_subscription_ids(self, customer_id: str) -> list[str]: ...

    def cancel_subscription(self, subscription_id: str) -> str: ...

    def redact_customer(self, customer_id: str, idempotency_key: str) -> bool: ...


# Customer fields that can hold personal data; an empty string unsets each of them, and an
# empty `metadata` removes every metadata key.
REDACTED_CUSTOMER_FIELDS: dict[str, str] = {
    "name": "",
    "email": "",
    "phone": "",
    "description": "",
    "address": "",
    "metadata": "",
}


class StripeSdkGateway:
    """The official SDK's client, created on first use; `base_url` is set only locally."""

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        if not api_key:
            raise ProviderError(PROVIDER, "api_key must be configured", transient=False)
        self._api_key = api_key
        self._base_url = base_url
        self._client: Any = None

    def _v1(self) -> Any:
        if self._client is None:
            import stripe

            options: dict[str, Any] = {"stripe_version": API_VERSION, "max_network_retries": 2}
            if self._base_url:
                options["base_addresses"] = {"api": self._base_url.rstrip("/")}
            self._client = stripe.StripeClient(self._api_key, **options)
        return self._client.v1

    def _call(
        self, service: str, object_id: str, expand: list[str] | None = None
    ) -> dict[str, Any]:
        import stripe

        params = {"expand": expand} if expand else None
        try:
            found = getattr(self._v1(), service).retrieve(object_id, params)
        except stripe.RateLimitError as exc:
            raise ProviderError(PROVIDER, "rate limited", transient=True) from exc
        except (stripe.APIConnectionError, stripe.APIError) as exc:
            raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from exc
        except stripe.StripeError as exc:
            raise ProviderError(
                PROVIDER, f"{type(exc).__name__} {exc.code}", transient=False
            ) from exc
        result: dict[str, Any] = found.to_dict()
        return result

    def event(self, event_id: str) -> dict[str, Any]:
        """Fetch an event by id."""
        return self._call("events", event_id)

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        """Fetch a subscription with its items."""
        return self._call("subscriptions", subscription_id)

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        """Fetch an invoice."""
        return self._call("invoices", invoice_id)

    def invoice_payment_charge(self, invoice_id: str) -> str | None:
        """Return the charge of the invoice's paid payment, or None where none is listed."""
        import stripe

        try:
            page = self._v1().invoice_payments.list(params={"invoice": invoice_id, "limit": 10})
        except stripe.InvalidRequestError:
            return None  # servers without the Invoice Payments API, such as localstripe
        except stripe.StripeError as exc:
            raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from exc
        for payment in page.data:
            details = payment.to_dict()
            charge = (details.get("payment") or {}).get("charge")
            if details.get("status") == "paid" and charge:
                return str(charge if isinstance(charge, str) else charge["id"])
        return None

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        """Fetch a Checkout Session."""
        import stripe

        try:
            found = self._v1().checkout.sessions.retrieve(session_id)
        except stripe.StripeError as exc:
            transient = isinstance(
                exc, (stripe.RateLimitError, stripe.APIConnectionError, stripe.APIError)
            )
            raise ProviderError(PROVIDER, type(exc).__name__, transient=transient) from exc
        result: dict[str, Any] = found.to_dict()
        return result

    def charge(self, charge_id: str) -> dict[str, Any]:
        """Fetch a charge with its refunds and balance transaction."""
        return self._call("charges", charge_id, ["refunds", "balance_transaction"])

    def dispute(self, dispute_id: str) -> dict[str, Any]:
        """Fetch a dispute with its balance transactions."""
        return self._call("disputes", dispute_id)

    def customer(self, customer_id: str) -> dict[str, Any]:
        """Fetch a customer (a deleted one has `deleted: true`)."""
        return self._call("customers", customer_id)

    def payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        """Fetch a PaymentIntent (its `latest_charge` names the charge)."""
        return self._call("payment_intents", payment_intent_id)

    def _write(self, call: Any, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        import stripe

        try:
            created = call(params=params, options={"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            transient = isinstance(
                exc, (stripe.RateLimitError, stripe.APIConnectionError, stripe.APIError)
            )
            raise ProviderError(PROVIDER, type(exc).__name__, transient=transient) from exc
        result: dict[str, Any] = created.to_dict()
        return result

    def price_id(self, lookup_key: str) -> str:
        """Return the id of the active price with this lookup key."""
        import stripe

        try:
            found = self._v1().prices.list(
                params={"lookup_keys": [lookup_key], "active": True, "limit": 1}
            )
        except stripe.StripeError as exc:
            raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from exc
        if not found.data:
            raise ProviderError(
                PROVIDER, f"no active price with lookup key {lookup_key}", transient=False
            )
        return str(found.data[0].id)

    def create_customer(self, params: dict[str, Any], idempotency_key: str) -> str:
        """Create a customer; the same idempotency key returns the same customer for 24 hours."""
        return str(self._write(self._v1().customers.create, params, idempotency_key)["id"])

    def create_checkout_session(
        self, params: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        """Create a Checkout Session."""
        return self._write(self._v1().checkout.sessions.create, params, idempotency_key)

    def create_portal_session(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Create a Customer Portal session."""
        return self._write(self._v1().billing_portal.sessions.create, params, idempotency_key)

    def create_balance_transaction(
        self, customer_id: str, params: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        """Add a transaction to a customer's balance (a negative amount is a credit)."""

        def create(params: dict[str, Any], options: dict[str, Any]) -> Any:
            return self._v1().customers.balance_transactions.create(customer_id, params, options)

        return self._write(create, params, idempotency_key)

    def open_subscription_ids(self, customer_id: str) -> list[str]:
        """Return the customer's subscriptions that are not canceled yet (Stripe's default list)."""
        import stripe

        try:
            page = self._v1().subscriptions.list(params={"customer": customer_id, "limit": 100})
            return [str(subscription.id) for subscription in page.auto_paging_iter()]
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return []  # the customer itself is gone
            raise ProviderError(
                PROVIDER, f"InvalidRequestError {exc.code}", transient=False
            ) from exc
        except stripe.StripeError as exc:
            raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from exc

    def cancel_subscription(self, subscription_id: str) -> str:
        """Cancel the subscription now, without a final invoice; returns its status.

        Stripe ignores idempotency keys on DELETE requests, so none is sent: cancelling is
        repeated safely by listing the open subscriptions again first.
        """
        import stripe

        try:
            canceled = self._v1().subscriptions.cancel(subscription_id)
        except stripe.StripeError as exc:
            transient = isinstance(
                exc, (stripe.RateLimitError, stripe.APIConnectionError, stripe.APIError)
            )
            raise ProviderError(PROVIDER, type(exc).__name__, transient=transient) from exc
        return str(canceled.status)

    def redact_customer(self, customer_id: str, idempotency_key: str) -> bool:
        """Unset the customer's name, e-mail, phone, description, address and metadata.

        Returns False when the customer no longer exists at Stripe.
        """
        import stripe

        try:
            self._v1().customers.update(
                customer_id,
                params=dict(REDACTED_CUSTOMER_FIELDS),
                options={"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return False
            raise ProviderError(
                PROVIDER, f"InvalidRequestError {exc.code}", transient=False
            ) from exc
        except stripe.StripeError as exc:
            transient = isinstance(
                exc, (stripe.RateLimitError, stripe.APIConnectionError, stripe.APIError)
            )
            raise ProviderError(PROVIDER, type(exc).__name__, transient=transient) from exc
        return True
