"""Account routes for the subscriber's PIPL rights: a copy of their data, deletion, withdrawal.

The account router adds ROUTES to its own, so these run behind the same authorizer and act
only on the subscriber id of the verified access token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from idsentry.api import json_body, ok_response
from idsentry.clock import utc_now
from idsentry.errors import FieldProblem, RequestValidationError
from idsentry.routes.privacy_wiring import (
    audit_trail,
    breach_index,
    deletion_queue,
    export_deps,
)
from idsentry.services import consent_withdrawal, deletion_request, export
from idsentry.wiring import main_table

if TYPE_CHECKING:
    from idsentry.routes.account_routes import AccountRequest


def _requester(request: AccountRequest) -> export.Requester:
    return export.Requester(request.subscriber_id, request.http.request_id)


def _create_export(request: AccountRequest) -> dict[str, Any]:
    # 201: both files exist when this returns, and the links point at them.
    result = export.create_export(export_deps(), _requester(request))
    return ok_response(201, result, request.locale, "export.ready")


def _export_links(request: AccountRequest) -> dict[str, Any]:
    export_id = request.http.path_parameters.get("export_id", "")
    result = export.export_links(export_deps(), _requester(request), export_id)
    return ok_response(200, result, request.locale, "export.ready")


def _no_fields(request: AccountRequest) -> None:
    """Reject a body other than none or an empty JSON object, naming the unknown fields."""
    if not request.http.body:
        return
    fields = json_body(request.http)
    if fields:
        raise RequestValidationError(
            [FieldProblem(name, "field.unknown") for name in sorted(fields)]
        )


def _delete_account(request: AccountRequest) -> dict[str, Any]:
    _no_fields(request)
    result = deletion_request.request_deletion(
        main_table(),
        deletion_queue(),
        audit_trail(),
        request.subscriber_id,
        request.http.request_id,
        utc_now,
    )
    return ok_response(202, result, request.locale, "account.deletion_requested")


def _withdraw_sensitive_consent(request: AccountRequest) -> dict[str, Any]:
    _no_fields(request)
    result = consent_withdrawal.withdraw_sensitive_consent(
        main_table(), breach_index(), request.subscriber_id, utc_now
    )
    return ok_response(200, result, request.locale, "consent.sensitive_withdrawn")


ROUTES: dict[str, Callable[[AccountRequest], dict[str, Any]]] = {
    "POST /v1/account/export": _create_export,
    "GET /v1/account/export/{export_id}": _export_links,
    "DELETE /v1/account": _delete_account,
    "POST /v1/account/consents/sensitive_personal_information/withdraw": (
        _withdraw_sensitive_consent
    ),
}
