"""Quarterly schedule (1 Jan, Apr, Jul, Oct, 10:00 Asia/Shanghai): remind subscribers to re-run the official lookups."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.clock import utc_now
from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.services.quarterly_checks import plan_reminders
from idsentry.wiring import main_table, notification_queue

logger = Logger()
configure_logging()
freeze_init_objects()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Queue one reminder job per entitled subscriber; a repeated run continues or does nothing."""
    return plan_reminders(main_table(), notification_queue(), utc_now())
