"""Routes of the sign-in function: request a code by SMS, then trade it for an access token."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from idsentry.api import error_response, internal_error_response, json_body, ok_response
from idsentry.clock import utc_now
from idsentry.errors import DomainError, NotFoundError
from idsentry.http import accept_language, json_response, parse_http_event
from idsentry.i18n import negotiate_locale
from idsentry.models.sign_in import parse_sign_in
from idsentry.models.signup import parse_verify
from idsentry.services import signin
from idsentry.settings import load_settings
from idsentry.settings.codes import SignInSettings
from idsentry.wiring import main_table, notification_queue, pepper_loader

logger = logging.getLogger(__name__)

CREATE_ROUTE = "POST /v1/sign-in"
VERIFY_ROUTE = "POST /v1/sign-in/{sign_in_id}/verify"


@cache
def sign_in_deps() -> signin.SignInDeps:
    """Return the sign-in service's dependencies."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from idsentry.adapters.token_keys import KmsTokenSigner

    settings = load_settings(SignInSettings)
    metrics = Metrics()

    def record_budget_exhausted() -> None:
        metrics.add_metric(name="OtpBudgetExhausted", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()

    signer = KmsTokenSigner(settings.account_token_key_arn)
    return signin.SignInDeps(
        settings=settings,
        table=main_table(),
        pepper=lambda: pepper_loader(settings),
        queue=notification_queue(),
        signer=lambda: signer,
        clock=utc_now,
        on_otp_budget_exhausted=record_budget_exhausted,
    )


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """Dispatch one request by its route and map every outcome to a response."""
    request = parse_http_event(event)
    locale = negotiate_locale(accept_language(request.headers))

    try:
        if request.route_key == CREATE_ROUTE:
            deps = sign_in_deps()
            mobile = parse_sign_in(
                json_body(request), allowed_regions=deps.settings.allowed_sms_countries
            )
            created = signin.create_sign_in(deps, mobile, request.source_ip)
            return ok_response(202, created, locale, "sign_in.code_sent")
        if request.route_key == VERIFY_ROUTE:
            code = parse_verify(json_body(request))
            token = signin.verify_sign_in(
                sign_in_deps(), request.path_parameters["sign_in_id"], code
            )
            # RFC 6749, section 5.1: a response that carries a token must not be cached.
            return json_response(200, token, {"pragma": "no-cache"})
        raise NotFoundError("route.not_found")
    except DomainError as error:
        logger.info(
            "request rejected",
            extra={
                "route": request.route_key,
                "code": error.code,
                "request_id": request.request_id,
            },
        )
        return error_response(error, locale)
    except Exception:
        logger.exception(
            "request failed", extra={"route": request.route_key, "request_id": request.request_id}
        )
        return internal_error_response(locale)
