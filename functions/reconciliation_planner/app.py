"""Daily schedule (06:00 Asia/Shanghai): queue the reconciliation of the previous day."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.routes.reconcile_jobs import plan_reconciliation

logger = Logger()
configure_logging()
freeze_init_objects()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Queue the day's run once. A repeated schedule run finds the same run and queues no other."""
    return plan_reconciliation(event)
