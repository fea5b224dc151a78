"""Queue-record entry points: parse one message into its job model and run the service."""

from __future__ import annotations

import logging

from pydantic import TypeAdapter, ValidationError

from idsentry.models.jobs import NotificationJob
from idsentry.services.notify import process_job
from idsentry.wiring import notifier_deps

logger = logging.getLogger(__name__)
_job_adapter: TypeAdapter[NotificationJob] = TypeAdapter(NotificationJob)


class PoisonMessageError(ValueError):
    """A message that can never be processed; it goes to the DLQ after its retries."""


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
