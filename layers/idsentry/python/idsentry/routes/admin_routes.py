"""Routes of the staff admin API (IAM-authorized): intake, breaches, review, deliveries, ledger,
reconciliations, subscribers' reports and dossiers."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from idsentry.adapters.bus import PublishError
from idsentry.clock import utc_now
from idsentry.errors import NotFoundError
from idsentry.http import HttpRequest, RequestBodyError, json_response, parse_http_event
from idsentry.services import review, review_input
from idsentry.services.audit import AuditTrail
from idsentry.settings import load_settings
from idsentry.settings.admin import AdminSettings
from idsentry.wiring import main_table, publisher

logger = logging.getLogger(__name__)

BREACH_HIDDEN_FIELDS = ("pk", "sk")
REVIEW_ROUTES = (
    "GET /v1/admin/reviews",
    "GET /v1/admin/reviews/{breach}",
    "POST /v1/admin/reviews/{breach}/decision",
)
# Route keys of the modules that are imported only for their own requests, so that a cold
# start imports what its first request needs. A unit test checks that each tuple equals its
# module's ROUTES.
RECONCILE_ROUTES = (
    "POST /v1/admin/reconciliations",
    "GET /v1/admin/reconciliations/{reconciliation_id}",
)
REPORT_ROUTES = (
    "POST /v1/admin/reports",
    "GET /v1/admin/reports/{month}",
    "POST /v1/admin/subscribers/{subscriber_id}/dossier",
)


@cache
def review_deps() -> review.ReviewDeps:
    """Return analyst review's dependencies."""
    settings = load_settings(AdminSettings)
    return review.ReviewDeps(
        table=main_table(),
        audit=AuditTrail(settings.audit_table_name),
        publisher=publisher(),
        clock=utc_now,
    )


def _error(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return json_response(status, {"error": error})


def _not_found(what: str) -> dict[str, Any]:
    return _error(404, "not_found", f"{what} not found")


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """Dispatch one admin request; every route needs IAM credentials (checked by API Gateway)."""
    request = parse_http_event(event)
    caller = (request.authorizer.get("iam") or {}).get("userArn")
    logger.info("admin request", extra={"route": request.route_key, "caller": caller})

    if request.route_key in REVIEW_ROUTES:
        return _review(request, caller)
    if request.route_key in RECONCILE_ROUTES:
        from idsentry.routes import reconcile_routes

        return reconcile_routes.handle(request, caller)
    if request.route_key in REPORT_ROUTES:
        from idsentry.routes import admin_report_routes

        return admin_report_routes.handle(request, caller)
    if request.route_key == "GET /v1/admin/intake-jobs/{job_id}":
        from idsentry.services.intake import job_report

        report = job_report(main_table(), request.path_parameters["job_id"])
        return json_response(200, report) if report else _not_found("intake job")
    if request.route_key == "GET /v1/admin/deliveries/unknown":
        from idsentry.services.ledger import unknown_deliveries

        return json_response(200, {"deliveries": unknown_deliveries(main_table())})
    if request.route_key == "GET /v1/admin/ledger/{day}":
        return _ledger(request)
    if request.route_key == "GET /v1/admin/breaches/{name}":
        item = main_table().get(f"BREACH#{request.path_parameters['name']}", "BREACH")
        if item is None:
            return _not_found("breach")
        return json_response(
            200, {key: value for key, value in item.items() if key not in BREACH_HIDDEN_FIELDS}
        )
    return _not_found("route")


def _ledger(request: HttpRequest) -> dict[str, Any]:
    from idsentry.services import money_ledger

    try:
        page = money_ledger.parse_request(request.path_parameters.get("day"), request.query)
    except money_ledger.LedgerInputError as exc:
        return _error(400, "invalid_request", str(exc), exc.field)
    return json_response(200, money_ledger.ledger_page(main_table(), page))


def _review(request: HttpRequest, caller: str | None) -> dict[str, Any]:
    """Serve one review route. A response that shows or changes evidence is audited first."""
    if not caller:
        # The audit trail records who acted, and API Gateway sets the caller for IAM routes.
        return _error(403, "forbidden", "the request carries no IAM caller identity")
    analyst = review.Caller(actor=caller, request_id=request.request_id)

    try:
        if request.route_key == "GET /v1/admin/reviews":
            page = review_input.parse_page(request.query)
            return json_response(200, review.list_pending(review_deps(), analyst, page))

        breach_name = review_input.parse_breach_name(request.path_parameters.get("breach"))
        if request.route_key == "GET /v1/admin/reviews/{breach}":
            page = review_input.parse_page(request.query, breach_name)
            return json_response(
                200, review.list_pending(review_deps(), analyst, page, breach_name)
            )

        decision = review_input.parse_decision(request.json())
        return json_response(200, review.decide(review_deps(), analyst, breach_name, decision))
    except RequestBodyError as exc:
        return _error(400, "invalid_request", str(exc), exc.field)
    except review_input.ReviewInputError as exc:
        return _error(400, "invalid_request", str(exc), exc.field)
    except NotFoundError:
        return _not_found("breach")
    except PublishError as exc:
        logger.error(
            "review events not published",
            extra={"request_id": request.request_id, "failed_events": len(exc.failed_event_ids)},
        )
        return _error(
            503,
            "events_pending",
            "some events of stored decisions were not published; "
            "repeat the request to publish them",
        )
