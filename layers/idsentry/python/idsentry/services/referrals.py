"""Referrals (裂变): codes, the referee's first-period discount and the referrer's capped credit.

A subscriber gets a code at verification. A person who signs up with it is checked against the
code's owner (same ID number or mobile is a self-referral, rejected on the `referral_code`
field) and pays their first period with the configured Stripe coupon. When that first invoice
is paid, the referrer gets a customer balance credit, unless the referee paid with one of the
referrer's cards or the referrer already reached this month's cap.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any, Protocol

from idsentry.adapters.table import (
    ConditionFailedError,
    MainTable,
    Write,
    counter_write,
    put_write,
    update_write,
)
from idsentry.crypto import Fingerprint
from idsentry.errors import FieldProblem, RequestValidationError
from idsentry.models.plans import ReferralConfig

logger = logging.getLogger(__name__)

# Crockford-style alphabet without 0/O, 1/I/L and U, so a code read aloud is typed right.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8
# Invoices that open a subscription; the referral credit waits for the first one to be paid.
FIRST_INVOICE_REASON = "subscription_create"


class BalanceCredits(Protocol):
    """The Stripe write that credits a customer's balance."""

    def create_balance_transaction(
        self, customer_id: str, params: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]: ...


def new_code() -> str:
    """Return a random referral code of 8 characters (about 39 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str:
    """Return the code as stored: upper case, without spaces or hyphens."""
    return raw.replace(" ", "").replace("-", "").upper()


def code_write(code: str, subscriber_id: str, now: int) -> Write:
    """Build the write that reserves `code` for `subscriber_id`; it fails if the code is taken."""
    return put_write(
        "referral_code",
        {
            "pk": f"REFCODE#{code}",
            "sk": "REFCODE",
            "subscriber_id": subscriber_id,
            "created_at": now,
        },
        condition="attribute_not_exists(pk)",
    )


def _matches(stored: dict[str, Any] | None, fingerprints: list[Fingerprint]) -> bool:
    if stored is None:
        return False
    known = stored.get("fingerprints") or {}
    return any(known.get(fp.version) == fp.value for fp in fingerprints)


def find_referrer(
    table: MainTable,
    raw_code: str,
    id_fingerprints: list[Fingerprint],
    mobile_fingerprints: list[Fingerprint],
) -> str:
    """Return the subscriber whose code this is; raises RequestValidationError on `referral_code`.

    The code must belong to a monitored subscriber, and that subscriber must not hold the
    referee's ID number or mobile number.
    """
    code = normalize_code(raw_code)
    owner = table.get(f"REFCODE#{code}", "REFCODE")
    if owner is None:
        raise RequestValidationError([FieldProblem("referral_code", "referral_code.unknown")])
    referrer = str(owner["subscriber_id"])

    pk = f"SUB#{referrer}"
    found = table.get_many([(pk, "PROFILE"), (pk, "IDENT#id_number"), (pk, "IDENT#mobile")])
    profile = found.get((pk, "PROFILE"))
    if profile is None or not profile.get("monitored"):
        # Reported as an unknown code, because a separate error would reveal who pays.
        raise RequestValidationError([FieldProblem("referral_code", "referral_code.unknown")])
    if _matches(found.get((pk, "IDENT#id_number")), id_fingerprints) or _matches(
        found.get((pk, "IDENT#mobile")), mobile_fingerprints
    ):
        raise RequestValidationError([FieldProblem("referral_code", "referral_code.self")])
    return referrer


def referrer_index_key(referrer_id: str) -> str:
    """Return the index partition that lists the people `referrer_id` referred."""
    return f"REFERRER#{referrer_id}"


def referral_write(referee_id: str, referrer_id: str, code: str, now: int) -> Write:
    """Build the write that records who referred `referee_id`, pending the first payment."""
    return put_write(
        "referral",
        {
            "pk": f"SUB#{referee_id}",
            "sk": "REFERRED_BY",
            "referrer_id": referrer_id,
            "code": normalize_code(code),
            "status": "pending",
            "created_at": now,
            # Lists a referrer's referees, so deleting the referrer's account can find them.
            "gsi1pk": referrer_index_key(referrer_id),
            "gsi1sk": referee_id,
        },
        condition="attribute_not_exists(pk)",
    )


def record_payment(
    table: MainTable, subscriber_id: str, currency: str, card_fingerprint: str | None
) -> None:
    """Remember the subscriber's billing currency and the card they paid with."""
    expression = "SET billing_currency = :currency"
    values: dict[str, Any] = {":currency": currency}
    if card_fingerprint:
        expression += " ADD card_fingerprints :card"
        values[":card"] = {card_fingerprint}
    table.update(f"SUB#{subscriber_id}", "PROFILE", expression, values=values)


