"""Subscribers' security reports: plan, render, store, announce, list and hand out.

A report job renders one subscriber's report of one month as HTML and PDF (`idsentry.reports`)
from the items of their partition and stores both in the reports bucket under
`reports/{subscriber_id}/{report_id}/`. The item `REPORT#{report_id}` records it, then
`Report.Generated` is published and the item marked `announced`. The report id is derived from
the subscriber, the kind and the month (or the day, or the purchase), so a job delivered twice
renders into the same keys and announces once. Identifiers appear only in the masked form that
is stored with them, so nothing is decrypted.

Downloads go through the account route: the subscriber's access token selects the partition,
and the route hands out a presigned URL that works for LINK_SECONDS. Links in e-mails point to
the account page instead, because a URL presigned with a function's temporary credentials stops
working when they expire.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.exports import ExportObjects
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.clock import SHANGHAI, Clock
from idsentry.errors import FieldProblem, NotFoundError, RequestValidationError
from idsentry.models.events import ReportGenerated
from idsentry.models.jobs import ReportJob
from idsentry.object_keys import report_prefix
from idsentry.reports.assess import latest_results, report_period
from idsentry.reports.model import (
    CheckResult,
    SubscriberFacts,
    from_records,
    related_keys,
    report_data,
    sms_pointer_keys,
)
from idsentry.services.entitled_runs import PAGE_SIZE, run_over_entitled
from idsentry.services.subscriber_records import read_many

logger = logging.getLogger(__name__)

ReportKind = Literal["monthly", "on_demand", "deep"]
REPORT_PREFIX = "REPORT#"
# Presigned download URLs work this long; the account page requests a new one on each click.
LINK_SECONDS = 5 * 60
FILES: dict[str, tuple[str, str]] = {
    "html": ("report.html", "text/html; charset=utf-8"),
    "pdf": ("report.pdf", "application/pdf"),
}
STATE_STORED = "stored"
STATE_ANNOUNCED = "announced"


class ReportNotFoundError(NotFoundError):
    """The account has no report with this id, or not in this format."""

    def __init__(self) -> None:
        super().__init__("report.not_found")


@dataclass
class ReportDeps:
    """Dependencies of rendering and storing a report."""

    table: MainTable
    objects: ExportObjects
    publisher: EventPublisher
    clock: Clock


def report_id_for(subscriber_id: str, kind: ReportKind, period_key: str) -> str:
    """Return the report id of one subscriber, kind and period (a month, a day or a purchase)."""
    digest = hashlib.sha256(f"{subscriber_id}#{kind}#{period_key}".encode()).hexdigest()
    return f"rpt_{digest[:26]}"


def object_key(subscriber_id: str, report_id: str, file_format: str) -> str:
    """Return the bucket key of one file of a report."""
    return f"{report_prefix(subscriber_id)}{report_id}/{FILES[file_format][0]}"


def previous_month(now: datetime) -> str:
    """Return the calendar month before `now` in China time, as yyyy-mm."""
    local = now.astimezone(SHANGHAI)
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def current_month(now: datetime) -> str:
    """Return the calendar month of `now` in China time, as yyyy-mm."""
    return now.astimezone(SHANGHAI).strftime("%Y-%m")


def monthly_job(subscriber_id: str, month: str) -> ReportJob:
    """Return the monthly report job of one subscriber; its id is the same on every run."""
    return ReportJob(
        job_id=f"report_monthly_{month}_{subscriber_id}",
        subscriber_id=subscriber_id,
        month=month,
        report_kind="monthly",
    )


def plan_monthly_reports(
    table: MainTable, jobs: JobQueue, now: datetime, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    """Queue the previous month's report job for every entitled subscriber; safe to repeat."""
    month = previous_month(now)

    def queue_page(subscribers: list[str]) -> None:
        jobs.send_many([monthly_job(subscriber, month) for subscriber in subscribers])

    outcome = run_over_entitled(
        table, f"REPORTRUN#{month}", queue_page, page_size, {"month": month}
    )
    logger.info(
        "monthly reports planned",
        extra={
            "month": month,
            "queued": outcome.handed_out,
            "already_finished": outcome.already_finished,
        },
    )
    return {
        "month": month,
        "queued": outcome.handed_out,
        "already_finished": outcome.already_finished,
    }


