"""Dependencies of the signup function, built on first use; only signup imports this module."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from idsentry.adapters.realname import HttpIdentityVerifier, IdentityVerifier
from idsentry.clock import utc_now
from idsentry.settings import load_settings
from idsentry.settings.codes import SignupSettings
from idsentry.wiring import (
    data_keys,
    main_table,
    notification_queue,
    pepper_loader,
    publisher,
    secret_cache,
)

if TYPE_CHECKING:
    from idsentry.services.checkout import CheckoutDeps
    from idsentry.services.signup import SignupDeps


def identity_verifier() -> IdentityVerifier:
    """Return the real-name verification client configured by its secret."""
    secret = secret_cache().get_json(load_settings(SignupSettings).realname_secret_id)
    return HttpIdentityVerifier(str(secret.get("base_url", "")), str(secret.get("api_key", "")))


@cache
def signup_deps() -> SignupDeps:
    """Return the signup service's dependencies."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from idsentry.services.signup import SignupDeps

    settings = load_settings(SignupSettings)
    metrics = Metrics()

    def record_budget_exhausted() -> None:
        metrics.add_metric(name="OtpBudgetExhausted", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()

    checkout = None
    if settings.stripe_secret_id and settings.billing_plans:
        checkout = _checkout_starter(settings)

    return SignupDeps(
        settings=settings,
        table=main_table(),
        keys=data_keys(),
        pepper=lambda: pepper_loader(settings),
        verifier=identity_verifier,
        publisher=publisher(),
        queue=notification_queue(),
        clock=utc_now,
        on_otp_budget_exhausted=record_budget_exhausted,
        checkout=checkout,
    )


@cache
def checkout_deps() -> CheckoutDeps | None:
    """Return the Checkout dependencies, or None when the deployment has no billing."""
    from idsentry.adapters.stripe_gateway import StripeSdkGateway
    from idsentry.models.plans import PlansConfig
    from idsentry.services.checkout import CheckoutDeps

    settings = load_settings(SignupSettings)
    if not (settings.stripe_secret_id and settings.billing_plans):
        return None
    plans = PlansConfig.model_validate_json(settings.billing_plans)
    secret = secret_cache().get_json(settings.stripe_secret_id)
    return CheckoutDeps(
        table=main_table(),
        stripe=StripeSdkGateway(str(secret.get("api_key", "")), base_url=settings.stripe_base_url),
        plans=plans,
        success_url=f"{settings.public_base_url}/v1/checkout/success",
        cancel_url=f"{settings.public_base_url}/v1/checkout/cancel",
        portal_return_url=f"{settings.public_base_url}/v1/checkout/return",
    )


def _checkout_starter(settings: SignupSettings) -> Callable[[str, str, str, str], str]:
    """Return the function that starts a Stripe Checkout for a verified signup."""
    from idsentry.models.plans import PlansConfig
    from idsentry.services.checkout import start_checkout

    # Checked at cold start, so a broken BillingPlans fails the deployment's first request.
    PlansConfig.model_validate_json(settings.billing_plans or "")

    def start(subscriber_id: str, signup_id: str, plan: str, locale: str) -> str:
        deps = checkout_deps()
        assert deps is not None, "checkout starter built without billing settings"
        return start_checkout(deps, subscriber_id, signup_id, plan, locale)

    return start
