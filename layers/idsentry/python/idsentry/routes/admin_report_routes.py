"""Admin routes of subscribers' reports: queue monthly reports, follow them, make a dossier.

`POST /v1/admin/reports` takes {"month", "subscriber_id"} (both optional) and returns 202 with
the queued and the already announced report ids, and the subscribers skipped because their
account was created after the month ended. Without `subscriber_id` it continues the month's run
over every entitled subscriber, up to PAGES_PER_REQUEST pages a request.
`GET /v1/admin/reports/{month}?subscriber_ids=` returns each report's state.
`POST /v1/admin/subscribers/{subscriber_id}/dossier` takes
{"reason", "locale", "audience", "breach_names"} and returns 201 with a dossier download URL
valid for 5 minutes, after writing the dossier item and its audit record in one transaction.
Requests and dossiers write an audit record with the caller's IAM ARN.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from idsentry.clock import utc_now
from idsentry.errors import NotFoundError, RequestValidationError
from idsentry.http import HttpRequest, RequestBodyError, json_response
from idsentry.services.audit import AuditRecord, AuditTrail
from idsentry.settings import load_settings
from idsentry.settings.admin import AdminSettings
from idsentry.wiring import main_table

if TYPE_CHECKING:
    from idsentry.services.report_requests import ReportRequestError

logger = logging.getLogger(__name__)

RUN_ROUTE: Final = "POST /v1/admin/reports"
STATES_ROUTE: Final = "GET /v1/admin/reports/{month}"
DOSSIER_ROUTE: Final = "POST /v1/admin/subscribers/{subscriber_id}/dossier"
ROUTES: Final = (RUN_ROUTE, STATES_ROUTE, DOSSIER_ROUTE)


@cache
def audit_trail() -> AuditTrail:
    """Return the audit trail the report routes write to."""
    return AuditTrail(load_settings(AdminSettings).audit_table_name)


def _error(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return json_response(status, {"error": error})


def _request_error(exc: ReportRequestError) -> dict[str, Any]:
    code = {404: "not_found", 409: "conflict"}.get(exc.status, "invalid_request")
    return _error(exc.status, code, str(exc), exc.field)


def handle(request: HttpRequest, caller: str | None) -> dict[str, Any]:
    """Serve one report route. The caller's ARN is required for the audit record."""
    if not caller:
        return _error(403, "forbidden", "the request carries no IAM caller identity")
    if request.route_key == RUN_ROUTE:
        return _run(request, caller)
    if request.route_key == STATES_ROUTE:
        return _states(request)
    return _dossier(request, caller)


def _run(request: HttpRequest, caller: str) -> dict[str, Any]:
    # The report modules are imported on use, because they import the renderer's models and
    # would add to the cold start of every admin route.
    from idsentry.routes.report_wiring import report_queue
    from idsentry.services import report_requests

    now = utc_now()
    try:
        body = request.json() if request.body else {}
        parsed = report_requests.parse_run_request(body, now)
        result = report_requests.request_monthly_reports(main_table(), report_queue(), parsed)
    except RequestBodyError as exc:
        return _error(400, "invalid_request", str(exc), exc.field)
    except report_requests.ReportRequestError as exc:
        return _request_error(exc)

    if parsed.subscriber_id is not None:
        subject = f"SUBSCRIBER#{parsed.subscriber_id}"
    else:
        subject = f"REPORTRUN#{parsed.month}"
    audit_trail().write(
        AuditRecord(
            action="report.request",
            actor=caller,
            request_id=request.request_id,
            subject=subject,
            at=now,
            outcome="queued" if result["queued"] else "no_change",
        )
    )
    logger.info(
        "monthly reports requested",
        extra={
            "month": parsed.month,
            "scope": result["scope"],
            "queued": result["queued"],
            "already_announced": result["already_announced"],
            "skipped": result["skipped"],
            "finished": result["finished"],
        },
    )
    return json_response(202, result)


def _states(request: HttpRequest) -> dict[str, Any]:
    from idsentry.services import report_requests

    try:
        month, subscriber_ids = report_requests.parse_state_request(
            request.path_parameters.get("month"), request.query
        )
    except report_requests.ReportRequestError as exc:
        return _request_error(exc)
    return json_response(200, report_requests.report_states(main_table(), month, subscriber_ids))


def _dossier(request: HttpRequest, caller: str) -> dict[str, Any]:
    from idsentry.routes.report_wiring import report_deps
    from idsentry.services import dossiers, report_requests

    try:
        subscriber_id = report_requests.parse_subscriber_id(
            request.path_parameters.get("subscriber_id")
        )
        parsed = dossiers.StaffDossierRequest.model_validate(request.json())
    except report_requests.ReportRequestError as exc:
        return _request_error(exc)
    except RequestBodyError as exc:
        return _error(400, "invalid_request", str(exc), exc.field)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        return _error(400, "invalid_request", f"invalid {field}: {first['msg']}", field)

    staff = dossiers.StaffRequester(
        trail=audit_trail(), actor=caller, request_id=request.request_id, reason=parsed.reason
    )
    try:
        created = dossiers.create_dossier(
            report_deps(), subscriber_id, parsed, locale=parsed.locale, staff=staff
        )
    except NotFoundError:
        return _error(
            404,
            "not_found",
            f"subscriber_id {subscriber_id} not found: no such account",
            "subscriber_id",
        )
    except RequestValidationError as exc:
        # create_dossier rejects only breach names that are not confirmed exposures.
        field = exc.problems[0].field
        return _error(
            400,
            "invalid_request",
            f"invalid {field}: name only breaches that are confirmed exposures of "
            f"subscriber {subscriber_id}, or leave breach_names out for all of them",
            field,
        )
    return json_response(201, created)
