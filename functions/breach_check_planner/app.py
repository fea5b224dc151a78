"""Daily schedule (02:00 Asia/Shanghai): sync the HIBP catalogue and queue one check per subscriber."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.routes.check_jobs import run_planner

logger = Logger()
configure_logging()
freeze_init_objects(load=("requests",))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Plan the run; a repeated run queues the same job ids, which workers handle idempotently."""
    return run_planner()
