"""Queue-record entry points: parse one message into its job model and run the service."""

from __future__ import annotations

import logging
from functools import cache

from pydantic import TypeAdapter, ValidationError

from idsentry.adapters.email import SesEmail
from idsentry.adapters.sms import TwilioSms
from idsentry.clock import utc_now
from idsentry.errors import PoisonMessageError
from idsentry.models.jobs import NotificationJob
from idsentry.services.notify import NotifierDeps, process_job
from idsentry.settings import NotifierSettings, load_settings
from idsentry.wiring import data_keys, main_table, pepper_loader, secret_cache

logger = logging.getLogger(__name__)
_job_adapter: TypeAdapter[NotificationJob] = TypeAdapter(NotificationJob)


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
        )

    return NotifierDeps(
        table=main_table(),
        keys=data_keys(),
        pepper=lambda: pepper_loader(settings),
        sms=sms,
        email=cache(lambda: SesEmail(settings.email_sender)),
        clock=utc_now,
        public_base_url=settings.public_base_url,
        sms_daily_cap=settings.sms_per_number_daily_cap,
    )


def process_notification_record(message_id: str, body: str) -> str:
    """Process one notification job message; raises to have SQS retry it."""
    try:
        job = _job_adapter.validate_json(body)
    except ValidationError as exc:
        logger.error("notification job invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from exc

    outcome = process_job(notifier_deps(), job)
    logger.info(
        "notification job processed",
        extra={"job_id": job.job_id, "kind": job.kind, "outcome": outcome},
    )
    return outcome
