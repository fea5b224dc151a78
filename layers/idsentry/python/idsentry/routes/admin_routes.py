"""Routes of the operators' admin API (IAM-authorized): intake jobs and the breach catalogue."""

from __future__ import annotations

import logging
from typing import Any

from idsentry.http import json_response, parse_http_event
from idsentry.services.intake import job_report
from idsentry.wiring import main_table

logger = logging.getLogger(__name__)

BREACH_HIDDEN_FIELDS = ("pk", "sk")


def _not_found(what: str) -> dict[str, Any]:
    return json_response(404, {"error": {"code": "not_found", "message": f"{what} not found"}})


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """Dispatch one admin request; every route needs IAM credentials (checked by API Gateway)."""
    request = parse_http_event(event)
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    caller = (authorizer.get("iam") or {}).get("userArn")
    logger.info("admin request", extra={"route": request.route_key, "caller": caller})

    if request.route_key == "GET /v1/admin/intake-jobs/{job_id}":
        report = job_report(main_table(), request.path_parameters["job_id"])
        return json_response(200, report) if report else _not_found("intake job")
    if request.route_key == "GET /v1/admin/breaches/{name}":
        item = main_table().get(f"BREACH#{request.path_parameters['name']}", "BREACH")
        if item is None:
            return _not_found("breach")
        return json_response(
            200, {key: value for key, value in item.items() if key not in BREACH_HIDDEN_FIELDS}
        )
    return _not_found("route")