def _month(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y%m")


def _settle(table: MainTable, referee_id: str, status: str, now: int, **fields: Any) -> None:
    names = {"#status": "status"}
    expression = "SET #status = :status, settled_at = :now"
    values: dict[str, Any] = {":status": status, ":now": now}
    for name, value in fields.items():
        expression += f", {name} = :{name}"
        values[f":{name}"] = value
    table.update(f"SUB#{referee_id}", "REFERRED_BY", expression, values=values, names=names)


def reward_referrer(
    table: MainTable,
    stripe: BalanceCredits,
    config: ReferralConfig | None,
    referee_id: str,
    invoice: dict[str, Any],
    card_fingerprint: str | None,
    now: int,
) -> str | None:
    """Credit the referrer once the referee's first invoice is paid; returns the referral's status.

    Safe to repeat: the referral moves pending → credit_due → credited (or rejected, capped),
    the cap counts once, and the Stripe credit carries an idempotency key from the referee.
    """
    referral = table.get(f"SUB#{referee_id}", "REFERRED_BY")
    if referral is None or config is None:
        return None
    if referral["status"] == "pending" and invoice.get("billing_reason") != FIRST_INVOICE_REASON:
        return str(referral["status"])
    referrer_id = str(referral["referrer_id"])
    referrer = table.get(f"SUB#{referrer_id}", "PROFILE") or {}

    if referral["status"] == "pending":
        if card_fingerprint and card_fingerprint in set(referrer.get("card_fingerprints") or ()):
            _settle(table, referee_id, "rejected", now, reason="same_card")
            logger.info(
                "referral rejected",
                extra={
                    "subscriber_id": referee_id,
                    "referrer_id": referrer_id,
                    "reason": "same_card",
                },
            )
            return "rejected"
        month = _month(now)
        try:
            table.transact(
                [
                    # The referral first: when it moved on, that is reported rather than the cap.
                    update_write(
                        "referral",
                        f"SUB#{referee_id}",
                        "REFERRED_BY",
                        "SET #status = :due, credit_month = :month",
                        values={":due": "credit_due", ":pending": "pending", ":month": month},
                        condition="#status = :pending",
                        names={"#status": "status"},
                    ),
                    counter_write(
                        "cap",
                        f"SUB#{referrer_id}",
                        f"REFCAP#{month}",
                        config.monthly_cap,
                        now + 40 * 24 * 3600,
                    ),
                ]
            )
        except ConditionFailedError as exc:
            if exc.name != "cap":
                # A concurrent consumer moved the referral on; read where it is now.
                return reward_referrer(
                    table, stripe, config, referee_id, invoice, card_fingerprint, now
                )
            _settle(table, referee_id, "capped", now)
            logger.info(
                "referral capped", extra={"subscriber_id": referee_id, "referrer_id": referrer_id}
            )
            return "capped"
        referral["status"] = "credit_due"

    if referral["status"] != "credit_due":
        return str(referral["status"])

    customer_id = referrer.get("stripe_customer_id")
    currency = str(referrer.get("billing_currency") or invoice.get("currency") or "")
    amount = config.credit.get(currency)
    if not customer_id or amount is None:
        _settle(table, referee_id, "rejected", now, reason="referrer_not_billed")
        return "rejected"
    credit = stripe.create_balance_transaction(
        str(customer_id),
        {
            "amount": -amount,
            "currency": currency,
            "description": "IDSentry referral credit",
            "metadata": {"referee_id": referee_id, "kind": "referral_credit"},
        },
        idempotency_key=f"referral-credit-{referee_id}",
    )
    _settle(
        table,
        referee_id,
        "credited",
        now,
        credit_amount=amount,
        credit_currency=currency,
        balance_transaction_id=str(credit["id"]),
    )
    logger.info(
        "referral credited",
        extra={
            "subscriber_id": referee_id,
            "referrer_id": referrer_id,
            "balance_transaction_id": credit["id"],
        },
    )
    return "credited"
