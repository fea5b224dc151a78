"""Routes of the signup function."""

from __future__ import annotations

import html
import json
import logging
from typing import Any

from idsentry.api import error_response, internal_error_response, ok_response
from idsentry.clock import epoch, utc_now
from idsentry.errors import DomainError, FieldProblem, NotFoundError, RequestValidationError
from idsentry.http import HttpRequest, RequestBodyError, accept_language, parse_http_event
from idsentry.i18n import Locale, message, negotiate_locale
from idsentry.index_keys import signup_requests_index_key
from idsentry.models.signup import parse_signup, parse_verify
from idsentry.routes import preference_routes
from idsentry.routes.signup_wiring import checkout_deps, signup_deps
from idsentry.services import signup
from idsentry.services.idempotency import (
    IdempotencyGuard,
    StoredResponse,
    request_fingerprint,
    validate_key,
)
from idsentry.wiring import main_table, pepper_loader, publisher

logger = logging.getLogger(__name__)


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """Dispatch one request by its route and map every outcome to a response."""
    request = parse_http_event(event)
    locale = negotiate_locale(accept_language(request.headers))
    if request.route_key == "POST /v1/signups":
        # A signup body may name its language, and every rejection of that signup uses it.
        locale = negotiate_locale(accept_language(request.headers), _body_locale(request))

    try:
        if request.route_key == "POST /v1/signups":
            return _idempotent(request, lambda: _create(request, locale))
        if request.route_key == "POST /v1/signups/{signup_id}/verify":
            return _idempotent(request, lambda: _verify(request, locale))
        if request.route_key == "GET /v1/email-confirmations/{token}":
            return _confirm_email(request, locale)
        if request.route_key == "GET /v1/checkout/{result}":
            return _checkout_result(request, locale)
        if request.route_key == "GET /v1/billing/{token}":
            return _open_billing_link(request, locale)
        if request.route_key in preference_routes.ROUTE_KEYS:
            return preference_routes.handle(request, locale)
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


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        return request.json()
    except RequestBodyError as exc:
        raise RequestValidationError([FieldProblem("body", "request.invalid_json")]) from exc


def _body_locale(request: HttpRequest) -> str | None:
    """Return the `locale` that a JSON object body names, or None."""
    try:
        payload = request.json()
    except RequestBodyError:
        return None
    locale = payload.get("locale")
    return locale if isinstance(locale, str) else None


def _create(request: HttpRequest, locale: Locale) -> dict[str, Any]:
    deps = signup_deps()
    payload = _body(request)

    try:
        valid = parse_signup(
            payload,
            allowed_regions=deps.settings.allowed_sms_countries,
            cross_border=deps.settings.cross_border,
        )
    except RequestValidationError as error:
        # Field messages use the locale the body asked for, even though the body is invalid.
        return error_response(error, locale)
    result = signup.create_signup(deps, valid, request.source_ip, locale)
    return ok_response(202, result, locale, "signup.code_sent")


def _verify(request: HttpRequest, locale: Locale) -> dict[str, Any]:
    deps = signup_deps()
    code = parse_verify(_body(request))
    result = signup.verify_signup(deps, request.path_parameters["signup_id"], code)
    if request.header("accept-language") is None:
        # Without a language preference, respond in the language chosen at signup.
        locale = negotiate_locale([], result["locale"])
    ready = result["next_step"]["available"]
    result["next_step"] = {
        **result["next_step"],
        "message": message("payment.ready" if ready else "payment.not_available", locale),
    }
    return ok_response(200, result, locale, "signup.verified")


def _idempotent(request: HttpRequest, run: Any) -> dict[str, Any]:
    raw_key = request.header("idempotency-key")
    if raw_key is None:
        response: dict[str, Any] = run()
        return response

    guard = IdempotencyGuard(main_table(), lambda: epoch(utc_now()))
    fingerprint = request_fingerprint(request.method, request.path, request.body)

    def attempt() -> StoredResponse:
        response = run()
        signup_id = request.path_parameters.get("signup_id") or _created_signup_id(response)
        return StoredResponse(
            response["statusCode"],
            dict(response["headers"]),
            response["body"],
            index_key=signup_requests_index_key(signup_id) if signup_id else None,
        )

    stored = guard.run(request.route_key, validate_key(raw_key), fingerprint, attempt)
    return {
        "statusCode": stored.status,
        "headers": stored.headers,
        "body": stored.body,
        "isBase64Encoded": False,
    }


def _created_signup_id(response: dict[str, Any]) -> str | None:
    """Return the signup id of a created signup's response, or None for an error response."""
    if not 200 <= response["statusCode"] < 300:
        return None
    signup_id = json.loads(response["body"]).get("signup_id")
    return str(signup_id) if signup_id else None


def _confirm_email(request: HttpRequest, locale: Locale) -> dict[str, Any]:
    # Imported here, like the billing link's modules, so that a cold start serving a signup
    # does not load the modules of the other routes.
    from idsentry.services import email_links

    deps = signup_deps()
    try:
        result = email_links.confirm_email(
            main_table(),
            publisher(),
            pepper_loader(deps.settings),
            request.path_parameters["token"],
            epoch(utc_now()),
        )
    except email_links.EmailLinkInvalidError:
        return _html_page(400, message("email.link_invalid", locale), locale)
    page_locale: Locale = "en" if result["locale"] == "en" else "zh-CN"
    return _html_page(200, message("email.confirmed", page_locale), page_locale)


def _html_page(status: int, text: str, locale: Locale) -> dict[str, Any]:
    title = "身份哨兵 IDSentry"
    body = (
        f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head><body><main><h1>{title}</h1>"
        f"<p>{html.escape(text)}</p></main></body></html>"
    )
    return {
        "statusCode": status,
        "headers": {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"},
        "body": body,
        "isBase64Encoded": False,
    }


def _checkout_result(request: HttpRequest, locale: Locale) -> dict[str, Any]:
    result = request.path_parameters.get("result")
    if result not in ("success", "cancel", "return"):
        raise NotFoundError("route.not_found")
    # The page only informs: entitlements follow Stripe's events, never this redirect.
    return _html_page(200, message(f"checkout.{result}", locale), locale)


def _open_billing_link(request: HttpRequest, locale: Locale) -> dict[str, Any]:
    from idsentry.services import billing_links, checkout

    deps = checkout_deps()
    if deps is None:
        return _html_page(503, message("payment.not_available", locale), locale)
    settings = signup_deps().settings
    try:
        url = checkout.open_billing_link(
            deps, pepper_loader(settings), request.path_parameters["token"], epoch(utc_now())
        )
    except billing_links.BillingLinkInvalidError:
        return _html_page(400, message("billing.link_invalid", locale), locale)
    return {
        "statusCode": 303,
        "headers": {"location": url, "cache-control": "no-store"},
        "body": "",
        "isBase64Encoded": False,
    }
