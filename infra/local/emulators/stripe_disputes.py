"""Disputes for the local Stripe shim: opened and closed by control calls, read through the API.

localstripe 1.15.10 has no disputes. A dispute here follows Stripe's card chargeback: it opens
as `needs_response` and withdraws the charge amount plus the dispute fee, and it closes as
`won` (amount and fee reinstated) or `lost`.
"""

from __future__ import annotations

import builtins
import copy
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

from infra.local.emulators.stripe_api import (
    Emit,
    Params,
    StripeApiError,
    invalid_parameter,
    new_id,
    paginate,
    read_created,
    read_expand,
    resource_missing,
)

logger = logging.getLogger(__name__)

# The `reason` values of stripe-python 16.1.0 (stripe/_dispute.py).
DISPUTE_REASONS: Final = (
    "bank_cannot_process", "check_returned", "credit_not_processed", "customer_initiated",
    "debit_not_authorized", "duplicate", "fraudulent", "general", "incorrect_account_details",
    "insufficient_funds", "noncompliant", "product_not_received", "product_unacceptable",
    "subscription_canceled", "unrecognized",
)  # fmt: skip
# Stripe's dispute fee in the United States is $15.00 (https://stripe.com/pricing). The shim
# charges 1500 minor units in the charge's currency.
# NOTE: 1500 minor units is ¥15.00 in CNY but ¥1500 in JPY, and Stripe's fee differs by country.
DISPUTE_FEE: Final = 1500
# Stripe sets the evidence deadline from the card network's rules, and the shim uses 7 days.
EVIDENCE_DUE_SECONDS: Final = 7 * 24 * 3600
EVIDENCE_FIELDS: Final = (
    "access_activity_log", "billing_address", "cancellation_policy",
    "cancellation_policy_disclosure", "cancellation_rebuttal", "customer_communication",
    "customer_email_address", "customer_name", "customer_purchase_ip", "customer_signature",
    "duplicate_charge_documentation", "duplicate_charge_explanation", "duplicate_charge_id",
    "product_description", "receipt", "refund_policy", "refund_policy_disclosure",
    "refund_refusal_explanation", "service_date", "service_documentation", "shipping_address",
    "shipping_carrier", "shipping_date", "shipping_documentation", "shipping_tracking_number",
    "uncategorized_file", "uncategorized_text",
)  # fmt: skip


def balance_transaction(
    dispute_id: str,
    charge_id: str,
    amount: int,
    fee: int,
    currency: str,
    reporting_category: str,
    created: int,
) -> dict[str, Any]:
    """Return a dispute's balance transaction: a withdrawal (negative amount) or a reinstatement."""
    withdrawal = reporting_category == "dispute"
    return {
        "id": new_id("txn_"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": created,
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": f"Chargeback {'withdrawal' if withdrawal else 'reversal'} for {charge_id}",
        "exchange_rate": None,
        "fee": fee,
        "fee_details": [
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": "Dispute fee" if withdrawal else "Dispute fee refund",
                "type": "stripe_fee",
            }
        ],
        "net": amount - fee,
        "reporting_category": reporting_category,
        "source": dispute_id,
        "status": "available",
        "type": "adjustment",
    }


