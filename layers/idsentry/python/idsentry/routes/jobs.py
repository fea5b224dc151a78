"""Queue-record entry points: parse one message into its job model and run the service."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from functools import cache

from pydantic import ValidationError

from idsentry.adapters.email import SesEmail
from idsentry.adapters.sms import TwilioSms
from idsentry.clock import utc_now
from idsentry.errors import PoisonMessageError, ProviderError
from idsentry.models.jobs import parse_notification_job
from idsentry.services.ledger import STALE_PENDING_SECONDS, DeliveryInFlightError
from idsentry.services.notify import NotifierDeps, process_job
from idsentry.settings import load_settings
from idsentry.settings.notify import NotifierSettings
from idsentry.wiring import data_keys, main_table, pepper_loader, secret_cache

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 10
MAX_RETRY_SECONDS = 15 * 60
# A claim in flight is either finished or stale by then.
IN_FLIGHT_RETRY_SECONDS = STALE_PENDING_SECONDS


@cache
def notifier_deps() -> NotifierDeps:
    """Return the notifier service's dependencies."""
    settings = load_settings(NotifierSettings)

    @cache
    def sms() -> TwilioSms:
        secret = secret_cache().get_json(settings.twilio_secret_id)
        return TwilioSms(
            str(secret.get("account_sid", "")),
            str(secret.get("auth_token", "")),
            str(secret.get("messaging_service_sid", "")),
            base_url=settings.twilio_base_url,
            timeout_seconds=settings.twilio_timeout_seconds,
        )

    return NotifierDeps(
        table=main_table(),
        keys=data_keys(),
        pepper=lambda: pepper_loader(settings),
        sms=sms,
        email=cache(
            lambda: SesEmail(
                settings.email_sender, configuration_set=settings.ses_configuration_set
            )
        ),
        clock=utc_now,
        public_base_url=settings.public_base_url,
        sms_daily_cap=settings.sms_per_number_daily_cap,
        sms_alert_daily_budget=settings.sms_alert_daily_budget,
        account_page_url=settings.account_page_url,
    )


def retry_delay(
    receive_count: int, jitter: Callable[[float, float], float] = random.uniform
) -> int:
    """Return the wait before the next attempt: doubling from 10 s up to 15 min, with full jitter.

    Full jitter spreads the retries of many jobs that failed together (Twilio's 429 on too
    many concurrent requests) so they do not come back together.
    """
    ceiling = min(FIRST_RETRY_SECONDS * 2 ** max(receive_count - 1, 0), MAX_RETRY_SECONDS)
    return max(int(jitter(FIRST_RETRY_SECONDS, ceiling)), 1)


def process_notification_record(
    message_id: str, body: str, receive_count: int = 1, defer: Callable[[int], None] | None = None
) -> str:
    """Process one notification job message; raises to have SQS retry it, after `defer(s)`."""
    try:
        job = parse_notification_job(body)
    except ValidationError as exc:
        logger.error("notification job invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from exc

    try:
        outcome = process_job(notifier_deps(), job)
    except DeliveryInFlightError:
        logger.info("notification job waits for a send in flight", extra={"job_id": job.job_id})
        if defer is not None:
            defer(IN_FLIGHT_RETRY_SECONDS)
        raise
    except ProviderError as exc:
        delay = retry_delay(receive_count)
        logger.warning(
            "notification job retried after a provider error",
            extra={
                "job_id": job.job_id,
                "provider": exc.provider,
                "error_code": exc.code,
                "retry_in_seconds": delay,
                "receive_count": receive_count,
            },
        )
        if defer is not None:
            defer(delay)
        raise
    logger.info(
        "notification job processed",
        extra={"job_id": job.job_id, "kind": job.kind, "outcome": outcome},
    )
    return outcome