def on_demand_job(subscriber_id: str, now: datetime) -> ReportJob:
    """Return the job of a report the subscriber asked for: this month so far, one per China day."""
    day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
    return ReportJob(
        job_id=f"report_on_demand_{day}_{subscriber_id}",
        subscriber_id=subscriber_id,
        month=current_month(now),
        report_kind="on_demand",
    )


def deep_report_job(subscriber_id: str, purchase_id: str, now: datetime) -> ReportJob:
    """Return the job of a bought report, one per purchase."""
    return ReportJob(
        job_id=f"report_deep_{purchase_id}",
        subscriber_id=subscriber_id,
        month=current_month(now),
        report_kind="deep",
        purchase_id=purchase_id,
    )


def job_report_id(job: ReportJob) -> str:
    """Return the id of the report that a job renders."""
    if job.report_kind == "deep":
        # NOTE: a bought report renders the same content as the monthly one. Its in-depth
        # sections are not built, and billing does not queue this job yet.
        if not job.purchase_id:
            raise ValueError("a deep report job needs purchase_id")
        return report_id_for(job.subscriber_id, "deep", job.purchase_id)
    if job.report_kind == "on_demand":
        return report_id_for(job.subscriber_id, "on_demand", job.job_id)
    return report_id_for(job.subscriber_id, "monthly", job.month)


def request_report(
    table: MainTable, jobs: JobQueue, subscriber_id: str, now: datetime
) -> dict[str, Any]:
    """Queue the subscriber's own report of this month so far; a second request that day repeats the first."""
    profile = table.get(f"SUB#{subscriber_id}", "PROFILE")
    if profile is None or profile.get("deletion_requested_at"):
        raise NotFoundError("account.not_found")

    job = on_demand_job(subscriber_id, now)
    report_id = job_report_id(job)
    existing = table.get(f"SUB#{subscriber_id}", f"{REPORT_PREFIX}{report_id}")
    if existing is None:
        jobs.send(job)
    return {
        "report_id": report_id,
        "month": job.month,
        "state": existing.get("state") if existing else "queued",
    }


def generate_report(deps: ReportDeps, job: ReportJob) -> str:
    """Render, store and announce one report; returns the outcome for the logs.

    A job whose report was already announced changes nothing. One that stopped after storing
    the files publishes the event again, which the notifier's ledger makes harmless.
    """
    report_id = job_report_id(job)
    pk = f"SUB#{job.subscriber_id}"
    items = deps.table.get_partition(pk)
    profile = items.get("PROFILE")
    if profile is None or profile.get("deletion_requested_at"):
        logger.info("report skipped", extra={"report_id": report_id, "reason": "no_account"})
        return "no_account"

    existing = items.get(f"{REPORT_PREFIX}{report_id}")
    if existing is not None and existing.get("state") == STATE_ANNOUNCED:
        logger.info("report already announced", extra={"report_id": report_id})
        return "duplicate"

    if existing is None:
        generated_at = deps.clock()
        shown_results = _render_and_store(deps, job, report_id, items, generated_at)
        deps.table.put(
            {
                "pk": pk,
                "sk": f"{REPORT_PREFIX}{report_id}",
                "report_id": report_id,
                "report_kind": job.report_kind,
                "month": job.month,
                "purchase_id": job.purchase_id,
                "generated_at": generated_at.astimezone(UTC).isoformat(),
                "check_results": json.dumps(shown_results, sort_keys=True),
                "state": STATE_STORED,
            }
        )

    deps.publisher.publish(
        [
            ReportGenerated(
                event_id=f"evt_{report_id}",
                subscriber_id=job.subscriber_id,
                report_id=report_id,
                report_kind=job.report_kind,
                month=job.month,
            )
        ]
    )
    deps.table.update(
        pk,
        f"{REPORT_PREFIX}{report_id}",
        "SET #state = :announced",
        values={":announced": STATE_ANNOUNCED},
        names={"#state": "state"},
    )
    logger.info(
        "report generated",
        extra={"report_id": report_id, "report_kind": job.report_kind, "month": job.month},
    )
    return "generated"


