"""Account routes for reports: the list, a report on request, downloads, dossiers, a deep report.

The account router adds ROUTES to its own, so these run behind the same authorizer and act
only on the subscriber id of the verified access token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from idsentry.api import json_body, ok_response
from idsentry.clock import epoch, utc_now
from idsentry.errors import FieldProblem, RequestValidationError
from idsentry.http import json_response
from idsentry.routes.report_wiring import (
    ReportSettings,
    report_deps,
    report_objects,
    report_queue,
)
from idsentry.services import deep_report_links, dossiers, subscriber_reports
from idsentry.settings import load_settings
from idsentry.wiring import main_table, pepper_loader

if TYPE_CHECKING:
    from idsentry.routes.account_routes import AccountRequest


def _list(request: AccountRequest) -> dict[str, Any]:
    return json_response(200, subscriber_reports.list_reports(main_table(), request.subscriber_id))


def _reject_fields(request: AccountRequest) -> None:
    """Accept an empty body or {}; raise RequestValidationError naming every field sent."""
    body = json_body(request.http) if request.http.body else {}
    if body:
        raise RequestValidationError([FieldProblem(name, "field.unknown") for name in sorted(body)])


def _request(request: AccountRequest) -> dict[str, Any]:
    # The report always covers this month so far, so a field such as "month" is rejected
    # rather than ignored.
    _reject_fields(request)
    queued = subscriber_reports.request_report(
        main_table(), report_queue(), request.subscriber_id, utc_now()
    )
    ready = queued["state"] == subscriber_reports.STATE_ANNOUNCED
    return ok_response(
        202, queued, request.locale, "report.ready_today" if ready else "report.requested"
    )


def _download(request: AccountRequest) -> dict[str, Any]:
    link = subscriber_reports.download_link(
        main_table(),
        report_objects(),
        request.subscriber_id,
        request.http.path_parameters.get("report_id", ""),
        request.http.path_parameters.get("format", ""),
        utc_now,
    )
    return json_response(200, link)


def _dossier(request: AccountRequest) -> dict[str, Any]:
    body = json_body(request.http) if request.http.body else {}
    created = dossiers.create_dossier(
        report_deps(), request.subscriber_id, dossiers.parse_dossier_request(body)
    )
    return ok_response(201, created, request.locale, "dossier.created")


def _deep_report(request: AccountRequest) -> dict[str, Any]:
    _reject_fields(request)
    settings = load_settings(ReportSettings)
    link = deep_report_links.deep_report_link(
        main_table(),
        lambda: pepper_loader(settings),
        settings.public_base_url,
        settings.billing_plans,
        request.subscriber_id,
        epoch(utc_now()),
    )
    return ok_response(200, link, request.locale, "deep_report.checkout")


ROUTES: dict[str, Callable[[AccountRequest], dict[str, Any]]] = {
    "GET /v1/account/reports": _list,
    "POST /v1/account/reports": _request,
    "GET /v1/account/reports/{report_id}/{format}": _download,
    "POST /v1/account/dossier": _dossier,
    "POST /v1/account/deep-report": _deep_report,
}
