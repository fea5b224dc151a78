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

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.exports import ExportObjects
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.clock import SHANGHAI, Clock
from idsentry.errors import FieldProblem, NotFoundError, RequestValidationError
from idsentry.models.account_jobs import ReportJob
from idsentry.object_keys import REPORT_FILE_NAMES, report_file_key
from idsentry.services.entitled_runs import PAGE_SIZE, run_over_entitled
from idsentry.services.report_ids import (
    DEEP_REPORT_PLAN,
    current_month,
    deep_report_id,
    report_id_for,
)
from idsentry.services.subscriber_records import read_many

if TYPE_CHECKING:
    from idsentry.reports.document import Document
    from idsentry.reports.model import CheckResult, SubscriberFacts

# The report models and their rules (playbooks, risk, breach kinds) are imported where a report
# is rendered. The monthly planner and the account routes import this module only to queue and
# list reports, so their cold starts do not load them. The report worker renders on every job,
# so it loads these while its instance initialises, except the bought report's assessment, which
# few jobs need. fontTools imports a table's module when a font first reads the table, so the
# list names the tables of the bundled font.
RENDERING_MODULES = (
    "idsentry.models.events",
    "idsentry.reports.assess",
    "idsentry.reports.document",
    "idsentry.reports.html",
    "idsentry.reports.model",
    "idsentry.reports.pdf",
    *(
        f"fontTools.ttLib.tables.{table}"
        for table in (
            "O_S_2f_2",
            "_c_m_a_p",
            "_g_a_s_p",
            "_g_l_y_f",
            "_h_e_a_d",
            "_h_h_e_a",
            "_h_m_t_x",
            "_l_o_c_a",
            "_m_a_x_p",
            "_n_a_m_e",
            "_p_o_s_t",
        )
    ),
)

logger = logging.getLogger(__name__)

REPORT_PREFIX = "REPORT#"
PURCHASE_PREFIX = "PURCHASE#"
# Presigned download URLs work this long; the account page requests a new one on each click.
LINK_SECONDS = 5 * 60
FILES: dict[str, tuple[str, str]] = {
    "html": (REPORT_FILE_NAMES["html"], "text/html; charset=utf-8"),
    "pdf": (REPORT_FILE_NAMES["pdf"], "application/pdf"),
}
STATE_STORED = "stored"
STATE_ANNOUNCED = "announced"
# Why a monthly report was not queued: the account was created after the month ended, or it
# is gone (deleted between the index page and the read).
SKIPPED_SIGNED_UP_AFTER = "signed_up_after_month"
SKIPPED_NO_ACCOUNT = "no_account"
# Subscribers whose profile, preferences and report one BatchGetItem (100 keys) reads.
SUBSCRIBERS_PER_READ = 33


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


def object_key(subscriber_id: str, report_id: str, file_format: str) -> str:
    """Return the bucket key of one file of a report."""
    return report_file_key(subscriber_id, report_id, file_format)


def previous_month(now: datetime) -> str:
    """Return the calendar month before `now` in China time, as yyyy-mm."""
    local = now.astimezone(SHANGHAI)
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def monthly_job(subscriber_id: str, month: str) -> ReportJob:
    """Return the monthly report job of one subscriber; its id is the same on every run."""
    return ReportJob(
        job_id=f"report_monthly_{month}_{subscriber_id}",
        subscriber_id=subscriber_id,
        month=month,
        report_kind="monthly",
    )


def month_end(month: str, timezone: str | None) -> datetime:
    """Return the first instant after a YYYY-MM month in `timezone` (Asia/Shanghai if unknown)."""
    try:
        zone = ZoneInfo(timezone or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        zone = SHANGHAI
    year, number = (int(part) for part in month.split("-"))
    return datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)


def signed_up_after(
    month: str, profile: dict[str, Any], preferences: dict[str, Any] | None
) -> bool:
    """Return whether the account was created after the month ended in the subscriber's zone.

    Such a subscriber has no report of that month: they were not one during any of it. A
    profile without `created_at` counts as created before.
    """
    created_at = profile.get("created_at")
    if not isinstance(created_at, int | float) or isinstance(created_at, bool):
        return False
    timezone = (preferences or {}).get("timezone")
    end = month_end(month, timezone if isinstance(timezone, str) else None)
    return created_at >= end.timestamp()


@dataclass(frozen=True)
class MonthlyRun:
    """Outcome of one `queue_monthly_reports` call for each subscriber, and the run's state.

    `subscriber_ids` were queued. `announced` already had the month's report announced, and
    `skipped` pairs each subscriber left out with the reason (SKIPPED_*).
    """

    month: str
    subscriber_ids: tuple[str, ...]
    already_finished: bool
    finished: bool
    announced: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass
class _SortedPage:
    queue: list[str]
    announced: list[str]
    skipped: list[tuple[str, str]]


