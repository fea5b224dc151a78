"""Entry points of the reconciliation planner (schedule) and worker (queue), with their wiring."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from idsentry.adapters.queue import JobQueue
from idsentry.clock import Clock, utc_now
from idsentry.errors import PoisonMessageError
from idsentry.models.billing_jobs import ReconciliationJob
from idsentry.services.reconcile_runs import plan_daily
from idsentry.settings import CoreSettings, load_settings
from idsentry.settings.billing import StripeEventsSettings
from idsentry.wiring import main_table, secret_cache

if TYPE_CHECKING:
    from idsentry.adapters.stripe_lists import StripeSdkLists
    from idsentry.services.reconcile import ReconcileDeps
    from idsentry.services.reconcile_worker import WorkerDeps

logger = logging.getLogger(__name__)


class ReconciliationPlannerSettings(CoreSettings):
    """Settings of the daily reconciliation planner."""

    reconciliation_queue_url: str


class ReconciliationWorkerSettings(StripeEventsSettings):
    """Settings of the reconciliation worker, a superset of the Stripe event consumer's.

    Repair mode applies events through the consumer's own dependencies, so the worker reads
    the same Stripe secret and billing plans.
    """

    finance_bucket: str
    email_sender: str
    # The finance e-mail's recipient. Empty sends none.
    finance_email: str = ""


@cache
def planner_queue() -> JobQueue:
    """Return the reconciliation job queue, for the planner."""
    return JobQueue(load_settings(ReconciliationPlannerSettings).reconciliation_queue_url)


# The modules that `worker_deps` and a job import. The worker loads them while its instance
# initialises.
WORKER_MODULES = (
    "idsentry.adapters.email",
    "idsentry.adapters.finance_files",
    "idsentry.adapters.stripe_lists",
    "idsentry.routes.billing_jobs",
    "idsentry.services.reconcile",
    "idsentry.services.reconcile_ledger",
    "idsentry.services.reconcile_worker",
    "stripe",
)


@cache
def worker_deps() -> WorkerDeps:
    """Return the reconciliation worker's dependencies.

    The worker's modules (billing, the Stripe lists, SES, the finance files) are imported here,
    so the planner, which shares this module, does not load them in its cold start.
    """
    from idsentry.adapters.email import SesEmail
    from idsentry.adapters.finance_files import FinanceFiles
    from idsentry.adapters.stripe_lists import StripeSdkLists
    from idsentry.routes.billing_jobs import billing_deps
    from idsentry.services.reconcile import ReconcileDeps
    from idsentry.services.reconcile_ledger import TableLedgerSource
    from idsentry.services.reconcile_worker import WorkerDeps

    settings = load_settings(ReconciliationWorkerSettings)

    @cache
    def lists() -> StripeSdkLists:
        secret = secret_cache().get_json(settings.stripe_secret_id)
        return StripeSdkLists(str(secret.get("api_key", "")), base_url=settings.stripe_base_url)

    def reconcile_deps(repair: bool) -> ReconcileDeps:
        return ReconcileDeps(
            stripe=lists(),
            ledger=TableLedgerSource(main_table()),
            clock=utc_now,
            grace_seconds=settings.past_due_grace_seconds,
            billing=billing_deps() if repair else None,
        )

    return WorkerDeps(
        table=main_table(),
        reconcile_deps=reconcile_deps,
        files=FinanceFiles(settings.finance_bucket, settings.data_key_arn),
        email=cache(lambda: SesEmail(settings.email_sender)),
        finance_email=settings.finance_email.strip(),
        clock=utc_now,
    )


def scheduled_time(event: Mapping[str, Any], clock: Clock = utc_now) -> datetime:
    """Return the schedule's `scheduled_time` from the event, or now when it has none.

    EventBridge Scheduler fills in `<aws.scheduler.scheduled-time>`, so a late or retried
    invocation still plans the day its schedule was for.
    """
    text = event.get("scheduled_time") if isinstance(event, Mapping) else None
    if isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            logger.warning("schedule time invalid, using the current time")
        else:
            if moment.tzinfo is not None:
                return moment
    return clock()


def plan_reconciliation(event: Mapping[str, Any]) -> dict[str, Any]:
    """Queue the previous day's reconciliation (Asia/Shanghai) of the schedule's event."""
    return plan_daily(main_table(), planner_queue(), scheduled_time(event))


def process_reconciliation_record(message_id: str, body: str) -> str:
    """Run the reconciliation job of one queue message; raises so SQS retries it."""
    try:
        job = ReconciliationJob.model_validate_json(body)
    except ValidationError as exc:
        logger.error("reconciliation job invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from exc

    from idsentry.services.reconcile_worker import run_job

    outcome = run_job(worker_deps(), job)
    logger.info(
        "reconciliation job processed",
        extra={
            "job_id": job.job_id,
            "reconciliation_id": job.reconciliation_id,
            "outcome": outcome,
        },
    )
    return outcome
