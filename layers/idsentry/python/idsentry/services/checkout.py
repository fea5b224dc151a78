"""Checkout: a Stripe customer and Checkout Session for a subscriber's plan, created idempotently."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from idsentry.adapters.stripe_gateway import StripeCheckout
from idsentry.adapters.table import MainTable
from idsentry.crypto import Pepper
from idsentry.models.plans import PlansConfig
from idsentry.services.billing_links import BillingLinkInvalidError, read_billing_link
from idsentry.services.report_ids import DEEP_REPORT_PLAN

logger = logging.getLogger(__name__)

# Stripe Checkout's locale codes for the service's locales.
CHECKOUT_LOCALES = {"zh-CN": "zh", "en": "en"}


@dataclass
class CheckoutDeps:
    """Dependencies of starting a checkout."""

    table: MainTable
    stripe: StripeCheckout
    plans: PlansConfig
    success_url: str
    cancel_url: str
    # Where the Customer Portal sends the subscriber back to.
    portal_return_url: str = ""


def start_checkout(
    deps: CheckoutDeps, subscriber_id: str, signup_id: str, plan_name: str, locale: str
) -> str:
    """Return the Checkout URL for the subscriber's plan, creating the customer first if needed.

    The idempotency keys derive from the signup, so a retried verification gets the same
    customer and the same session (Stripe keeps keys for 24 hours).
    """
    plan = deps.plans.plans[plan_name]
    currency = deps.plans.default_currency
    profile = deps.table.get(f"SUB#{subscriber_id}", "PROFILE") or {}

    customer_id = profile.get("stripe_customer_id")
    if not customer_id:
        customer_id = deps.stripe.create_customer(
            {
                "metadata": {"subscriber_id": subscriber_id},
                "preferred_locales": [CHECKOUT_LOCALES.get(locale, "zh")],
            },
            idempotency_key=f"customer-{signup_id}",
        )
        deps.table.put(
            {"pk": f"STRIPECUS#{customer_id}", "sk": "LINK", "subscriber_id": subscriber_id}
        )
        deps.table.update(
            f"SUB#{subscriber_id}",
            "PROFILE",
            "SET stripe_customer_id = :customer",
            values={":customer": customer_id},
        )

    params: dict[str, Any] = {
        "mode": plan.mode,
        "customer": customer_id,
        "client_reference_id": subscriber_id,
        "line_items": [{"price": deps.stripe.price_id(plan.prices[currency]), "quantity": 1}],
        "payment_method_types": list(plan.payment_method_types),
        "success_url": deps.success_url,
        "cancel_url": deps.cancel_url,
        "locale": CHECKOUT_LOCALES.get(locale, "zh"),
        "metadata": {"subscriber_id": subscriber_id, "plan": plan_name},
    }
    if plan.mode == "subscription":
        params["subscription_data"] = {
            "metadata": {"subscriber_id": subscriber_id, "plan": plan_name}
        }
        if profile.get("referred_by") and deps.plans.referral is not None:
            # The referee's first period is discounted by the referral coupon (duration once).
            params["discounts"] = [{"coupon": deps.plans.referral.coupon}]
    session = deps.stripe.create_checkout_session(params, idempotency_key=f"checkout-{signup_id}")

    deps.table.update(
        f"SUB#{subscriber_id}",
        "PROFILE",
        "SET checkout_session_id = :session",
        values={":session": session["id"]},
    )
    logger.info(
        "checkout session created",
        extra={"subscriber_id": subscriber_id, "checkout_session_id": session["id"]},
    )
    return str(session["url"])


def open_billing_link(deps: CheckoutDeps, pepper: Pepper, token: str, now: int) -> str:
    """Return the Stripe URL a billing link leads to; raises BillingLinkInvalidError.

    Opening the same link again within a day returns the same session, because the
    idempotency key comes from the link.
    """
    subscriber_id, action = read_billing_link(pepper, token, now)
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
        # WeChat Pay's options name the client type the customer pays from: a web page here.
        params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
    return params
