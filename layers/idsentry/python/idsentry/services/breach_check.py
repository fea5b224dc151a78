"""The daily breach check: a planner fans out one job per entitled subscriber, workers check each.

The planner syncs the HIBP catalogue and queues the first page job. Each page job reads one page
of the sparse `ENTITLED` index, queues a check job per subscriber in batches of 10 and then the
next page job, so no single invocation has to list every subscriber. A check worker looks the
subscriber's fingerprints up in the breach index and, when a breach was added to HIBP's
catalogue since the confirmed e-mail address was last looked up, queues an HIBP job. HIBP
workers run with reserved concurrency and share one token bucket, waiting for their turn inside
the invocation. Every hit is recorded as an exposure once per subscriber and breach, so a run
that is retried halfway sends nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.hibp import AccountCheck, CheckOutcome
from idsentry.adapters.keys import DataKeyStore
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.clock import Clock, epoch
from idsentry.crypto import decrypt_field
from idsentry.errors import ProviderError
from idsentry.models.breach_jobs import CheckJob, HibpJob, PlanPageJob
from idsentry.services.exposures import Finding, record_exposures
from idsentry.services.hibp_catalogue import (
    CatalogueSource,
    address_due,
    latest_added_date,
    load_breach,
    sync_catalogue,
)
from idsentry.services.rate_limit import TokenBucket

logger = logging.getLogger(__name__)

CHINA = ZoneInfo("Asia/Shanghai")
ENTITLED_INDEX_KEY = "ENTITLED"
PAGE_SIZE = 1000
# An HIBP worker waits this long at most for a token before it hands the job back to SQS.
MAX_INLINE_WAIT_SECONDS = 20.0
# Kinds looked up in the breach index; the e-mail only once confirmed.
INDEXED_KINDS = ("id_number", "mobile", "email", "bank_card")


class HibpAccounts(Protocol):
    """The HIBP lookup a worker needs."""

    def breached_account(self, email: str) -> AccountCheck: ...


class BreachIndex(Protocol):
    """Breach names per fingerprint key (`{kind}#{pepper_version}#{fingerprint}`)."""

    def breaches_of(self, fingerprint_key: str) -> list[str]: ...


@dataclass
class CheckDeps:
    """Everything the planner and workers talk to, injected so tests can swap any of it."""

    table: MainTable
    index: BreachIndex
    keys: DataKeyStore
    jobs: JobQueue
    hibp_jobs: JobQueue
    publisher: EventPublisher
    hibp: Callable[[], HibpAccounts]
    catalogue: Callable[[], CatalogueSource]
    bucket: TokenBucket
    clock: Clock
    on_hibp_unauthorized: Callable[[], None]
    sleep: Callable[[float], None] = time.sleep


class CheckDeferredError(RuntimeError):
    """HIBP asked to wait longer than a worker may; SQS should deliver the job again later."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"HIBP lookup deferred for {seconds:.0f} s")
        self.seconds = seconds


def run_date(moment: datetime) -> str:
    """Return the run's date in China, which names its jobs."""
    return moment.astimezone(CHINA).strftime("%Y%m%d")


def plan_run(deps: CheckDeps) -> dict[str, str]:
    """Sync the HIBP catalogue, then queue the run's first page job."""
    now = deps.clock()
    try:
        summary = sync_catalogue(deps.catalogue(), deps.table, now)
        logger.info(
            "hibp catalogue synced", extra={"fetched": summary.fetched, "written": summary.written}
        )
    except ProviderError as exc:
        # The check still runs: the index lookups need no HIBP, and addresses wait a day.
        logger.warning("hibp catalogue sync failed", extra={"provider": exc.provider})

    day = run_date(now)
    deps.jobs.send(PlanPageJob(job_id=f"plan_{day}_0", run=day))
    logger.info("breach check planned", extra={"run": day})
    return {"run": day}


def plan_page(deps: CheckDeps, job: PlanPageJob) -> int:
    """Queue the check jobs of one page of entitled subscribers and the next page's job."""
    request: dict[str, Any] = {
        "TableName": deps.table.name,
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :entitled",
        "ExpressionAttributeValues": {":entitled": {"S": ENTITLED_INDEX_KEY}},
        "Limit": PAGE_SIZE,
    }
    if job.start_after:
        request["ExclusiveStartKey"] = {
            name: {"S": value} for name, value in job.start_after.items()
        }
    page = deps.table.client().query(**request)

    subscribers = [item["gsi1sk"]["S"] for item in page.get("Items", [])]
    deps.jobs.send_many(
        [
            CheckJob(job_id=f"check_{job.run}_{subscriber}", subscriber_id=subscriber, run=job.run)
            for subscriber in subscribers
        ]
    )
    last = page.get("LastEvaluatedKey")
    if last:
        # Sent after this page's jobs: a crash in between repeats the page, never skips one.
        deps.jobs.send(
            PlanPageJob(
                job_id=f"plan_{job.run}_{subscribers[-1]}",
                run=job.run,
                start_after={name: value["S"] for name, value in last.items()},
            )
        )
    logger.info(
        "check page planned", extra={"run": job.run, "jobs": len(subscribers), "more": bool(last)}
    )
    return len(subscribers)


