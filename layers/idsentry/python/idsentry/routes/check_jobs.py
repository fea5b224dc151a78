"""Entry points of the daily breach check: the scheduled planner and the check-job worker."""

from __future__ import annotations

import logging
from functools import cache
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from idsentry.adapters.breach_index import BreachIndexReader
from idsentry.adapters.hibp import HibpClient
from idsentry.clock import utc_now
from idsentry.errors import PoisonMessageError
from idsentry.models.breach_jobs import CheckJob, HibpJob, PlanPageJob
from idsentry.services.breach_check import (
    CheckDeps,
    check_subscriber,
    lookup_hibp,
    plan_page,
    plan_run,
)
from idsentry.services.rate_limit import TokenBucket
from idsentry.settings import load_settings
from idsentry.settings.breach import BreachCheckSettings
from idsentry.wiring import data_keys, main_table, publisher, secret_cache

logger = logging.getLogger(__name__)


def _record_unauthorized() -> None:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = Metrics()
    metrics.add_metric(name="HibpUnauthorized", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()


@cache
def check_deps() -> CheckDeps:
    """Return the planner's and workers' dependencies."""
    from idsentry.adapters.queue import JobQueue

    settings = load_settings(BreachCheckSettings)

    @cache
    def hibp() -> HibpClient:
        secret = secret_cache().get_json(settings.hibp_secret_id)
        options: dict[str, Any] = (
            {"base_url": settings.hibp_base_url} if settings.hibp_base_url else {}
        )
        return HibpClient(str(secret.get("api_key", "")), **options)

    return CheckDeps(
        table=main_table(),
        index=BreachIndexReader(settings.breach_index_table),
        keys=data_keys(),
        jobs=JobQueue(settings.check_queue_url),
        hibp_jobs=JobQueue(settings.hibp_queue_url),
        publisher=publisher(),
        hibp=hibp,
        catalogue=hibp,
        bucket=TokenBucket(main_table(), "hibp", settings.hibp_requests_per_minute),
        clock=utc_now,
        on_hibp_unauthorized=_record_unauthorized,
    )


def run_planner() -> dict[str, str]:
    """Plan today's check run."""
    return plan_run(check_deps())


@cache
def _check_adapter() -> TypeAdapter[CheckJob | PlanPageJob]:
    # Built on the first check record, not in the planner's cold start, which validates none.
    return TypeAdapter(Annotated[CheckJob | PlanPageJob, Field(discriminator="kind")])


def process_check_record(message_id: str, body: str) -> str:
    """Run one check or page job; raises so SQS retries it."""
    try:
        job = _check_adapter().validate_json(body)
    except ValidationError as exc:
        logger.error("check job invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from exc
    if isinstance(job, PlanPageJob):
        return f"planned {plan_page(check_deps(), job)}"
    result = check_subscriber(check_deps(), job)
    logger.info(
        "subscriber checked",
        extra={"job_id": job.job_id, "status": result["status"], "hibp": result.get("hibp")},
    )
    return str(result["status"])


def process_hibp_record(message_id: str, body: str) -> str:
    """Run one HIBP lookup job; raises so SQS retries it."""
    try:
        job = HibpJob.model_validate_json(body)
    except ValidationError as exc:
        logger.error("hibp job invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from exc
    outcome = lookup_hibp(check_deps(), job)
    logger.info("hibp lookup done", extra={"job_id": job.job_id, "outcome": outcome})
    return outcome
