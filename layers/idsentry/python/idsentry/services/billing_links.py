"""Signed, expiring billing links: open the Stripe Customer Portal or buy a one-off deep report.

Until subscriber accounts exist, the service sends these links by e-mail (a payment-failed
notice links to the portal). A link names the subscriber and the action and expires after
seven days; opening it creates a Stripe session and redirects there. Opening the same link
again within a day returns the same session, because the idempotency key comes from the link.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Literal, get_args

from idsentry.crypto import Pepper, TokenError, sign_token, verify_token
from idsentry.errors import DomainError
from idsentry.services.checkout import CHECKOUT_LOCALES, CheckoutDeps

logger = logging.getLogger(__name__)

LINK_VALID_SECONDS = 7 * 24 * 3600
BillingAction = Literal["portal", "deep_report"]
DEEP_REPORT_PLAN = "deep_report"


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


def open_billing_link(deps: CheckoutDeps, pepper: Pepper, token: str, now: int) -> str:
    """Return the Stripe URL the link leads to; raises BillingLinkInvalidError."""
    try:
        claims = verify_token(pepper.derive_key("billing-link"), token, now)
    except TokenError as exc:
        raise BillingLinkInvalidError() from exc
    action = claims.get("act")
    subscriber_id = str(claims.get("sub", ""))
    if action not in get_args(BillingAction):
        raise BillingLinkInvalidError()
    profile = deps.table.get(f"SUB#{subscriber_id}", "PROFILE")
    customer_id = (profile or {}).get("stripe_customer_id")
    if profile is None or not customer_id or profile.get("stripe_customer_deleted"):
        raise BillingLinkInvalidError()

    link_key = hashlib.sha256(token.encode()).hexdigest()[:40]
    locale = CHECKOUT_LOCALES.get(str(profile.get("locale")), "zh")
    if action == "portal":
        session = deps.stripe.create_portal_session(
            {"customer": customer_id, "return_url": deps.portal_return_url, "locale": locale},
            idempotency_key=f"portal-{link_key}",
        )
    else:
        session = deps.stripe.create_checkout_session(
            _report_checkout(deps, subscriber_id, str(customer_id), locale),
            idempotency_key=f"report-{link_key}",
        )
    logger.info(
        "billing link opened",
        extra={
            "subscriber_id": subscriber_id,
            "action": action,
            "stripe_session_id": session["id"],
        },
    )
    return str(session["url"])


def _report_checkout(
    deps: CheckoutDeps, subscriber_id: str, customer_id: str, locale: str
) -> dict[str, Any]:
    plan = deps.plans.plans.get(DEEP_REPORT_PLAN)
    if plan is None or plan.mode != "payment":
        raise BillingLinkInvalidError()
    currency = deps.plans.default_currency
    metadata = {"subscriber_id": subscriber_id, "plan": DEEP_REPORT_PLAN}
    params: dict[str, Any] = {
        "mode": "payment",
        "customer": customer_id,
        "client_reference_id": subscriber_id,
        "line_items": [{"price": deps.stripe.price_id(plan.prices[currency]), "quantity": 1}],
        "payment_method_types": list(plan.payment_method_types),
        "success_url": deps.success_url,
        "cancel_url": deps.cancel_url,
        "locale": locale,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    }
    if "wechat_pay" in plan.payment_method_types:
        # Checkout shows WeChat Pay's QR code only when told which client pays.
        params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
    return params
