"""The staff admin API behind IAM authorization: intake jobs, the breach catalogue and review."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.routes import admin_routes

logger = Logger()
configure_logging()
freeze_init_objects()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Handle one admin request."""
    return admin_routes.handle(event)
