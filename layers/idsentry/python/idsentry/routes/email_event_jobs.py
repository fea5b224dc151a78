"""Queue-record entry point of the SES event consumer: bounces and complaints through SQS."""

from __future__ import annotations

import logging
from collections import Counter
from functools import cache

from pydantic import ValidationError

from idsentry.clock import utc_now
from idsentry.errors import PoisonMessageError
from idsentry.models.ses_events import SesEvent
from idsentry.services.email_events import EmailEventDeps, apply_ses_event
from idsentry.settings import CoreSettings, load_settings
from idsentry.wiring import main_table, pepper_loader

logger = logging.getLogger(__name__)


@cache
def email_event_deps() -> EmailEventDeps:
    """Return the SES event consumer's dependencies."""
    settings = load_settings(CoreSettings)
    return EmailEventDeps(table=main_table(), pepper=lambda: pepper_loader(settings), clock=utc_now)


def process_ses_event_record(message_id: str, body: str) -> Counter[str]:
    """Apply the SES event in one queue message; raises so that SQS retries it.

    A body that is not an SES bounce or complaint event raises PoisonMessageError, and
    reaches the DLQ after its retries.
    """
    try:
        event = SesEvent.model_validate_json(body)
    except ValidationError:
        # The validator's message quotes the input, which contains addresses, so it is dropped.
        # The body waits in the DLQ for inspection.
        logger.error("ses event invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from None

    outcomes = apply_ses_event(email_event_deps(), event)
    logger.info(
        "ses event processed",
        extra={
            "message_id": message_id,
            "ses_message_id": event.detail.mail.message_id,
            "detail_type": event.detail_type,
            **{f"count_{name}": count for name, count in sorted(outcomes.items())},
        },
    )
    return outcomes
