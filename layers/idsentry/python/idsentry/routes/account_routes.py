"""Routes of the account function: what a signed-in subscriber reads and changes of their account.

API Gateway runs the account authorizer before every route here, and the authorizer puts the
subscriber id of the verified access token into `requestContext.authorizer.lambda`. Each route
acts on that id only, never on an id from the path, query or body.

To add a route, add its key and handler to ROUTES, or, for a handler in its own module such as
`routes/account_report_routes.py`, to that module's ROUTES and its key to ROUTE_MODULES here;
then add the same route to `template.yaml` with `Auth: {Authorizer: AccountTokenAuthorizer}`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from idsentry.api import error_response, internal_error_response, json_body, ok_response
from idsentry.clock import epoch, utc_now
from idsentry.errors import DomainError, NotFoundError
from idsentry.http import HttpRequest, accept_language, json_response, parse_http_event
from idsentry.i18n import Locale, negotiate_locale
from idsentry.models.account import parse_preferences
from idsentry.services import account
from idsentry.wiring import main_table

logger = logging.getLogger(__name__)

_SUBSCRIBER_ID = re.compile(r"sbr_[0-9A-HJKMNP-TV-Z]{26}")


class UnauthorizedError(DomainError):
    """The request carries no subscriber id from the authorizer."""

    status = 401

    def __init__(self) -> None:
        super().__init__("account.unauthorized")


@dataclass(frozen=True)
class AccountRequest:
    """A request of a signed-in subscriber: the HTTP request, whose account, and the locale."""

    http: HttpRequest
    subscriber_id: str
    locale: Locale


AccountHandler = Callable[[AccountRequest], dict[str, Any]]


def _summary(request: AccountRequest) -> dict[str, Any]:
    return json_response(200, account.account_summary(main_table(), request.subscriber_id))


def _alerts(request: AccountRequest) -> dict[str, Any]:
    alerts = account.alert_history(main_table(), request.subscriber_id)
    return json_response(200, {"alerts": alerts})


def _preferences(request: AccountRequest) -> dict[str, Any]:
    return json_response(200, account.preferences_view(main_table(), request.subscriber_id))


def _change_preferences(request: AccountRequest) -> dict[str, Any]:
    change = parse_preferences(json_body(request.http))
    updated = account.update_preferences(
        main_table(), request.subscriber_id, change, epoch(utc_now())
    )
    locale = request.locale
    if request.http.header("accept-language") is None:
        # Without a language preference, confirm in the language the account now uses.
        locale = negotiate_locale([], updated["locale"])
    return ok_response(200, updated, locale, "preferences.saved")


ROUTES: dict[str, AccountHandler] = {
    "GET /v1/account": _summary,
    "GET /v1/account/alerts": _alerts,
    "GET /v1/account/preferences": _preferences,
    "PUT /v1/account/preferences": _change_preferences,
}
# The routes that other modules serve, each module imported on its first request, so that a
# cold start for the overview does not load the export, playbook and report code. A unit test
# checks this table against each module's ROUTES.
ROUTE_MODULES: dict[str, str] = {
    route_key: module
    for module, route_keys in {
        "account_privacy_routes": (
            "POST /v1/account/export",
            "GET /v1/account/export/{export_id}",
            "DELETE /v1/account",
            "POST /v1/account/consents/sensitive_personal_information/withdraw",
        ),
        "account_playbook_routes": (
            "GET /v1/account/alerts/{alert_id}/playbook",
            "PUT /v1/account/alerts/{alert_id}/playbook/{step_id}",
            "GET /v1/account/checks",
            "POST /v1/account/checks",
        ),
        "account_report_routes": (
            "GET /v1/account/reports",
            "POST /v1/account/reports",
            "GET /v1/account/reports/{report_id}/{format}",
            "POST /v1/account/dossier",
            "POST /v1/account/deep-report",
        ),
    }.items()
    for route_key in route_keys
}


def module_routes(module: str) -> Mapping[str, AccountHandler]:
    """Import one route module of ROUTE_MODULES and return its routes.

    Each import is written out, so that the build's import scan finds the module's packages
    for the function's requirements.
    """
    if module == "account_privacy_routes":
        from idsentry.routes import account_privacy_routes

        return account_privacy_routes.ROUTES
    if module == "account_playbook_routes":
        from idsentry.routes import account_playbook_routes

        return account_playbook_routes.ROUTES
    if module == "account_report_routes":
        from idsentry.routes import account_report_routes

        return account_report_routes.ROUTES
    raise ValueError(f"unknown account route module: {module}")


def route_handler(route_key: str) -> AccountHandler | None:
    """Return the handler of an account route, importing its module on first use."""
    handler = ROUTES.get(route_key)
    if handler is not None:
        return handler
    module = ROUTE_MODULES.get(route_key)
    return module_routes(module).get(route_key) if module is not None else None


def authorized_subscriber(request: HttpRequest) -> str | None:
    """Return the subscriber id the authorizer verified, or None when there is none."""
    context = request.authorizer.get("lambda")
    subscriber_id = context.get("subscriber_id") if isinstance(context, Mapping) else None
    if not isinstance(subscriber_id, str) or not _SUBSCRIBER_ID.fullmatch(subscriber_id):
        return None
    return subscriber_id


def _account_locale(subscriber_id: str, default: Locale) -> Locale:
    """Return the language the account chose, for a request that names none."""
    profile = main_table().get(f"SUB#{subscriber_id}", "PROFILE") or {}
    chosen = profile.get("locale")
    return negotiate_locale([], chosen) if isinstance(chosen, str) else default


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """Dispatch one account request by its route and map every outcome to a response."""
    request = parse_http_event(event)
    locale = negotiate_locale(accept_language(request.headers))

    try:
        subscriber_id = authorized_subscriber(request)
        if subscriber_id is None:
            # API Gateway never routes here without the authorizer's context.
            raise UnauthorizedError()
        route = route_handler(request.route_key)
        if route is None:
            raise NotFoundError("route.not_found")
        if request.header("accept-language") is None:
            locale = _account_locale(subscriber_id, locale)
        return route(AccountRequest(request, subscriber_id, locale))
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