def _sort_page(table: MainTable, subscribers: list[str], month: str) -> _SortedPage:
    """Split a page of entitled subscribers into those to queue, announced and skipped."""
    page = _SortedPage(queue=[], announced=[], skipped=[])
    for start in range(0, len(subscribers), SUBSCRIBERS_PER_READ):
        chunk = subscribers[start : start + SUBSCRIBERS_PER_READ]
        keys = {
            subscriber: (
                (f"SUB#{subscriber}", "PROFILE"),
                (f"SUB#{subscriber}", "PREFS"),
                (
                    f"SUB#{subscriber}",
                    f"{REPORT_PREFIX}{job_report_id(monthly_job(subscriber, month))}",
                ),
            )
            for subscriber in chunk
        }
        found = table.get_many([key for triple in keys.values() for key in triple])
        for subscriber, (profile_key, prefs_key, report_key) in keys.items():
            profile = found.get(profile_key)
            report = found.get(report_key)
            if report is not None and report.get("state") == STATE_ANNOUNCED:
                page.announced.append(subscriber)
            elif profile is None or profile.get("deletion_requested_at"):
                page.skipped.append((subscriber, SKIPPED_NO_ACCOUNT))
            elif signed_up_after(month, profile, found.get(prefs_key)):
                page.skipped.append((subscriber, SKIPPED_SIGNED_UP_AFTER))
            else:
                # A report that was stored but not announced is finished by the same job.
                page.queue.append(subscriber)
    return page


def queue_monthly_reports(
    table: MainTable,
    jobs: JobQueue,
    month: str,
    page_size: int = PAGE_SIZE,
    max_pages: int | None = None,
) -> MonthlyRun:
    """Queue the month's report job of every entitled subscriber, continuing the month's run.

    The scheduled planner and staff requests share the run item `REPORTRUN#{month}`, so a month
    whose run finished queues nothing more. A subscriber whose report of the month was already
    announced is not queued again, and one whose account was created after the month ended is
    skipped. `max_pages` ends the call early (see `run_over_entitled`).
    """
    done = _SortedPage(queue=[], announced=[], skipped=[])

    def queue_page(subscribers: list[str]) -> None:
        page = _sort_page(table, subscribers, month)
        if page.queue:
            jobs.send_many([monthly_job(subscriber, month) for subscriber in page.queue])
        done.queue.extend(page.queue)
        done.announced.extend(page.announced)
        done.skipped.extend(page.skipped)

    outcome = run_over_entitled(
        table, f"REPORTRUN#{month}", queue_page, page_size, {"month": month}, max_pages
    )
    return MonthlyRun(
        month=month,
        subscriber_ids=tuple(done.queue),
        already_finished=outcome.already_finished,
        finished=outcome.finished,
        announced=tuple(done.announced),
        skipped=tuple(done.skipped),
    )


def plan_monthly_reports(
    table: MainTable, jobs: JobQueue, now: datetime, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    """Queue the previous month's report job for every entitled subscriber; safe to repeat."""
    run = queue_monthly_reports(table, jobs, previous_month(now), page_size)
    summary = {
        "month": run.month,
        "queued": len(run.subscriber_ids),
        "already_announced": len(run.announced),
        "skipped": len(run.skipped),
        "already_finished": run.already_finished,
    }
    logger.info("monthly reports planned", extra=summary)
    return summary


def on_demand_job(subscriber_id: str, now: datetime) -> ReportJob:
    """Return the job of a report the subscriber asked for: this month so far, one per China day."""
    day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
    return ReportJob(
        job_id=f"report_on_demand_{day}_{subscriber_id}",
        subscriber_id=subscriber_id,
        month=current_month(now),
        report_kind="on_demand",
    )


def job_report_id(job: ReportJob) -> str:
    """Return the id of the report that a job renders."""
    if job.report_kind == "deep":
        if not job.purchase_id:
            raise ValueError("a deep report job needs purchase_id")
        return deep_report_id(job.subscriber_id, job.purchase_id)
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
    the files publishes the event again, which the notifier's ledger makes harmless. A bought
    report is rendered only while its purchase is paid, so a purchase refunded before the
    job ran gets none.
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

    if (
        existing is None
        and job.report_kind == "monthly"
        and signed_up_after(job.month, profile, items.get("PREFS"))
    ):
        # The planner queues no such job; this stops one replayed from the DLQ or queued by
        # an earlier version.
        logger.info(
            "report skipped", extra={"report_id": report_id, "reason": SKIPPED_SIGNED_UP_AFTER}
        )
        return SKIPPED_SIGNED_UP_AFTER

    if existing is None:
        purchase = items.get(f"{PURCHASE_PREFIX}{job.purchase_id}") if job.purchase_id else None
        if job.report_kind == "deep" and not _paid_deep_report(purchase):
            logger.info("report skipped", extra={"report_id": report_id, "reason": "not_paid"})
            return "not_paid"

        generated_at = deps.clock()
        if job.report_kind == "deep" and purchase is not None:
            shown_results, details = _render_deep(
                deps, job, report_id, items, purchase, generated_at
            )
        else:
            shown_results = _render_and_store(deps, job, report_id, items, generated_at)
            details = {}
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
                **details,
            }
        )

    # Imported here because the planner, which imports this module too, publishes no event.
    from idsentry.models.events import ReportGenerated

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
    from idsentry.reports.assess import latest_results, report_period
    from idsentry.reports.document import report_document
    from idsentry.reports.model import report_data

    facts = subscriber_facts(deps, job.subscriber_id, items)
    data = report_data(facts, job.month, generated_at, _previous_results(items, job.month))
    _store_files(deps, job.subscriber_id, report_id, report_document(data))

    end = report_period(job.month, facts.zone, generated_at).end
    latest = latest_results(facts.check_results, end)
    return [result.model_dump(mode="json") for result in latest.values()]