def check_subscriber(deps: CheckDeps, job: CheckJob) -> dict[str, Any]:
    """Check one subscriber against the breach index and HIBP; returns what was found."""
    profile_key = f"SUB#{job.subscriber_id}"
    items = deps.table.get_partition(profile_key)
    profile = items.get("PROFILE")
    if profile is None or not profile.get("monitored"):
        logger.info("check skipped", extra={"subscriber_id": job.subscriber_id})
        return {"status": "skipped"}
    now = deps.clock()

    found: dict[str, set[str]] = defaultdict(set)
    for kind in INDEXED_KINDS:
        identifier = items.get(f"IDENT#{kind}")
        if identifier is None or (kind == "email" and not identifier.get("confirmed")):
            continue
        for version, value in (identifier.get("fingerprints") or {}).items():
            for breach_name in deps.index.breaches_of(f"{kind}#{version}#{value}"):
                found[breach_name].add(kind)
    exposures = _record(deps, job.subscriber_id, found, "index", epoch(now))

    hibp = "not_due"
    if _hibp_due(deps, items.get("IDENT#email"), profile):
        deps.hibp_jobs.send(
            HibpJob(
                job_id=f"hibp_{job.run}_{job.subscriber_id}",
                subscriber_id=job.subscriber_id,
                run=job.run,
            )
        )
        hibp = "queued"
    return {"status": "checked", "exposures": exposures, "hibp": hibp}


def lookup_hibp(deps: CheckDeps, job: HibpJob) -> str:
    """Ask HIBP about the subscriber's confirmed address, if still due; returns the outcome."""
    items = deps.table.get_partition(f"SUB#{job.subscriber_id}")
    profile = items.get("PROFILE")
    identifier = items.get("IDENT#email")
    if profile is None or not profile.get("monitored") or not _hibp_due(deps, identifier, profile):
        return "not_due"
    assert identifier is not None
    return _check_hibp(deps, job.subscriber_id, identifier, deps.clock())


def _record(
    deps: CheckDeps, subscriber_id: str, found: dict[str, set[str]], found_by: Any, now: int
) -> int:
    findings = []
    for breach_name, kinds in sorted(found.items()):
        breach = load_breach(deps.table, breach_name)
        if breach is not None and not breach.alertable:
            continue
        findings.append(Finding(subscriber_id, breach_name, frozenset(kinds)))
    return record_exposures(deps.table, deps.publisher, findings, found_by, now)


def _hibp_due(deps: CheckDeps, identifier: dict[str, Any] | None, profile: dict[str, Any]) -> bool:
    if identifier is None or not identifier.get("confirmed"):
        return False
    confirmed_at = profile.get("email_confirmed_at")
    last_checked = identifier.get("hibp_checked_at")
    return address_due(
        datetime.fromtimestamp(int(last_checked), UTC) if last_checked else None,
        datetime.fromtimestamp(int(confirmed_at), UTC) if confirmed_at else None,
        latest_added_date(deps.table),
    )


def _take_token(deps: CheckDeps, now: datetime) -> None:
    """Wait for the shared bucket's token inside the invocation, or hand the job back to SQS."""
    waited = 0.0
    while (wait := deps.bucket.try_take(now)) > 0:
        if waited + wait > MAX_INLINE_WAIT_SECONDS:
            raise CheckDeferredError(wait)
        deps.sleep(wait)
        waited += wait
        now = deps.clock()


def _check_hibp(
    deps: CheckDeps, subscriber_id: str, identifier: dict[str, Any], now: datetime
) -> str:
    _take_token(deps, now)
    email = decrypt_field(
        deps.keys.get(subscriber_id), subscriber_id, identifier["value_enc"], purpose="breach_check"
    )
    result = deps.hibp().breached_account(email)

    if result.outcome is CheckOutcome.TRANSIENT:
        raise ProviderError("hibp", result.reason or "transient", transient=True)
    if result.outcome is CheckOutcome.DEFERRED:
        deps.bucket.hold(now, float(result.retry_after_seconds or 60))
        return "deferred"
    if result.outcome in (CheckOutcome.UNAUTHORIZED, CheckOutcome.INVALID):
        # Never recorded as clean: the address is in an unknown state until a lookup works.
        deps.on_hibp_unauthorized()
        _mark_email(deps, subscriber_id, "unknown", None)
        return "unknown"

    found: dict[str, set[str]] = defaultdict(set)
    for name in result.names:
        found[name].add("email")
    _record(deps, subscriber_id, found, "hibp", epoch(now))
    status = "breached" if result.names else "clean"
    _mark_email(deps, subscriber_id, status, epoch(now))
    return status


def _mark_email(deps: CheckDeps, subscriber_id: str, status: str, checked_at: int | None) -> None:
    expression = "SET hibp_status = :status"
    values: dict[str, Any] = {":status": status}
    if checked_at is not None:
        expression += ", hibp_checked_at = :checked"
        values[":checked"] = checked_at
    deps.table.update(f"SUB#{subscriber_id}", "IDENT#email", expression, values=values)
