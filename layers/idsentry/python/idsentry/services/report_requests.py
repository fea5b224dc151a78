"""Staff requests for monthly security reports: one subscriber's month, or every entitled one's.

A request for every entitled subscriber continues the month's run (`REPORTRUN#{month}`) that
the scheduled planner uses, so a month whose run finished queues nothing more. A request for one
subscriber queues their monthly job unless the report was already announced. Either way a
subscriber whose account was created after the month ended is skipped. The report id is
derived from the subscriber and the month, and the worker renders and announces each id once,
so repeating a request renders and e-mails nothing twice. Responses and records carry
subscriber ids and report ids only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.services.entitled_runs import ENTITLED_INDEX_KEY, PAGE_SIZE
from idsentry.services.report_ids import current_month
from idsentry.services.subscriber_reports import (
    REPORT_PREFIX,
    SKIPPED_SIGNED_UP_AFTER,
    STATE_ANNOUNCED,
    job_report_id,
    monthly_job,
    previous_month,
    queue_monthly_reports,
    signed_up_after,
)

MONTH_PATTERN: Final = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
SUBSCRIBER_ID_PATTERN: Final = re.compile(r"sbr_[0-9A-HJKMNP-TV-Z]{26}")
RUN_FIELDS: Final = frozenset({"month", "subscriber_id"})
# Subscribers one state request may name: one BatchGetItem reads at most 100 keys.
MAX_STATE_SUBSCRIBERS: Final = 100
# Pages of entitled subscribers (PAGE_SIZE each) that one request queues. A page takes up to
# 100 SendMessageBatch and 31 BatchGetItem calls; two pages are an estimate that keeps a
# request well inside the admin function's 15-second timeout. The response has
# `finished: false` until the run is done.
PAGES_PER_REQUEST: Final = 2
# The state of a report that has no item yet: queued, or never requested.
STATE_PENDING: Final = "pending"
STATE_QUEUED: Final = "queued"


class ReportRequestError(ValueError):
    """A report request that cannot be served: `field` names the input, `status` the HTTP code."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass(frozen=True)
class ReportRunRequest:
    """A validated request: the month, and one subscriber or None for every entitled one."""

    month: str
    subscriber_id: str | None = None


def parse_run_request(payload: Mapping[str, Any], now: datetime) -> ReportRunRequest:
    """Validate `{"month", "subscriber_id"}` and return the request.

    The month defaults to the one before `now` in China time. Raises ReportRequestError naming
    the first invalid field.
    """
    unknown = sorted(set(payload) - RUN_FIELDS)
    if unknown:
        raise ReportRequestError(
            unknown[0], f"unknown field {unknown[0]}: expected month and subscriber_id only"
        )

    month = payload.get("month", previous_month(now))
    if not isinstance(month, str) or not MONTH_PATTERN.fullmatch(month):
        raise ReportRequestError("month", "invalid month: expected YYYY-MM, such as 2026-11")
    this_month = current_month(now)
    if month >= this_month:
        # A month's report is rendered once, so rendering it before the month ends would keep
        # the part-month report for good.
        raise ReportRequestError(
            "month",
            f"invalid month {month}: a monthly report covers a month that has ended, "
            f"so choose a month before {this_month} (China time)",
        )

    subscriber_id = payload.get("subscriber_id")
    if subscriber_id is not None:
        subscriber_id = parse_subscriber_id(subscriber_id)
    return ReportRunRequest(month=month, subscriber_id=subscriber_id)


def parse_subscriber_id(value: Any) -> str:
    """Return a subscriber id, or raise ReportRequestError naming `subscriber_id`."""
    if not isinstance(value, str) or not SUBSCRIBER_ID_PATTERN.fullmatch(value):
        raise ReportRequestError(
            "subscriber_id",
            "invalid subscriber_id: expected sbr_ and 26 characters, "
            "such as sbr_01M91REPA1R000000000000000",
        )
    return value


def request_monthly_reports(
    table: MainTable,
    jobs: JobQueue,
    request: ReportRunRequest,
    page_size: int = PAGE_SIZE,
    max_pages: int = PAGES_PER_REQUEST,
) -> dict[str, Any]:
    """Queue the month's reports of one subscriber or of every entitled subscriber.

    Returns the month and the scope, and counts the jobs this request queued, the reports
    already announced (not queued again) and the subscribers skipped. It lists each report's
    id and state (queued or announced) and each skipped subscriber with the reason, and says
    whether the month's run has finished. A subscriber whose account was created after the
    month ended is skipped. Raises ReportRequestError naming `subscriber_id` (404) for an unknown or deleted
    account and (409) for one that is not entitled, because the monthly run covers entitled
    subscribers only.
    """
    if request.subscriber_id is not None:
        return _request_one(table, jobs, request.subscriber_id, request.month)

    run = queue_monthly_reports(table, jobs, request.month, page_size, max_pages)
    states = [(subscriber_id, STATE_QUEUED) for subscriber_id in run.subscriber_ids]
    states += [(subscriber_id, STATE_ANNOUNCED) for subscriber_id in run.announced]
    return {
        "month": run.month,
        "scope": "entitled",
        "queued": len(run.subscriber_ids),
        "already_announced": len(run.announced),
        "skipped": len(run.skipped),
        "reports": [
            {
                "subscriber_id": subscriber_id,
                "report_id": job_report_id(monthly_job(subscriber_id, run.month)),
                "state": state,
            }
            for subscriber_id, state in states
        ],
        "skipped_subscribers": [
            {"subscriber_id": subscriber_id, "reason": reason}
            for subscriber_id, reason in run.skipped
        ],
        "finished": run.finished,
        "already_finished": run.already_finished,
    }