def _paid_deep_report(purchase: dict[str, Any] | None) -> bool:
    """Return whether a purchase item is a paid deep report, neither refunded nor unknown."""
    return (
        purchase is not None
        and purchase.get("plan") == DEEP_REPORT_PLAN
        and purchase.get("status") == "paid"
    )


def _render_deep(
    deps: ReportDeps,
    job: ReportJob,
    report_id: str,
    items: dict[str, dict[str, Any]],
    purchase: dict[str, Any],
    generated_at: datetime,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Render a bought report into the bucket.

    Returns the check results it showed and the attributes the report item adds: when the
    report was bought and the local date its history starts, which the e-mail names.
    """
    from idsentry.reports.assess import latest_results
    from idsentry.reports.deep import assess_deep_report
    from idsentry.reports.deep_document import layout_deep_report
    from idsentry.reports.model import deep_report_data
    from idsentry.services.playbooks import load_config

    facts = subscriber_facts(deps, job.subscriber_id, items)
    profile = items.get("PROFILE") or {}
    signed_up = profile.get("created_at")
    since = (
        datetime.fromtimestamp(int(signed_up), UTC)
        if isinstance(signed_up, int | float) and not isinstance(signed_up, bool)
        else generated_at
    )
    purchased_at = datetime.fromtimestamp(int(purchase["paid_at"]), UTC)
    data = deep_report_data(facts, generated_at, min(since, generated_at), purchased_at)
    config = load_config()
    report = assess_deep_report(data, config)
    _store_files(deps, job.subscriber_id, report_id, layout_deep_report(report, config))

    latest = latest_results(facts.check_results, generated_at)
    details = {
        "purchased_at": int(purchase["paid_at"]),
        "covers_from": report.start.astimezone(facts.zone).date().isoformat(),
    }
    return [result.model_dump(mode="json") for result in latest.values()], details


def _store_files(deps: ReportDeps, subscriber_id: str, report_id: str, document: Document) -> None:
    """Render a laid-out document as HTML and PDF and write both files."""
    from idsentry.reports.html import render_html
    from idsentry.reports.pdf import render_pdf

    deps.objects.put(
        object_key(subscriber_id, report_id, "html"),
        render_html(document).encode("utf-8"),
        FILES["html"][1],
    )
    deps.objects.put(
        object_key(subscriber_id, report_id, "pdf"), render_pdf(document), FILES["pdf"][1]
    )


def subscriber_facts(
    deps: ReportDeps, subscriber_id: str, items: dict[str, dict[str, Any]]
) -> SubscriberFacts:
    """Return what reports and dossiers show of a subscriber, from their partition's items."""
    from idsentry.reports.model import from_records, related_keys, sms_pointer_keys

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
    from idsentry.reports.model import CheckResult

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
    """Return the subscriber's reports, newest month first, without links.

    A bought report (`bought: true`) also names its purchase, when it was paid and the
    local date its history starts.
    """
    items = table.get_partition(f"SUB#{subscriber_id}")
    profile = items.get("PROFILE")
    if profile is None or profile.get("deletion_requested_at"):
        raise NotFoundError("account.not_found")
    reports = [_listed_report(item) for sk, item in items.items() if sk.startswith(REPORT_PREFIX)]
    reports.sort(key=lambda entry: (entry["month"], entry["generated_at"]), reverse=True)
    return {"reports": reports}


def _listed_report(item: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "report_id": item["report_id"],
        "report_kind": item["report_kind"],
        "month": item["month"],
        "generated_at": item["generated_at"],
        "formats": sorted(FILES),
        "bought": item["report_kind"] == "deep",
    }
    if entry["bought"]:
        purchased_at = item.get("purchased_at")
        entry["purchase_id"] = item.get("purchase_id")
        entry["purchased_at"] = (
            datetime.fromtimestamp(int(purchased_at), UTC).isoformat()
            if purchased_at is not None
            else None
        )
        entry["covers_from"] = item.get("covers_from")
    return entry


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
