"""Signed, expiring billing links: to the Stripe Customer Portal or to buy a one-off deep report.

A payment-failed e-mail links to the portal, and the account page gets a deep report link
from `POST /v1/account/deep-report` (`deep_report_links`). A link names the subscriber and the
action and expires after seven days. `idsentry.services.checkout.open_billing_link` turns one
into a Stripe session. This module stays free of the Stripe SDK, so the notifier and the
account function can build links without bundling it.
"""

from __future__ import annotations

from typing import Literal, cast, get_args

from idsentry.crypto import Pepper, TokenError, sign_token, verify_token
from idsentry.errors import DomainError

LINK_VALID_SECONDS = 7 * 24 * 3600
BillingAction = Literal["portal", "deep_report"]


class BillingLinkInvalidError(DomainError):
    """The link is malformed, forged or expired, or its subscriber cannot use it."""

    status = 400

    def __init__(self) -> None:
        super().__init__("billing.link_invalid")


def billing_url(
    pepper: Pepper, base_url: str, subscriber_id: str, action: BillingAction, now: int
) -> str:
    """Return a link that performs `action` for the subscriber, valid for seven days."""
    token = sign_token(
        pepper.derive_key("billing-link"),
        {"sub": subscriber_id, "act": action, "exp": now + LINK_VALID_SECONDS},
    )
    return f"{base_url}/v1/billing/{token}"


def read_billing_link(pepper: Pepper, token: str, now: int) -> tuple[str, BillingAction]:
    """Return the subscriber and action of a valid link; raises BillingLinkInvalidError."""
    try:
        claims = verify_token(pepper.derive_key("billing-link"), token, now)
    except TokenError as exc:
        raise BillingLinkInvalidError() from exc
    action = claims.get("act")
    subscriber_id = claims.get("sub")
    if action not in get_args(BillingAction) or not isinstance(subscriber_id, str):
        raise BillingLinkInvalidError()
    return subscriber_id, cast(BillingAction, action)
