"""Coupons, promotion codes and discounts for the local Stripe shim.

localstripe 1.15.10 stores coupons but never applies them. The shim creates coupons through
localstripe, adding Stripe's generated id, `name`, `max_redemptions` and `redeem_by`. It keeps
promotion codes itself, validates the one discount a Checkout Session may carry, and counts
redemptions. It also records which discount applies to which subscription and for how long:
`once` to the first invoice only, `repeating` for `duration_in_months`, `forever` to every
invoice.
"""

from __future__ import annotations

import calendar
import copy
import logging
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import quote

from infra.local.emulators.stripe_api import (
    MAX_LIST_LIMIT,
    LocalStripeError,
    Params,
    StripeApiError,
    invalid_parameter,
    missing_parameter,
    new_id,
    paginate,
    read_created,
    read_currency,
    read_expand,
    resource_missing,
    unsupported_parameter,
)
from infra.local.emulators.stripe_client import LocalStripeClient

logger = logging.getLogger(__name__)

COUPON_DURATIONS: Final = ("forever", "once", "repeating")
# Stripe generates 8-character coupon ids and promotion codes of capital letters and digits.
GENERATED_CODE_ALPHABET: Final = string.ascii_uppercase + string.digits
GENERATED_CODE_LENGTH: Final = 8
CODE_PATTERN = re.compile(r"[A-Za-z0-9-]{1,500}")
COUPON_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,200}")
MAX_COUPON_NAME_LENGTH: Final = 40


def generated_code() -> str:
    return "".join(secrets.choice(GENERATED_CODE_ALPHABET) for _ in range(GENERATED_CODE_LENGTH))


def add_months(epoch_seconds: int, months: int) -> int:
    """Return the same day and time `months` calendar months later in UTC, clipped to month end."""
    start = datetime.fromtimestamp(epoch_seconds, UTC)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def discount_amount(coupon: Mapping[str, Any], subtotal: int) -> int:
    """Return how much a coupon takes off `subtotal` minor units, never more than the subtotal.

    Percentages are rounded half up to a whole minor unit.
    """
    if coupon.get("percent_off") is not None:
        exact = Decimal(str(coupon["percent_off"])) * subtotal / 100
        return min(subtotal, int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)))
    return min(subtotal, int(coupon.get("amount_off") or 0))


def read_percent(params: Params, name: str) -> float | None:
    value = params.values.get(name)
    if value is None or value == "":
        return None
    try:
        percent = Decimal(str(value))
    except InvalidOperation as exc:
        raise invalid_parameter(name, "a number greater than 0 and at most 100") from exc
    if isinstance(value, bool) or not 0 < percent <= 100:
        raise invalid_parameter(name, "a number greater than 0 and at most 100")
    return float(percent)


@dataclass(frozen=True)
class Discount:
    """A coupon or promotion code chosen for a Checkout Session, with the amount it takes off."""

    coupon: dict[str, Any]
    promotion_code: str | None
    amount: int
    param: str


