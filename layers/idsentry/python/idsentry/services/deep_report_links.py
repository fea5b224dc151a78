"""A subscriber's way to buy the in-depth security report: a signed link to Stripe Checkout.

The account page requests the link (`POST /v1/account/deep-report`) and opens it. It is the
billing link that `billing_links` signs: `GET /v1/billing/{token}` creates the Checkout Session
for the deep report plan in the account's language (`checkout.open_billing_link`), and once
Stripe reports the payment the billing consumer queues the report. So the account function
needs neither Stripe's secret nor its SDK, only the pepper that the link's key derives from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from idsentry.adapters.table import MainTable
from idsentry.crypto import Pepper
from idsentry.errors import ConflictError, NotFoundError, ServiceUnavailableError
from idsentry.services.billing_links import LINK_VALID_SECONDS, billing_url
from idsentry.services.report_ids import DEEP_REPORT_PLAN

logger = logging.getLogger(__name__)


def deep_report_offered(billing_plans: str | None) -> bool:
    """Return whether the deployment's BillingPlans JSON has a one-off deep report plan."""
    from idsentry.models.plans import PlansConfig

    if not billing_plans:
        return False
    plan = PlansConfig.model_validate_json(billing_plans).plans.get(DEEP_REPORT_PLAN)
    return plan is not None and plan.mode == "payment"


def deep_report_link(
    table: MainTable,
    pepper: Callable[[], Pepper],
    base_url: str,
    billing_plans: str | None,
    subscriber_id: str,
    now: int,
) -> dict[str, Any]:
    """Return the subscriber's billing link that buys a deep report, and when it expires.

    Raises NotFoundError without an account, ServiceUnavailableError when the deployment sells
    no deep report, and ConflictError before the subscriber has paid for a subscription,
    because the Checkout Session charges the Stripe customer that the first payment created.
    """
    profile = table.get(f"SUB#{subscriber_id}", "PROFILE")
    if profile is None or profile.get("deletion_requested_at"):
        raise NotFoundError("account.not_found")
    if not deep_report_offered(billing_plans):
        raise ServiceUnavailableError("deep_report.not_offered")
    if (
        not profile.get("stripe_customer_id")
        or profile.get("stripe_customer_deleted")
        or profile.get("status") == "pending_payment"
    ):
        raise ConflictError("deep_report.needs_subscription")

    url = billing_url(pepper(), base_url, subscriber_id, "deep_report", now)
    logger.info("deep report link issued", extra={"subscriber_id": subscriber_id})
    return {
        "url": url,
        "expires_at": datetime.fromtimestamp(now + LINK_VALID_SECONDS, UTC).isoformat(),
    }
