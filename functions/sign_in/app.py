"""Sign-in HTTP routes: request a one-time code by SMS, then trade it for an access token."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.routes import sign_in_routes

logger = Logger()
configure_logging()
freeze_init_objects(load=("phonenumbers",))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Route one HTTP API (payload 2.0) request to the sign-in service."""
    return sign_in_routes.handle(event)
