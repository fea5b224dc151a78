"""Settings of the Stripe webhook and the billing consumer."""

from __future__ import annotations

from idsentry.settings import CoreSettings


class StripeWebhookSettings(CoreSettings):
    """Settings of the Stripe webhook function."""

    stripe_secret_id: str
    stripe_events_queue_url: str
    live_mode: bool = False


class StripeEventsSettings(CoreSettings):
    """Settings of the billing consumer."""

    stripe_secret_id: str
    past_due_grace_seconds: int = 7 * 24 * 3600
    # The same JSON as the signup function's; the consumer reads its referral programme.
    billing_plans: str | None = None
    # Local stack only: the local Stripe server's base URL. Unset in AWS, where the SDK's
    # default https://api.stripe.com is used.
    stripe_base_url: str | None = None
    # Where the job of a bought deep report goes. Unset, buying one fails the event.
    report_queue_url: str | None = None
