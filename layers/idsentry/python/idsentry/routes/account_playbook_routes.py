"""Account routes for the China playbooks: an alert's checklist, and the quarterly check results.

The account router adds ROUTES to its own, so these run behind the same authorizer and act
only on the subscriber id of the verified access token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from idsentry.api import json_body, ok_response
from idsentry.clock import epoch, utc_now
from idsentry.http import json_response
from idsentry.services import playbooks, quarterly_checks
from idsentry.wiring import main_table

if TYPE_CHECKING:
    from idsentry.routes.account_routes import AccountRequest


def _playbook(request: AccountRequest) -> dict[str, Any]:
    alert_id = request.http.path_parameters.get("alert_id", "")
    result = playbooks.alert_playbook(main_table(), request.subscriber_id, alert_id, request.locale)
    return json_response(200, result)


def _mark_step(request: AccountRequest) -> dict[str, Any]:
    done = playbooks.parse_step_change(json_body(request.http))
    result = playbooks.mark_step(
        main_table(),
        request.subscriber_id,
        request.http.path_parameters.get("alert_id", ""),
        request.http.path_parameters.get("step_id", ""),
        done,
        epoch(utc_now()),
        request.locale,
    )
    return json_response(200, result)


def _checks(request: AccountRequest) -> dict[str, Any]:
    result = quarterly_checks.check_history(main_table(), request.subscriber_id, request.locale)
    return json_response(200, result)


def _record_check(request: AccountRequest) -> dict[str, Any]:
    result = quarterly_checks.parse_check_result(json_body(request.http))
    recorded = quarterly_checks.record_check(
        main_table(), request.subscriber_id, result, utc_now(), request.locale
    )
    return ok_response(200, recorded, request.locale, "check.recorded")


ROUTES: dict[str, Callable[[AccountRequest], dict[str, Any]]] = {
    "GET /v1/account/alerts/{alert_id}/playbook": _playbook,
    "PUT /v1/account/alerts/{alert_id}/playbook/{step_id}": _mark_step,
    "GET /v1/account/checks": _checks,
    "POST /v1/account/checks": _record_check,
}