def dispute_object(dispute_id: str, charge: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """Return a new `needs_response` dispute of a whole charge, with its withdrawal."""
    created = int(time.time())
    amount = int(charge["amount"])
    currency = str(charge["currency"])
    details = charge.get("payment_method_details") or {}
    card = details.get("card") if isinstance(details, Mapping) else None
    withdrawal = balance_transaction(
        dispute_id, str(charge["id"]), -amount, DISPUTE_FEE, currency, "dispute", created
    )
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [withdrawal],
        "charge": charge["id"],
        "created": created,
        "currency": currency,
        "enhanced_eligibility_types": [],
        "evidence": {**dict.fromkeys(EVIDENCE_FIELDS), "enhanced_evidence": {}},
        "evidence_details": {
            "due_by": created + EVIDENCE_DUE_SECONDS,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "intended_submission_method": None,
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "network_reason_code": None,
        "payment_intent": charge.get("payment_intent"),
        "payment_method_details": {
            "type": "card",
            "card": {
                "brand": card.get("brand") if isinstance(card, Mapping) else None,
                "case_type": "chargeback",
                "network_reason_code": None,
            },
        },
        "reason": reason,
        "status": "needs_response",
    }


class Disputes:
    """The shim's disputes, newest last, and the events they send."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._disputes: dict[str, dict[str, Any]] = {}

    def is_disputed(self, charge_id: str) -> bool:
        with self._lock:
            return any(dispute["charge"] == charge_id for dispute in self._disputes.values())

    def create(self, charge: Mapping[str, Any], reason: str) -> dict[str, Any]:
        """Open a dispute of a succeeded charge, as a cardholder's chargeback would.

        Sends `charge.dispute.created` and `charge.dispute.funds_withdrawn`. Raises
        StripeApiError naming `reason` or `charge` when either is invalid.
        """
        if reason not in DISPUTE_REASONS:
            raise invalid_parameter("reason", "one of " + ", ".join(DISPUTE_REASONS))
        charge_id = str(charge["id"])
        if charge.get("status") != "succeeded":
            raise StripeApiError(
                400,
                f"Charge {charge_id} is {charge.get('status')}: only a succeeded charge can be "
                "disputed.",
                param="charge",
            )

        dispute = dispute_object(new_id("dp_"), charge, reason)
        with self._lock:
            if any(other["charge"] == charge_id for other in self._disputes.values()):
                raise StripeApiError(
                    400, f"Charge {charge_id} already has a dispute.", param="charge"
                )
            self._disputes[dispute["id"]] = dispute
            created = copy.deepcopy(dispute)

        self._emit("charge.dispute.created", created)
        self._emit("charge.dispute.funds_withdrawn", created)
        logger.info(
            "stripe shim dispute created",
            extra={"dispute_id": dispute["id"], "charge_id": charge_id},
        )
        return created

    def close(self, dispute_id: str, won: bool) -> dict[str, Any]:
        """Close an open dispute as won (reinstating amount and fee) or lost.

        Sends `charge.dispute.closed`, and `charge.dispute.funds_reinstated` when won. Raises
        StripeApiError for an unknown or already closed dispute.
        """
        with self._lock:
            dispute = self._disputes.get(dispute_id)
            if dispute is None:
                raise resource_missing("dispute", dispute_id)
            if dispute["status"] in ("won", "lost"):
                raise StripeApiError(
                    400,
                    f"Dispute {dispute_id} is already closed as {dispute['status']}.",
                    param="dispute",
                )
            dispute["status"] = "won" if won else "lost"
            if won:
                dispute["balance_transactions"].append(
                    balance_transaction(
                        dispute_id,
                        str(dispute["charge"]),
                        int(dispute["amount"]),
                        -DISPUTE_FEE,
                        str(dispute["currency"]),
                        "dispute_reversal",
                        int(time.time()),
                    )
                )
            closed = copy.deepcopy(dispute)

        self._emit("charge.dispute.closed", closed)
        if won:
            self._emit("charge.dispute.funds_reinstated", closed)
        logger.info(
            "stripe shim dispute closed",
            extra={"dispute_id": dispute_id, "status": closed["status"]},
        )
        return closed

    def retrieve(self, dispute_id: str, params: Params) -> dict[str, Any]:
        params.reject_unknown({"expand"})
        read_expand(params, ())
        with self._lock:
            dispute = self._disputes.get(dispute_id)
            if dispute is None:
                raise resource_missing("dispute", dispute_id)
            return copy.deepcopy(dispute)

    def list(self, params: Params) -> dict[str, Any]:
        params.reject_unknown(
            {
                "charge",
                "created",
                "ending_before",
                "expand",
                "limit",
                "payment_intent",
                "starting_after",
            }
        )
        read_expand(params, ())
        charge = params.text("charge")
        payment_intent = params.text("payment_intent")
        created = read_created(params)
        with self._lock:
            disputes = [copy.deepcopy(dispute) for dispute in reversed(self._disputes.values())]
        selected = [
            dispute
            for dispute in disputes
            if (charge is None or dispute["charge"] == charge)
            and (payment_intent is None or dispute["payment_intent"] == payment_intent)
            and created(int(dispute["created"]))
        ]
        return paginate(selected, params, "/v1/disputes", "dispute")

    def balance_transactions(self) -> builtins.list[dict[str, Any]]:
        """Return copies of every dispute's balance transactions, oldest first."""
        with self._lock:
            return [
                copy.deepcopy(transaction)
                for dispute in self._disputes.values()
                for transaction in dispute["balance_transactions"]
            ]

    def balance_transaction(self, transaction_id: str) -> dict[str, Any] | None:
        """Return one of the disputes' balance transactions, or None if it is not theirs."""
        with self._lock:
            for dispute in self._disputes.values():
                for transaction in dispute["balance_transactions"]:
                    if transaction["id"] == transaction_id:
                        found: dict[str, Any] = copy.deepcopy(transaction)
                        return found
        return None