class Promotions:
    """Coupon extras, promotion codes and the discounts applied to sessions and subscriptions.

    `clock` returns the current Unix time that `expires_at` and `redeem_by` are checked against.
    """

    def __init__(
        self, localstripe: LocalStripeClient, clock: Callable[[], float] = time.time
    ) -> None:
        self._localstripe = localstripe
        self._clock = clock
        self._lock = threading.Lock()
        self._coupon_extras: dict[str, dict[str, Any]] = {}
        self._coupon_redemptions: dict[str, int] = {}
        self._codes: dict[str, dict[str, Any]] = {}
        self._discounts: dict[str, dict[str, Any]] = {}

    # -- coupons --------------------------------------------------------------------------------

    def create_coupon(self, params: Params) -> dict[str, Any]:
        """Create a coupon in localstripe from `POST /v1/coupons`, validated as Stripe does."""
        params.reject_unknown(
            {
                "amount_off", "applies_to", "currency", "currency_options", "duration",
                "duration_in_months", "expand", "id", "max_redemptions", "metadata", "name",
                "percent_off", "redeem_by",
            }
        )  # fmt: skip
        for name in ("applies_to", "currency_options"):
            if name in params.values:
                raise unsupported_parameter(name)
        read_expand(params, ())
        duration = params.choice("duration", COUPON_DURATIONS) or "once"
        percent_off = read_percent(params, "percent_off")
        amount_off = params.integer("amount_off", minimum=1)
        if (percent_off is None) == (amount_off is None):
            raise StripeApiError(
                400, "Provide exactly one of amount_off and percent_off.", param="percent_off"
            )
        currency = read_currency(params) if amount_off is not None else None
        if amount_off is None and params.text("currency") is not None:
            raise StripeApiError(400, "currency can only be set with amount_off.", param="currency")
        months = params.integer("duration_in_months", minimum=1)
        if (duration == "repeating") != (months is not None):
            raise StripeApiError(
                400,
                "duration_in_months is required with duration repeating, and only then allowed.",
                param="duration_in_months",
            )
        redeem_by = params.integer("redeem_by", minimum=0)
        if redeem_by is not None and redeem_by <= self._clock():
            raise invalid_parameter("redeem_by", "a time in the future")
        extras = {
            "max_redemptions": params.integer("max_redemptions", minimum=1),
            "name": params.text("name", max_length=MAX_COUPON_NAME_LENGTH),
            "redeem_by": redeem_by,
        }
        coupon_id = params.text("id", max_length=200) or generated_code()
        if COUPON_ID_PATTERN.fullmatch(coupon_id) is None:
            raise invalid_parameter("id", "letters, digits, '_' and '-' only")
        if self._find_coupon(coupon_id) is not None:
            raise StripeApiError(
                400, "Coupon already exists.", param="id", code="resource_already_exists"
            )

        coupon = self._localstripe.call(
            "POST",
            "/v1/coupons",
            {
                "id": coupon_id,
                "duration": duration,
                "percent_off": percent_off,
                "amount_off": amount_off,
                "currency": currency,
                "duration_in_months": months,
                "metadata": params.metadata() or None,
            },
        )
        with self._lock:
            self._coupon_extras[coupon_id] = extras
        self.reshape_coupon(coupon)
        logger.info("stripe shim coupon created", extra={"coupon_id": coupon_id})
        return coupon

    def reshape_coupon(self, coupon: dict[str, Any]) -> None:
        """Add the shim's redemption count, `name`, `max_redemptions`, `redeem_by` and `valid`."""
        coupon_id = str(coupon.get("id"))
        with self._lock:
            extras = dict(self._coupon_extras.get(coupon_id) or {})
            redeemed = self._coupon_redemptions.get(coupon_id, 0)
        coupon.update({"max_redemptions": None, "name": None, "redeem_by": None, **extras})
        coupon["times_redeemed"] = redeemed
        coupon["valid"] = self._coupon_problem(coupon) is None
        coupon.setdefault("applies_to", None)

    def _find_coupon(self, coupon_id: str) -> dict[str, Any] | None:
        try:
            coupon = self._localstripe.call("GET", f"/v1/coupons/{quote(coupon_id, safe='')}")
        except LocalStripeError as exc:
            if exc.localstripe_status == 404:
                return None
            raise
        self.reshape_coupon(coupon)
        return coupon

    def _coupon_problem(self, coupon: Mapping[str, Any]) -> str | None:
        max_redemptions = coupon.get("max_redemptions")
        if (
            max_redemptions is not None
            and int(coupon.get("times_redeemed") or 0) >= max_redemptions
        ):
            return f"Coupon {coupon.get('id')} has reached its maximum number of redemptions."
        redeem_by = coupon.get("redeem_by")
        if redeem_by is not None and self._clock() >= redeem_by:
            return f"Coupon {coupon.get('id')} can no longer be redeemed."
        return None

    # -- promotion codes ------------------------------------------------------------------------

    def create_code(self, params: Params) -> dict[str, Any]:
        """Create a promotion code for a coupon from `POST /v1/promotion_codes`."""
        params.reject_unknown(
            {
                "active", "code", "customer", "expand", "expires_at", "max_redemptions",
                "metadata", "promotion", "restrictions",
            }
        )  # fmt: skip
        expand = read_expand(params, {"promotion.coupon"})
        promotion = params.child("promotion")
        if promotion is None:
            raise missing_parameter("promotion")
        promotion.reject_unknown({"coupon", "type"})
        promotion.choice("type", ("coupon",), required=True)
        coupon_id = promotion.required_text("coupon")
        code = params.text("code", max_length=500) or generated_code()
        if CODE_PATTERN.fullmatch(code) is None:
            raise invalid_parameter("code", "letters, digits and '-' only")
        customer = params.text("customer")
        expires_at = params.integer("expires_at", minimum=0)
        if expires_at is not None and expires_at <= self._clock():
            raise invalid_parameter("expires_at", "a time in the future")
        max_redemptions = params.integer("max_redemptions", minimum=1)
        restrictions = read_restrictions(params)
        metadata = params.metadata()
        active = params.boolean("active")

        coupon = self._find_coupon(coupon_id)
        if coupon is None:
            raise resource_missing("coupon", coupon_id, "promotion[coupon]")
        if customer is not None:
            self._localstripe.require("customer", customer, "customer")

        code_id = new_id("promo_")
        promotion_code: dict[str, Any] = {
            "id": code_id,
            "object": "promotion_code",
            "active": True if active is None else active,
            "code": code,
            "created": int(time.time()),
            "customer": customer,
            "customer_account": None,
            "expires_at": expires_at,
            "livemode": False,
            "max_redemptions": max_redemptions,
            "metadata": metadata,
            "promotion": {"coupon": coupon_id, "type": "coupon"},
            "restrictions": restrictions,
            "times_redeemed": 0,
        }
        with self._lock:
            if promotion_code["active"]:
                self._check_code_unique(code, customer)
            self._codes[code_id] = promotion_code
            created = copy.deepcopy(promotion_code)
        logger.info(
            "stripe shim promotion code created",
            extra={"promotion_code_id": created["id"], "coupon_id": coupon_id},
        )
        return self._expand_code(created, expand)

    def _check_code_unique(self, code: str, customer: str | None) -> None:
        """Reject a code that an active code of the same customer (or of everyone) already uses."""
        for other in self._codes.values():
            if (
                other["active"]
                and other["customer"] == customer
                and other["code"].lower() == code.lower()
            ):
                raise StripeApiError(
                    400,
                    f"An active promotion code with the code {code} already exists.",
                    param="code",
                )

    def retrieve_code(self, code_id: str, params: Params) -> dict[str, Any]:
        params.reject_unknown({"expand"})
        expand = read_expand(params, {"promotion.coupon"})
        with self._lock:
            stored = self._codes.get(code_id)
            if stored is None:
                raise resource_missing("promotion_code", code_id)
            promotion_code = copy.deepcopy(stored)
        return self._expand_code(promotion_code, expand)

    def update_code(self, code_id: str, params: Params) -> dict[str, Any]:
        """Change `active` or `metadata` from `POST /v1/promotion_codes/{id}`."""
        params.reject_unknown({"active", "expand", "metadata", "restrictions"})
        if "restrictions" in params.values:
            raise unsupported_parameter("restrictions")
        expand = read_expand(params, {"promotion.coupon"})
        active = params.boolean("active")
        metadata = params.metadata()

        with self._lock:
            stored = self._codes.get(code_id)
            if stored is None:
                raise resource_missing("promotion_code", code_id)
            coupon_id = str(stored["promotion"]["coupon"])
        coupon = self._find_coupon(coupon_id) if active else None

        with self._lock:
            if active and not stored["active"]:
                # Stripe reactivates a code only while its coupon is valid and it is redeemable.
                problem = self._code_problem(stored, coupon)
                if problem is not None:
                    raise StripeApiError(400, problem, param="active")
                self._check_code_unique(str(stored["code"]), stored["customer"])
            if active is not None:
                stored["active"] = active
            if params.values.get("metadata") == "":
                stored["metadata"] = {}
            elif "metadata" in params.values:
                merged = {**stored["metadata"], **metadata}
                for key, value in dict(params.values["metadata"]).items():
                    if value == "":
                        merged.pop(str(key), None)
                stored["metadata"] = merged
            updated = copy.deepcopy(stored)
        return self._expand_code(updated, expand)

    def list_codes(self, params: Params) -> dict[str, Any]:
        params.reject_unknown(
            {
                "active", "code", "coupon", "created", "customer", "ending_before", "expand",
                "limit", "starting_after",
            }
        )  # fmt: skip
        expand = read_expand(params, {"data.promotion.coupon"})
        active = params.boolean("active")
        code = params.text("code")
        coupon = params.text("coupon")
        customer = params.text("customer")
        created = read_created(params)
        with self._lock:
            codes = [copy.deepcopy(stored) for stored in reversed(self._codes.values())]
        selected = [
            promotion_code
            for promotion_code in codes
            if (active is None or promotion_code["active"] == active)
            and (code is None or promotion_code["code"].lower() == code.lower())
            and (coupon is None or promotion_code["promotion"]["coupon"] == coupon)
            and (customer is None or promotion_code["customer"] == customer)
            and created(int(promotion_code["created"]))
        ]
        page = paginate(selected, params, "/v1/promotion_codes", "promotion_code")
        if expand:
            page["data"] = [self._expand_code(item, ["promotion.coupon"]) for item in page["data"]]
        return page

    def _expand_code(self, promotion_code: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        if expand:
            coupon_id = str(promotion_code["promotion"]["coupon"])
            promotion_code["promotion"]["coupon"] = self._find_coupon(coupon_id) or coupon_id
        return promotion_code

    def _code_problem(
        self, promotion_code: Mapping[str, Any], coupon: Mapping[str, Any] | None
    ) -> str | None:
        code_id = promotion_code["id"]
        if coupon is None:
            return f"The coupon of promotion code {code_id} no longer exists."
        max_redemptions = promotion_code["max_redemptions"]
        if max_redemptions is not None and promotion_code["times_redeemed"] >= max_redemptions:
            return f"Promotion code {code_id} has reached its maximum number of redemptions."
        expires_at = promotion_code["expires_at"]
        if expires_at is not None and self._clock() >= expires_at:
            return f"Promotion code {code_id} has expired."
        return self._coupon_problem(coupon)

    # -- discounts ------------------------------------------------------------------------------

    def read_discount(
        self, params: Params, currency: str, subtotal: int, customer: str | None
    ) -> Discount | None:
        """Read a Checkout Session's `discounts` (one coupon or promotion code) and validate it."""
        entries = params.children("discounts")
        if not entries:
            return None
        if params.boolean("allow_promotion_codes") is not None:
            raise StripeApiError(
                400,
                "You may only specify one of these parameters: allow_promotion_codes, discounts.",
                param="discounts",
            )
        if len(entries) != 1:
            raise StripeApiError(
                400, "A Checkout Session takes at most one discount.", param="discounts"
            )
        entry = entries[0]
        entry.reject_unknown({"coupon", "promotion_code"})
        coupon_id = entry.text("coupon")
        code_id = entry.text("promotion_code")
        if (coupon_id is None) == (code_id is None):
            raise StripeApiError(
                400,
                "Provide exactly one of coupon and promotion_code.",
                param=entry.label("coupon"),
            )

        if code_id is not None:
            param = entry.label("promotion_code")
            with self._lock:
                stored = self._codes.get(code_id)
                if stored is None:
                    raise resource_missing("promotion_code", code_id, param)
                coupon_id = str(stored["promotion"]["coupon"])
        else:
            param = entry.label("coupon")
        assert coupon_id is not None
        coupon = self._find_coupon(coupon_id)
        if coupon is None:
            raise resource_missing("coupon", coupon_id, param)
        discount = Discount(coupon, code_id, discount_amount(coupon, subtotal), param)
        self.check(discount, currency, subtotal, customer)
        return discount

    def check(self, discount: Discount, currency: str, subtotal: int, customer: str | None) -> None:
        """Raise StripeApiError on the discount's parameter when it cannot be redeemed now."""
        coupon = self._find_coupon(str(discount.coupon["id"]))
        if coupon is None:
            raise resource_missing("coupon", str(discount.coupon["id"]), discount.param)
        problem = self._coupon_problem(coupon)
        if coupon.get("amount_off") is not None and coupon.get("currency") != currency:
            problem = (
                f"The currency of coupon {coupon['id']} ({coupon.get('currency')}) does not "
                f"match the session's currency ({currency})."
            )
        if problem is None and discount.promotion_code is not None:
            with self._lock:
                stored = copy.deepcopy(self._codes[discount.promotion_code])
            problem = self._code_problem(stored, coupon) or self._restriction_problem(
                stored, currency, subtotal, customer
            )
        if problem is not None:
            raise StripeApiError(400, problem, param=discount.param)

    def _restriction_problem(
        self, promotion_code: Mapping[str, Any], currency: str, subtotal: int, customer: str | None
    ) -> str | None:
        code_id = promotion_code["id"]
        if not promotion_code["active"]:
            return f"Promotion code {code_id} is inactive."
        if promotion_code["customer"] is not None and promotion_code["customer"] != customer:
            return f"Promotion code {code_id} is restricted to another customer."
        restrictions = promotion_code["restrictions"]
        minimum = restrictions["minimum_amount"]
        if minimum is not None and (
            restrictions["minimum_amount_currency"] != currency or subtotal < minimum
        ):
            return (
                f"Promotion code {code_id} requires a minimum amount of {minimum} "
                f"{restrictions['minimum_amount_currency']}."
            )
        if restrictions["first_time_transaction"] and customer is not None:
            charges = self._localstripe.call(
                "GET", "/v1/charges", {"customer": customer, "limit": MAX_LIST_LIMIT}
            )
            if any(charge.get("status") == "succeeded" for charge in charges.get("data") or []):
                return f"Promotion code {code_id} is for first-time customers only."
        return None

    def reserve(self, discount: Discount) -> None:
        """Count one redemption of the coupon (and code), or raise when none are left.

        Checking and counting under one lock keeps two payments from both taking the last
        redemption.
        """
        coupon_id = str(discount.coupon["id"])
        with self._lock:
            extras = self._coupon_extras.get(coupon_id) or {}
            limit = extras.get("max_redemptions")
            if limit is not None and self._coupon_redemptions.get(coupon_id, 0) >= limit:
                raise StripeApiError(
                    400,
                    f"Coupon {coupon_id} has reached its maximum number of redemptions.",
                    param=discount.param,
                )
            if discount.promotion_code is not None:
                stored = self._codes[discount.promotion_code]
                limit = stored["max_redemptions"]
                if limit is not None and stored["times_redeemed"] >= limit:
                    raise StripeApiError(
                        400,
                        f"Promotion code {stored['id']} has reached its maximum number of "
                        "redemptions.",
                        param=discount.param,
                    )
                stored["times_redeemed"] += 1
            self._coupon_redemptions[coupon_id] = self._coupon_redemptions.get(coupon_id, 0) + 1

    def release(self, discount: Discount) -> None:
        """Undo `reserve()` after the payment failed."""
        coupon_id = str(discount.coupon["id"])
        with self._lock:
            if discount.promotion_code is not None:
                self._codes[discount.promotion_code]["times_redeemed"] -= 1
            self._coupon_redemptions[coupon_id] -= 1

    def apply(
        self,
        discount: Discount,
        customer: str | None,
        *,
        subscription: str | None = None,
        checkout_session: str | None = None,
    ) -> dict[str, Any]:
        """Record the discount object of a completed session, on its subscription if any."""
        start = int(time.time())
        coupon = discount.coupon
        end = None
        if coupon.get("duration") == "repeating":
            end = add_months(start, int(coupon["duration_in_months"]))
        discount_id = new_id("di_")
        record: dict[str, Any] = {
            "id": discount_id,
            "object": "discount",
            "checkout_session": checkout_session,
            "customer": customer,
            "customer_account": None,
            "end": end,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": discount.promotion_code,
            "source": {"coupon": coupon["id"], "type": "coupon"},
            "start": start,
            "subscription": subscription,
            "subscription_item": None,
            # The coupon as it was redeemed, so that later invoices can still use it.
            "_coupon": copy.deepcopy(coupon),
            "_ended": subscription is None,
        }
        with self._lock:
            self._discounts[discount_id] = record
        return public_discount(record)

    def subscription_discount_ids(self, subscription_id: str) -> list[str]:
        """Return the ids of the discounts that still apply to a subscription."""
        with self._lock:
            return [
                discount_id
                for discount_id, record in self._discounts.items()
                if record["subscription"] == subscription_id and not record["_ended"]
            ]

    def renewal_discount(
        self, subscription_id: str, period_start: int, subtotal: int
    ) -> tuple[str, int] | None:
        """Return the discount id and amount for a subscription's invoice starting at `period_start`.

        A `once` discount was used by the first invoice and a `repeating` one ends after its
        months, so both end here when they no longer apply.
        """
        with self._lock:
            for discount_id, record in self._discounts.items():
                if record["subscription"] != subscription_id or record["_ended"]:
                    continue
                coupon = record["_coupon"]
                duration = coupon.get("duration")
                ended = duration == "once" or (
                    duration == "repeating"
                    and record["end"] is not None
                    and period_start >= record["end"]
                )
                if ended:
                    record["_ended"] = True
                    continue
                return discount_id, discount_amount(coupon, subtotal)
        return None


def public_discount(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return a discount record without the shim's private keys."""
    return {key: copy.deepcopy(value) for key, value in record.items() if not key.startswith("_")}


def read_restrictions(params: Params) -> dict[str, Any]:
    restrictions = params.child("restrictions")
    result: dict[str, Any] = {
        "currency_options": {},
        "first_time_transaction": False,
        "minimum_amount": None,
        "minimum_amount_currency": None,
    }
    if restrictions is None:
        return result
    restrictions.reject_unknown(
        {"currency_options", "first_time_transaction", "minimum_amount", "minimum_amount_currency"}
    )
    if "currency_options" in restrictions.values:
        raise unsupported_parameter(restrictions.label("currency_options"))
    result["first_time_transaction"] = bool(restrictions.boolean("first_time_transaction"))
    minimum = restrictions.integer("minimum_amount", minimum=1)
    if minimum is not None:
        if restrictions.text("minimum_amount_currency") is None:
            raise missing_parameter(restrictions.label("minimum_amount_currency"))
        result["minimum_amount"] = minimum
        result["minimum_amount_currency"] = read_currency(restrictions, "minimum_amount_currency")
    elif restrictions.text("minimum_amount_currency") is not None:
        raise missing_parameter(restrictions.label("minimum_amount"))
    return result
