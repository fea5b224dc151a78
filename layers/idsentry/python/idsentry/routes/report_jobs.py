"""Report jobs from SQS: render, store and announce one report per message."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from idsentry.errors import PoisonMessageError
from idsentry.models.account_jobs import ReportJob
from idsentry.routes.report_wiring import report_deps
from idsentry.services.subscriber_reports import generate_report

logger = logging.getLogger(__name__)


def process_report_record(message_id: str, body: str) -> str:
    """Run the report job of one queue message; raises so SQS retries it."""
    try:
        job = ReportJob.model_validate_json(body)
    except ValidationError as exc:
        logger.error("report job invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from exc
    outcome = generate_report(report_deps(), job)
    logger.info(
        "report job processed",
        extra={"job_id": job.job_id, "subscriber_id": job.subscriber_id, "outcome": outcome},
    )
    return outcome
