"""Lambda REQUEST authorizer of the account routes: verifies the bearer access token."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.routes import account_authorizer

logger = Logger()
configure_logging()
freeze_init_objects()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Allow or deny one HTTP API request (authorizer payload 2.0, simple response)."""
    return account_authorizer.handle(event)
