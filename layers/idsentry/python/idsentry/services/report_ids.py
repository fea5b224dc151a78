"""Report ids and the bought report's job, shared by the report functions and the billing consumer.

This module imports neither the renderer nor the report models, so the billing consumer can
queue a bought report without deploying them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from idsentry.clock import SHANGHAI
from idsentry.models.account_jobs import ReportJob

ReportKind = Literal["monthly", "on_demand", "deep"]
# The plan name of the one-off purchase that buys an in-depth report.
DEEP_REPORT_PLAN = "deep_report"


def report_id_for(subscriber_id: str, kind: ReportKind, period_key: str) -> str:
    """Return the report id of one subscriber, kind and period (a month, a day or a purchase)."""
    digest = hashlib.sha256(f"{subscriber_id}#{kind}#{period_key}".encode()).hexdigest()
    return f"rpt_{digest[:26]}"


def deep_report_id(subscriber_id: str, purchase_id: str) -> str:
    """Return the id of the report that one purchase bought."""
    return report_id_for(subscriber_id, "deep", purchase_id)


def current_month(now: datetime) -> str:
    """Return the calendar month of `now` in China time, as yyyy-mm."""
    return now.astimezone(SHANGHAI).strftime("%Y-%m")


def deep_report_job(subscriber_id: str, purchase_id: str, now: datetime) -> ReportJob:
    """Return the job of a bought report, one per purchase (the Checkout Session id)."""
    return ReportJob(
        job_id=f"report_deep_{purchase_id}",
        subscriber_id=subscriber_id,
        month=current_month(now),
        report_kind="deep",
        purchase_id=purchase_id,
    )
