"""Admin routes of the finance reconciliation: start a run, and read it with download links.

`POST /v1/admin/reconciliations` takes {"from", "to", "repair", "locale"} and an optional
`Idempotency-Key` header, and returns 202 with the run's id and status. `GET
/v1/admin/reconciliations/{reconciliation_id}` returns the status and counts, and once the run
is done, presigned links to its four files, valid for LINK_SECONDS. Both write an
audit record with the caller's IAM ARN.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any, Final

from idsentry.adapters.finance_files import FinanceFiles
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.clock import Clock, epoch, utc_now
from idsentry.http import HttpRequest, RequestBodyError, json_response
from idsentry.services import reconcile_runs as runs
from idsentry.services.audit import AuditRecord, AuditTrail
from idsentry.services.reconcile_model import ReconcileInputError
from idsentry.settings import load_settings
from idsentry.settings.admin import AdminSettings
from idsentry.wiring import main_table

logger = logging.getLogger(__name__)

REQUEST_ROUTE: Final = "POST /v1/admin/reconciliations"
VIEW_ROUTE: Final = "GET /v1/admin/reconciliations/{reconciliation_id}"
ROUTES: Final = (REQUEST_ROUTE, VIEW_ROUTE)
LINK_SECONDS: Final = 300


class ReconciliationAdminSettings(AdminSettings):
    """Settings the admin API needs for reconciliations: the queue and the finance bucket."""

    reconciliation_queue_url: str
    finance_bucket: str


@dataclass
class ReconciliationAdminDeps:
    """The table, the job queue, the finance bucket, the audit trail and a clock."""

    table: MainTable
    queue: JobQueue
    files: FinanceFiles
    audit: AuditTrail
    clock: Clock


@cache
def admin_deps() -> ReconciliationAdminDeps:
    """Return the reconciliation routes' dependencies."""
    settings = load_settings(ReconciliationAdminSettings)
    return ReconciliationAdminDeps(
        table=main_table(),
        queue=JobQueue(settings.reconciliation_queue_url),
        files=FinanceFiles(settings.finance_bucket, settings.data_key_arn),
        audit=AuditTrail(settings.audit_table_name),
        clock=utc_now,
    )


def _error(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return json_response(status, {"error": error})


def handle(request: HttpRequest, caller: str | None) -> dict[str, Any]:
    """Serve one reconciliation route. The caller's ARN is required for the audit record."""
    if not caller:
        return _error(403, "forbidden", "the request carries no IAM caller identity")
    deps = admin_deps()
    if request.route_key == REQUEST_ROUTE:
        return _request(deps, request, caller)
    return _view(deps, request, caller)


def _request(deps: ReconciliationAdminDeps, request: HttpRequest, caller: str) -> dict[str, Any]:
    now = deps.clock()
    try:
        parsed = runs.parse_request(
            request.json(), request.header("idempotency-key"), runs.beijing_date(now)
        )
        outcome = runs.request_run(
            deps.table, deps.queue, parsed, request_id=request.request_id, now=now
        )
    except RequestBodyError as exc:
        return _error(400, "invalid_request", str(exc), exc.field)
    except ReconcileInputError as exc:
        return _error(400, "invalid_request", str(exc), exc.field)

    record = outcome.record
    reconciliation_id = str(record["reconciliation_id"])
    deps.audit.write(
        AuditRecord(
            action="reconciliation.request",
            actor=caller,
            request_id=request.request_id,
            subject=f"RECONCILIATION#{reconciliation_id}",
            at=now,
            outcome="created" if outcome.created else "existing",
        )
    )
    body = {**runs.run_view(record), "created": outcome.created}
    location = f"/v1/admin/reconciliations/{reconciliation_id}"
    return json_response(202, body, headers={"location": location})


def _view(deps: ReconciliationAdminDeps, request: HttpRequest, caller: str) -> dict[str, Any]:
    reconciliation_id = request.path_parameters.get("reconciliation_id")
    if not runs.is_valid_id(reconciliation_id):
        return _error(
            400,
            "invalid_request",
            "invalid reconciliation_id: expected an id such as rcn_day_20261204 or the id "
            "that POST /v1/admin/reconciliations returned",
            "reconciliation_id",
        )
    assert reconciliation_id is not None
    try:
        record = runs.get_run(deps.table, reconciliation_id)
    except runs.RunNotFoundError:
        return _error(404, "not_found", "reconciliation not found")

    now = deps.clock()
    view = runs.run_view(record)
    done = record["status"] == runs.DONE
    # The record is written before any link is handed out, so every download is traceable.
    deps.audit.write(
        AuditRecord(
            action="reconciliation.view",
            actor=caller,
            request_id=request.request_id,
            subject=f"RECONCILIATION#{reconciliation_id}",
            at=now,
            outcome="links" if done else "viewed",
        )
    )
    if done:
        view["files"] = [
            {
                "name": name,
                "content_type": content_type,
                "url": deps.files.presigned_url(
                    runs.file_key(reconciliation_id, name),
                    LINK_SECONDS,
                    f"{reconciliation_id}-{name}",
                ),
            }
            for name, content_type in runs.FILES.items()
        ]
        view["links_expire_at"] = epoch(now + timedelta(seconds=LINK_SECONDS))
    return json_response(200, view)
