"""Entry points of the daily breach check: the scheduled planner and the check-job worker."""

from __future__ import annotations

import logging
from functools import cache

from pydantic import ValidationError

from idsentry.adapters.breach_index import BreachIndexReader
from idsentry.adapters.hibp import HibpClient
from idsentry.clock import utc_now
from idsentry.errors import PoisonMessageError
from idsentry.models.jobs import CheckJob
from idsentry.services.breach_check import CheckDeps, check_subscriber, plan_run
from idsentry.services.rate_limit import TokenBucket
from idsentry.settings import BreachCheckSettings, load_settings
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
        options = {"base_url": settings.hibp_base_url} if settings.hibp_base_url else {}
        return HibpClient(str(secret.get("api_key", "")), **options)

    return CheckDeps(
        table=main_table(),
        index=BreachIndexReader(settings.breach_index_table),
        keys=data_keys(),
        jobs=JobQueue(settings.check_queue_url),
        publisher=publisher(),
        hibp=hibp,
        catalogue=hibp,
        bucket=TokenBucket(main_table(), "hibp", settings.hibp_requests_per_minute),
        clock=utc_now,
        on_hibp_unauthorized=_record_unauthorized,
    )


def run_planner() -> dict[str, int]:
    """Plan today's check run."""
    return plan_run(check_deps())


def process_check_record(message_id: str, body: str) -> str:
    """Check one subscriber; raises so SQS retries the job."""
    try:
        job = CheckJob.model_validate_json(body)
    except ValidationError as exc:
        logger.error("check job invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from exc
    result = check_subscriber(check_deps(), job)
    logger.info(
        "subscriber checked",
        extra={"job_id": job.job_id, "status": result["status"], "hibp": result.get("hibp")},
    )
    return str(result["status"])
