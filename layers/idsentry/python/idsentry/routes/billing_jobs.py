"""Queue-record entry point of the billing consumer."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from pydantic import ValidationError

from idsentry.adapters.queue import JobQueue
from idsentry.adapters.stripe_gateway import StripeSdkGateway
from idsentry.clock import utc_now
from idsentry.errors import PoisonMessageError
from idsentry.models.billing_jobs import StripeEventJob
from idsentry.models.plans import PlansConfig
from idsentry.services.billing import (
    LEASE_SECONDS,
    BillingDeps,
    NotLinkedYetError,
    SubscriptionBusyError,
    apply_event,
)
from idsentry.settings import load_settings
from idsentry.settings.billing import StripeEventsSettings
from idsentry.wiring import main_table, notification_queue, publisher, secret_cache

logger = logging.getLogger(__name__)

# Retries of an event whose customer is not linked yet wait 30 s, 60 s, 120 s … up to 15 min,
# the SQS maximum for one visibility change. After the queue's maximum receive count, the
# redrive policy moves the message to the DLQ, so it is never dropped.
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 900
# A subscription held by another consumer is usually free again within seconds, so the first
# retry comes soon. Each later one waits twice as long: 5 + 10 + 20 + 40 s outlast the lease of
# a consumer that died holding it (LEASE_SECONDS) well before the queue's 8 receives run out.
BUSY_RETRY_SECONDS = 5


@cache
def billing_deps() -> BillingDeps:
    """Return the billing consumer's dependencies."""
    settings = load_settings(StripeEventsSettings)

    @cache
    def gateway() -> StripeSdkGateway:
        secret = secret_cache().get_json(settings.stripe_secret_id)
        return StripeSdkGateway(str(secret.get("api_key", "")), base_url=settings.stripe_base_url)

    referral = None
    if settings.billing_plans:
        referral = PlansConfig.model_validate_json(settings.billing_plans).referral
    return BillingDeps(
        table=main_table(),
        stripe=gateway,
        publisher=publisher(),
        clock=utc_now,
        grace_seconds=settings.past_due_grace_seconds,
        referral=referral,
        notices=notification_queue(),
        reports=JobQueue(settings.report_queue_url) if settings.report_queue_url else None,
    )


def retry_delay(receive_count: int) -> int:
    """Return the visibility timeout for the next attempt after `receive_count` receives."""
    delay: int = FIRST_RETRY_SECONDS * 2 ** max(receive_count - 1, 0)
    return min(delay, MAX_RETRY_SECONDS)


def busy_retry_delay(receive_count: int) -> int:
    """Return the visibility timeout after `receive_count` receives found the subscription leased."""
    delay: int = BUSY_RETRY_SECONDS * 2 ** max(receive_count - 1, 0)
    return min(delay, LEASE_SECONDS)


def process_stripe_record(message_id: str, body: str, receive_count: int, defer: Any) -> str:
    """Apply one Stripe event job; raises so SQS retries it, after `defer(seconds)` when early."""
    try:
        job = StripeEventJob.model_validate_json(body)
    except ValidationError as exc:
        logger.error("stripe event job invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from exc

    try:
        return apply_event(billing_deps(), job.event_id)
    except NotLinkedYetError:
        delay = retry_delay(receive_count)
        logger.info(
            "stripe event waits for its customer link",
            extra={
                "event_id": job.event_id,
                "retry_in_seconds": delay,
                "receive_count": receive_count,
            },
        )
        defer(delay)
        raise
    except SubscriptionBusyError:
        delay = busy_retry_delay(receive_count)
        logger.info(
            "stripe event waits for its subscription lease",
            extra={
                "event_id": job.event_id,
                "retry_in_seconds": delay,
                "receive_count": receive_count,
            },
        )
        defer(delay)
        raise
