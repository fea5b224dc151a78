"""Account routes for reports: the list, a report of this month on request, downloads, dossiers.

The account router adds ROUTES to its own, so these run behind the same authorizer and act
only on the subscriber id of the verified access token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from idsentry.api import json_body, ok_response
from idsentry.clock import utc_now
from idsentry.http import json_response
from idsentry.routes.report_wiring import report_deps, report_objects, report_queue
from idsentry.services import dossiers, subscriber_reports
from idsentry.wiring import main_table

if TYPE_CHECKING:
    from idsentry.routes.account_routes import AccountRequest


def _list(request: AccountRequest) -> dict[str, Any]:
    return json_response(200, subscriber_reports.list_reports(main_table(), request.subscriber_id))


def _request(request: AccountRequest) -> dict[str, Any]:
    queued = subscriber_reports.request_report(
        main_table(), report_queue(), request.subscriber_id, utc_now()
    )
    return ok_response(202, queued, request.locale, "report.requested")


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


ROUTES: dict[str, Callable[[AccountRequest], dict[str, Any]]] = {
    "GET /v1/account/reports": _list,
    "POST /v1/account/reports": _request,
    "GET /v1/account/reports/{report_id}/{format}": _download,
    "POST /v1/account/dossier": _dossier,
}
