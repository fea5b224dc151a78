"""The daily breach check: a planner fans out one job per entitled subscriber, workers check each.

The planner first syncs the HIBP catalogue, then pages the sparse `ENTITLED` index and queues
check jobs in batches of 10. A worker looks each of the subscriber's fingerprints up in the
breach index, asks HIBP about the confirmed e-mail address when a breach was added since its
last lookup, and records every hit as an exposure (once per subscriber and breach, so a run
that is retried halfway sends nothing twice).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
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
from idsentry.models.jobs import CheckJob
from idsentry.services.exposures import record_exposure
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
PAGE_SIZE = 500
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
    publisher: EventPublisher
    hibp: Callable[[], HibpAccounts]
    catalogue: Callable[[], CatalogueSource]
    bucket: TokenBucket
    clock: Clock
    on_hibp_unauthorized: Callable[[], None]


class CheckDeferredError(RuntimeError):
    """HIBP asked to wait longer than a worker may; SQS should deliver the job again later."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"HIBP lookup deferred for {seconds:.0f} s")
        self.seconds = seconds


def run_date(moment: datetime) -> str:
    """Return the run's date in China, which names its jobs."""
    return moment.astimezone(CHINA).strftime("%Y%m%d")


def entitled_subscribers(table: MainTable) -> Iterator[str]:
    """Yield the ids of monitored subscribers by paging the sparse `ENTITLED` index."""
    start: dict[str, Any] | None = None
    while True:
        request: dict[str, Any] = {
            "TableName": table.name,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :entitled",
            "ExpressionAttributeValues": {":entitled": {"S": ENTITLED_INDEX_KEY}},
            "Limit": PAGE_SIZE,
        }
        if start:
            request["ExclusiveStartKey"] = start
        page = table.client().query(**request)
        for item in page.get("Items", []):
            yield item["gsi1sk"]["S"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return


def plan_run(deps: CheckDeps) -> dict[str, int]:
    """Sync the HIBP catalogue, then queue one check job per entitled subscriber."""
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
    # NOTE: one run queues the jobs in sequence, about a million in the 15 minutes a Lambda run
    # has (docs/scaling.md); beyond that the planner must page through continuation jobs.
    queued = 0
    batch: list[CheckJob] = []
    for subscriber_id in entitled_subscribers(deps.table):
        batch.append(
            CheckJob(job_id=f"check_{day}_{subscriber_id}", subscriber_id=subscriber_id, run=day)
        )
        if len(batch) == 10:
            deps.jobs.send_many(batch)
            queued += len(batch)
            batch = []
    if batch:
        deps.jobs.send_many(batch)
        queued += len(batch)
    logger.info("breach check planned", extra={"run": day, "jobs": queued})
    return {"jobs": queued}


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

    hibp_status = _check_hibp(deps, job.subscriber_id, items.get("IDENT#email"), profile, now)
    return {"status": "checked", "exposures": exposures, "hibp": hibp_status}


def _record(
    deps: CheckDeps, subscriber_id: str, found: dict[str, set[str]], found_by: Any, now: int
) -> int:
    announced = 0
    for breach_name, kinds in sorted(found.items()):
        breach = load_breach(deps.table, breach_name)
        if breach is not None and not breach.alertable:
            continue
        if record_exposure(
            deps.table, deps.publisher, subscriber_id, breach_name, kinds, found_by, now
        ):
            announced += 1
    return announced


def _check_hibp(
    deps: CheckDeps,
    subscriber_id: str,
    identifier: dict[str, Any] | None,
    profile: dict[str, Any],
    now: datetime,
) -> str:
    if identifier is None or not identifier.get("confirmed"):
        return "not_confirmed"
    confirmed_at = profile.get("email_confirmed_at")
    last_checked = identifier.get("hibp_checked_at")
    due = address_due(
        datetime.fromtimestamp(int(last_checked), UTC) if last_checked else None,
        datetime.fromtimestamp(int(confirmed_at), UTC) if confirmed_at else None,
        latest_added_date(deps.table),
    )
    if not due:
        return "not_due"

    wait = deps.bucket.try_take(now)
    if wait > 0:
        raise CheckDeferredError(wait)
    email = decrypt_field(deps.keys.get(subscriber_id), subscriber_id, identifier["value_enc"])
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
