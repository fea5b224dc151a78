"""Plans as configuration: which Stripe prices (by lookup key) each plan uses, per currency."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from idsentry.money import exponent


class Plan(BaseModel):
    """One purchasable plan: a Checkout mode, its price per currency and payment methods."""

    # The signup function imports these models for referrals, and most of its requests use
    # none of them, so each builds its validator on first use (defer_build).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    mode: Literal["subscription", "payment"]
    # Currency (lower-case ISO code) → the Stripe price's lookup key.
    prices: dict[str, str] = Field(min_length=1)
    payment_method_types: tuple[str, ...] = ("card",)

    @model_validator(mode="after")
    def _check(self) -> Plan:
        for currency in self.prices:
            exponent(currency)  # raises UnknownCurrencyError for a currency Stripe does not use
        if self.mode == "subscription" and set(self.payment_method_types) - {"card"}:
            # Stripe Checkout offers Alipay and WeChat Pay in payment mode only.
            raise ValueError("subscription plans accept only the card payment method")
        return self


class ReferralConfig(BaseModel):
    """The referral programme: the referee's coupon, the referrer's credit and its monthly cap."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    # A Stripe coupon id (chosen by us, like lookup keys) for the referee's first period.
    coupon: str = Field(min_length=1, max_length=200)
    # Currency → credit in Stripe's minor units, given to the referrer's customer balance.
    credit: dict[str, int] = Field(min_length=1)
    monthly_cap: int = Field(ge=0, le=1000)

    @model_validator(mode="after")
    def _check(self) -> ReferralConfig:
        for currency, amount in self.credit.items():
            exponent(currency)
            if amount <= 0:
                raise ValueError(f"referral credit in {currency} must be positive")
        return self


class PlansConfig(BaseModel):
    """Every plan by name, the currency used when a request names none, and referrals."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    plans: dict[str, Plan]
    default_currency: str = "cny"
    referral: ReferralConfig | None = None

    @model_validator(mode="after")
    def _check_default(self) -> PlansConfig:
        for name, plan in self.plans.items():
            if self.default_currency not in plan.prices:
                raise ValueError(f"plan {name} has no price in the default currency")
        return self
