"""Monthly schedule (the 1st, 09:00 Asia/Shanghai): queue last month's report of every entitled subscriber."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.clock import utc_now
from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.routes.report_wiring import report_queue
from idsentry.services.subscriber_reports import plan_monthly_reports
from idsentry.wiring import main_table

logger = Logger()
configure_logging()
freeze_init_objects()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Queue one report job per entitled subscriber; a repeated run continues or does nothing."""
    return plan_monthly_reports(main_table(), report_queue(), utc_now())