def _render_and_store(
    deps: ReportDeps,
    job: ReportJob,
    report_id: str,
    items: dict[str, dict[str, Any]],
    generated_at: datetime,
) -> list[dict[str, Any]]:
    """Render both files into the bucket; return the check results the report showed."""
    from idsentry.reports.document import report_document
    from idsentry.reports.html import render_html
    from idsentry.reports.pdf import render_pdf

    facts = subscriber_facts(deps, job.subscriber_id, items)
    data = report_data(facts, job.month, generated_at, _previous_results(items, job.month))
    document = report_document(data)

    deps.objects.put(
        object_key(job.subscriber_id, report_id, "html"),
        render_html(document).encode("utf-8"),
        FILES["html"][1],
    )
    deps.objects.put(
        object_key(job.subscriber_id, report_id, "pdf"), render_pdf(document), FILES["pdf"][1]
    )

    end = report_period(job.month, facts.zone).end
    latest = latest_results(facts.check_results, end)
    return [result.model_dump(mode="json") for result in latest.values()]


def subscriber_facts(
    deps: ReportDeps, subscriber_id: str, items: dict[str, dict[str, Any]]
) -> SubscriberFacts:
    """Return what reports and dossiers show of a subscriber, from their partition's items."""
    related = read_many(deps.table, related_keys(items))
    related.update(read_many(deps.table, sms_pointer_keys(related)))
    return from_records(subscriber_id, items, related, masked_identifiers(items))


def masked_identifiers(items: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Return the stored masked form of each watched identifier, by kind."""
    masked: dict[str, list[str]] = {}
    for sk, item in sorted(items.items()):
        if sk.startswith("IDENT#") and item.get("masked"):
            kind = sk.removeprefix("IDENT#").split("#", 1)[0]
            masked.setdefault(kind, []).append(str(item["masked"]))
    return masked


def _previous_results(items: dict[str, dict[str, Any]], month: str) -> list[CheckResult] | None:
    """Return the check results of the latest earlier monthly report, or None without one."""
    earlier = [
        item
        for sk, item in items.items()
        if sk.startswith(REPORT_PREFIX)
        and item.get("report_kind") == "monthly"
        and str(item.get("month")) < month
    ]
    if not earlier:
        return None
    latest = max(earlier, key=lambda item: str(item["month"]))
    return [CheckResult.model_validate(entry) for entry in json.loads(latest["check_results"])]


def list_reports(table: MainTable, subscriber_id: str) -> dict[str, Any]:
    """Return the subscriber's reports, newest month first, without links."""
    items = table.get_partition(f"SUB#{subscriber_id}")
    profile = items.get("PROFILE")
    if profile is None or profile.get("deletion_requested_at"):
        raise NotFoundError("account.not_found")
    reports = [
        {
            "report_id": item["report_id"],
            "report_kind": item["report_kind"],
            "month": item["month"],
            "generated_at": item["generated_at"],
            "formats": sorted(FILES),
        }
        for sk, item in items.items()
        if sk.startswith(REPORT_PREFIX)
    ]
    reports.sort(key=lambda entry: (entry["month"], entry["generated_at"]), reverse=True)
    return {"reports": reports}


def download_link(
    table: MainTable,
    objects: ExportObjects,
    subscriber_id: str,
    report_id: str,
    file_format: str,
    now: Callable[[], datetime],
) -> dict[str, Any]:
    """Return a presigned URL of one file of the subscriber's own report.

    Raises RequestValidationError for an unknown format and ReportNotFoundError when the
    report is not this subscriber's.
    """
    if file_format not in FILES:
        raise RequestValidationError([FieldProblem("format", "report.format_invalid")])
    item = table.get(f"SUB#{subscriber_id}", f"{REPORT_PREFIX}{report_id}")
    if item is None:
        raise ReportNotFoundError()

    month = str(item["month"])
    filename = f"idsentry-report-{month}.{file_format}"
    url = objects.presigned_url(
        object_key(subscriber_id, report_id, file_format), LINK_SECONDS, filename
    )
    expires_at = now().astimezone(UTC).timestamp() + LINK_SECONDS
    return {
        "report_id": report_id,
        "format": file_format,
        "url": url,
        "expires_at": datetime.fromtimestamp(expires_at, UTC).isoformat(),
    }