def _request_one(
    table: MainTable, jobs: JobQueue, subscriber_id: str, month: str
) -> dict[str, Any]:
    profile = table.get(f"SUB#{subscriber_id}", "PROFILE")
    if profile is None or profile.get("deletion_requested_at"):
        raise ReportRequestError(
            "subscriber_id", f"subscriber_id {subscriber_id} not found: no such account", 404
        )
    if profile.get("gsi1pk") != ENTITLED_INDEX_KEY:
        raise ReportRequestError(
            "subscriber_id",
            f"subscriber_id {subscriber_id} is not entitled to monitoring, and monthly "
            "reports cover entitled subscribers only",
            409,
        )

    job = monthly_job(subscriber_id, month)
    report_id = job_report_id(job)
    existing = table.get(f"SUB#{subscriber_id}", f"{REPORT_PREFIX}{report_id}")
    announced = existing is not None and existing.get("state") == STATE_ANNOUNCED
    if not announced and signed_up_after(
        month, profile, table.get(f"SUB#{subscriber_id}", "PREFS")
    ):
        return {
            "month": month,
            "scope": "subscriber",
            "queued": 0,
            "already_announced": 0,
            "skipped": 1,
            "reports": [],
            "skipped_subscribers": [
                {"subscriber_id": subscriber_id, "reason": SKIPPED_SIGNED_UP_AFTER}
            ],
            "finished": True,
            "already_finished": False,
        }
    if not announced:
        # A report that was stored but not announced is finished by the same job.
        jobs.send(job)
    return {
        "month": month,
        "scope": "subscriber",
        "queued": 0 if announced else 1,
        "already_announced": 1 if announced else 0,
        "skipped": 0,
        "reports": [
            {
                "subscriber_id": subscriber_id,
                "report_id": report_id,
                "state": STATE_ANNOUNCED if announced else STATE_QUEUED,
            }
        ],
        "skipped_subscribers": [],
        "finished": True,
        "already_finished": announced,
    }


def parse_state_request(month: str | None, query: Mapping[str, str]) -> tuple[str, list[str]]:
    """Validate the month of the path and `subscriber_ids` (comma-separated, 1 to 100)."""
    if month is None or not MONTH_PATTERN.fullmatch(month):
        raise ReportRequestError("month", "invalid month: expected YYYY-MM, such as 2026-11")
    listed = [part.strip() for part in query.get("subscriber_ids", "").split(",") if part.strip()]
    if not listed:
        raise ReportRequestError(
            "subscriber_ids",
            "missing subscriber_ids: name 1 to 100 subscriber ids, comma-separated",
        )
    unique = list(dict.fromkeys(listed))
    if len(unique) > MAX_STATE_SUBSCRIBERS:
        raise ReportRequestError(
            "subscriber_ids",
            f"too many subscriber_ids: {len(unique)}, at most {MAX_STATE_SUBSCRIBERS} a request",
        )
    for value in unique:
        if not SUBSCRIBER_ID_PATTERN.fullmatch(value):
            raise ReportRequestError(
                "subscriber_ids", "invalid subscriber_ids: each is sbr_ and 26 characters"
            )
    return month, unique


def report_states(table: MainTable, month: str, subscriber_ids: list[str]) -> dict[str, Any]:
    """Return the state of each subscriber's monthly report: pending, stored or announced."""
    report_ids = {
        subscriber_id: job_report_id(monthly_job(subscriber_id, month))
        for subscriber_id in subscriber_ids
    }
    found = table.get_many(
        [
            (f"SUB#{subscriber_id}", f"{REPORT_PREFIX}{report_id}")
            for subscriber_id, report_id in report_ids.items()
        ]
    )
    reports = []
    for subscriber_id, report_id in report_ids.items():
        item = found.get((f"SUB#{subscriber_id}", f"{REPORT_PREFIX}{report_id}"))
        state = str(item.get("state")) if item is not None else STATE_PENDING
        reports.append({"subscriber_id": subscriber_id, "report_id": report_id, "state": state})
    return {"month": month, "reports": reports}
