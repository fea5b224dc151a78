"""HTTP responses for domain results and errors, localized from the message catalogue."""

from __future__ import annotations

import logging
from typing import Any

from idsentry.errors import (
    DomainError,
    FieldProblem,
    RateLimitedError,
    RequestValidationError,
    ServiceUnavailableError,
)
from idsentry.http import HttpRequest, RequestBodyError, json_response
from idsentry.i18n import Locale, message

logger = logging.getLogger(__name__)


def error_response(error: DomainError, locale: Locale) -> dict[str, Any]:
    """Map a domain error to its status, a localized message and, for limits, Retry-After."""
    payload: dict[str, Any] = {
        "error": {"code": error.code, "message": message(error.code, locale, error.params)}
    }
    headers: dict[str, str] = {}

    if isinstance(error, RequestValidationError):
        payload["error"]["fields"] = [
            {
                "field": problem.field,
                "code": problem.code,
                "message": message(problem.code, locale, problem.params),
            }
            for problem in error.problems
        ]
    if isinstance(error, RateLimitedError):
        headers["retry-after"] = str(error.retry_after)
    if isinstance(error, ServiceUnavailableError) and error.retry_after is not None:
        headers["retry-after"] = str(error.retry_after)

    return json_response(error.status, payload, headers)


def internal_error_response(locale: Locale) -> dict[str, Any]:
    """Return a 500 that reveals nothing about the cause, which only the logs contain."""
    return json_response(
        500, {"error": {"code": "internal.error", "message": message("internal.error", locale)}}
    )


def ok_response(
    status: int, payload: dict[str, Any], locale: Locale, message_code: str | None = None
) -> dict[str, Any]:
    """Return a success response, with the localized message for `message_code` if given."""
    body = dict(payload)
    if message_code:
        body["message"] = message(message_code, locale)
    return json_response(status, body)


def json_body(request: HttpRequest) -> dict[str, Any]:
    """Return the request's JSON object body. Raises RequestValidationError naming `body`."""
    try:
        return request.json()
    except RequestBodyError as exc:
        raise RequestValidationError([FieldProblem("body", "request.invalid_json")]) from exc
