"""Hourly schedule: queue the payment reminders that are due."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.clock import epoch, utc_now
from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.services.dunning import send_due_reminders
from idsentry.wiring import main_table, notification_queue

logger = Logger()
configure_logging()
freeze_init_objects()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Queue every reminder due now; a late or repeated run sends none twice."""
    return {"queued": send_due_reminders(main_table(), notification_queue(), epoch(utc_now()))}
