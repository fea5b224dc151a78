"""Customer balance transactions for the local Stripe shim, and each customer's balance and currency.

localstripe 1.15.10 has no balance transactions, and the legacy `account_balance` it keeps is
applied to every invoice without ever being used up. The shim keeps the transactions itself:
a customer's `balance` is the sum of their amounts, negative is a credit, and a renewal invoice
uses it up through an `applied_to_invoice` transaction.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any, Final
from urllib.parse import quote

from infra.local.emulators.stripe_api import (
    LocalStripeError,
    Params,
    StripeApiError,
    invalid_parameter,
    new_id,
    paginate,
    read_created,
    read_currency,
    read_expand,
    resource_missing,
)
from infra.local.emulators.stripe_client import LocalStripeClient

logger = logging.getLogger(__name__)

# Stripe's largest amount in minor units for most currencies (https://docs.stripe.com/currencies).
MAX_AMOUNT: Final = 99_999_999
MAX_DESCRIPTION_LENGTH: Final = 350


class CustomerBalances:
    """Balance transactions by customer, oldest first.

    `lock` is reentrant and held while a transaction is added, so that a renewal can read a
    balance, invoice it and record the applied amount without another transaction between.
    """

    def __init__(self, localstripe: LocalStripeClient) -> None:
        self._localstripe = localstripe
        self.lock = threading.RLock()
        self._transactions: dict[str, list[dict[str, Any]]] = {}
        self._currencies: dict[str, str] = {}

    def balance(self, customer_id: str) -> int:
        """Return the customer's balance in minor units: negative is a credit."""
        with self.lock:
            transactions = self._transactions.get(customer_id) or []
            return int(transactions[-1]["ending_balance"]) if transactions else 0

    def currency(self, customer_id: str) -> str | None:
        """Return the customer's currency: their balance's, else their newest invoice's, else None."""
        with self.lock:
            known = self._currencies.get(customer_id)
        if known is not None:
            return known
        try:
            invoices = self._localstripe.call(
                "GET", "/v1/invoices", {"customer": customer_id, "limit": 1}
            )
        except LocalStripeError:
            return None
        data = invoices.get("data") or []
        if not data:
            return None
        currency = str(data[0]["currency"])
        with self.lock:
            return self._currencies.setdefault(customer_id, currency)

    def note_currency(self, customer_id: str, currency: str) -> None:
        """Set the customer's currency if it has none, as Stripe does at the first invoice."""
        with self.lock:
            self._currencies.setdefault(customer_id, currency)

    def create(self, customer_id: str, params: Params) -> dict[str, Any]:
        """Add an `adjustment` to the customer's balance from `POST .../balance_transactions`."""
        params.reject_unknown({"amount", "currency", "description", "expand", "metadata"})
        read_expand(params, ())
        amount = params.integer("amount", minimum=-MAX_AMOUNT, required=True)
        if amount == 0 or amount is None or amount > MAX_AMOUNT:
            raise invalid_parameter(
                "amount",
                f"a non-zero integer between -{MAX_AMOUNT} and {MAX_AMOUNT}: negative is a "
                "credit, positive a debit",
            )
        currency = read_currency(params)
        description = params.text("description", max_length=MAX_DESCRIPTION_LENGTH)
        metadata = params.metadata()
        self._localstripe.retrieve("customer", customer_id)

        with self.lock:
            expected = self.currency(customer_id)
            if expected is not None and expected != currency:
                raise StripeApiError(
                    400,
                    f"The currency of this transaction ({currency}) does not match the "
                    f"customer's currency ({expected}).",
                    param="currency",
                )
            transaction = self._add(customer_id, amount, currency, "adjustment", None)
            transaction["description"] = description
            transaction["metadata"] = metadata
            created = copy.deepcopy(transaction)

        logger.info(
            "stripe shim customer balance transaction created",
            extra={"customer_id": customer_id, "balance_transaction_id": created["id"]},
        )
        return created

    def record_applied(
        self, customer_id: str, invoice_id: str, amount: int, currency: str
    ) -> dict[str, Any]:
        """Record the part of the balance an invoice used up: positive for a credit used."""
        with self.lock:
            transaction = self._add(customer_id, amount, currency, "applied_to_invoice", invoice_id)
            return copy.deepcopy(transaction)

    def retrieve(self, customer_id: str, transaction_id: str, params: Params) -> dict[str, Any]:
        params.reject_unknown({"expand"})
        read_expand(params, ())
        with self.lock:
            return copy.deepcopy(self._find(customer_id, transaction_id))

    def update(self, customer_id: str, transaction_id: str, params: Params) -> dict[str, Any]:
        """Change a transaction's `description` or `metadata`, the only fields Stripe lets change."""
        params.reject_unknown({"description", "expand", "metadata"})
        read_expand(params, ())
        description = params.text("description", max_length=MAX_DESCRIPTION_LENGTH)
        with self.lock:
            transaction = self._find(customer_id, transaction_id)
            if description is not None:
                transaction["description"] = description
            if params.values.get("metadata") == "":
                transaction["metadata"] = {}
            elif "metadata" in params.values:
                merged = {**transaction["metadata"], **params.metadata()}
                for key, value in dict(params.values["metadata"]).items():
                    if value == "":
                        merged.pop(str(key), None)
                transaction["metadata"] = merged
            return copy.deepcopy(transaction)

    def list(self, customer_id: str, params: Params) -> dict[str, Any]:
        params.reject_unknown(
            {"created", "ending_before", "expand", "invoice", "limit", "starting_after"}
        )
        read_expand(params, ())
        invoice = params.text("invoice")
        created = read_created(params)
        self._localstripe.retrieve("customer", customer_id)
        with self.lock:
            transactions = [
                copy.deepcopy(transaction)
                for transaction in reversed(self._transactions.get(customer_id) or [])
                if (invoice is None or transaction["invoice"] == invoice)
                and created(int(transaction["created"]))
            ]
        url = f"/v1/customers/{quote(customer_id, safe='')}/balance_transactions"
        return paginate(transactions, params, url, "customer_balance_transaction")

    def _find(self, customer_id: str, transaction_id: str) -> dict[str, Any]:
        for transaction in self._transactions.get(customer_id) or []:
            if transaction["id"] == transaction_id:
                return transaction
        raise resource_missing("customer_balance_transaction", transaction_id)

    def _add(
        self, customer_id: str, amount: int, currency: str, kind: str, invoice_id: str | None
    ) -> dict[str, Any]:
        transaction = {
            "id": new_id("cbtxn_"),
            "object": "customer_balance_transaction",
            "amount": amount,
            "checkout_session": None,
            "created": int(time.time()),
            "credit_note": None,
            "currency": currency,
            "customer": customer_id,
            "customer_account": None,
            "description": None,
            "ending_balance": self.balance(customer_id) + amount,
            "invoice": invoice_id,
            "livemode": False,
            "metadata": {},
            "type": kind,
        }
        self._transactions.setdefault(customer_id, []).append(transaction)
        self._currencies.setdefault(customer_id, currency)
        return transaction
