"""Entitlements: whether a subscriber is monitored, decided by their Stripe subscription status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DEFAULT_GRACE_SECONDS = 7 * 24 * 3600


class SubscriptionStatus(StrEnum):
    """Stripe's subscription statuses (API version 2026-10-28.endive)."""

    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    UNPAID = "unpaid"
    PAUSED = "paused"
    CANCELED = "canceled"


class UnknownSubscriptionStatusError(ValueError):
    """Stripe sent a status this service does not know; it must not be guessed."""


@dataclass(frozen=True)
class Entitlement:
    """Grant of a subscription status: monitoring on or off, until when, and the reason."""

    monitored: bool
    reason: str
    # Epoch seconds when a past-due grace period ends; None outside a grace period.
    grace_until: int | None = None
    # False once the subscription ended for good; data is then subject to retention rules.
    keep_data: bool = True


def decide(
    status: str,
    now: int,
    past_due_since: int | None = None,
    grace_seconds: int = DEFAULT_GRACE_SECONDS,
) -> Entitlement:
    """Return the entitlement of a subscription in `status` at `now`.

    A past-due subscription stays monitored for `grace_seconds` after it became past due
    (`past_due_since`, or `now` when the caller has not recorded it yet).
    """
    try:
        known = SubscriptionStatus(status)
    except ValueError as exc:
        raise UnknownSubscriptionStatusError(f"unknown subscription status {status!r}") from exc

    if known in (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE):
        return Entitlement(monitored=True, reason=known.value)
    if known is SubscriptionStatus.PAST_DUE:
        grace_until = (past_due_since if past_due_since is not None else now) + grace_seconds
        if now < grace_until:
            return Entitlement(monitored=True, reason="past_due_grace", grace_until=grace_until)
        return Entitlement(monitored=False, reason="past_due_grace_over", grace_until=grace_until)
    if known is SubscriptionStatus.INCOMPLETE:
        return Entitlement(monitored=False, reason="awaiting_first_payment")
    if known in (SubscriptionStatus.UNPAID, SubscriptionStatus.PAUSED):
        return Entitlement(monitored=False, reason=known.value)
    return Entitlement(monitored=False, reason=known.value, keep_data=False)
