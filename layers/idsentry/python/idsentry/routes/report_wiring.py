"""Dependencies of the report functions and of the account's report routes."""

from __future__ import annotations

from functools import cache

from idsentry.adapters.exports import ExportObjects
from idsentry.adapters.queue import JobQueue
from idsentry.clock import utc_now
from idsentry.services.subscriber_reports import ReportDeps
from idsentry.settings import CoreSettings, load_settings
from idsentry.wiring import main_table, publisher


class ReportSettings(CoreSettings):
    """Settings of the report planner, the report worker and the account's report routes."""

    reports_bucket: str
    report_queue_url: str
    # The account routes only: the signup function's BillingPlans JSON, whose deep_report plan
    # the account page offers. Unset, POST /v1/account/deep-report answers that it is not offered.
    billing_plans: str | None = None


@cache
def report_objects() -> ExportObjects:
    """Return the reports bucket, written with SSE-KMS under the service's key."""
    settings = load_settings(ReportSettings)
    return ExportObjects(settings.reports_bucket, settings.data_key_arn)


@cache
def report_queue() -> JobQueue:
    """Return the queue of report jobs."""
    return JobQueue(load_settings(ReportSettings).report_queue_url)


@cache
def report_deps() -> ReportDeps:
    """Return the dependencies of rendering and storing a report."""
    return ReportDeps(
        table=main_table(), objects=report_objects(), publisher=publisher(), clock=utc_now
    )
