"""Daily schedule (09:00 Asia/Shanghai): stop SMS to numbers not proven again within the period, and ask by e-mail."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.clock import utc_now
from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.services.phone_reconfirm import PhoneReconfirmSettings, plan_reconfirmations
from idsentry.settings import load_settings
from idsentry.wiring import main_table, notification_queue

logger = Logger()
configure_logging()
freeze_init_objects()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Mark every due number unconfirmed and queue its e-mail; a repeated run continues or does nothing."""
    settings = load_settings(PhoneReconfirmSettings)
    return plan_reconfirmations(
        main_table(), notification_queue(), utc_now(), settings.phone_reconfirm_months
    )
