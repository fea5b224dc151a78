"""Deferred alert SMS: jobs held in the main table until quiet hours end, then queued again.

SQS delays a message by at most 15 minutes, so a job that must wait until morning is stored
as `DEFER#{job_id}` / `DEFER` and listed in the overloaded index under `DEFERRED`, sorted by
release time. A scheduled function queues the due jobs to the notification queue and deletes
their items. A job goes out at least once: it is queued before its item is deleted, so a crash
in between, or two releasers reading the same item, queue it twice, and the notifier's ledger
sends its SMS once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from idsentry.adapters.queue import MAX_BATCH, JobQueue
from idsentry.adapters.table import MainTable
from idsentry.item_keys import DEFER_SK, deferral_pk
from idsentry.models.jobs import AlertJob

logger = logging.getLogger(__name__)

DEFERRED_INDEX_KEY = "DEFERRED"
# The item expires this long after its release time. A release that runs this late drops the
# job instead of sending an alert SMS days after the alert e-mail.
EXPIRES_AFTER_RELEASE_SECONDS = 3 * 24 * 3600
# Index keys read per Query. The consistent BatchGetItem that follows reads at most 100 keys.
RELEASE_PAGE = 100


def release_sort_key(release_at: int, job_id: str) -> str:
    """Return the index sort key that orders deferred jobs by release time (epoch seconds)."""
    return f"{release_at:010d}#{job_id}"


def defer_alert_sms(table: MainTable, job: AlertJob, release_at: int, now: int) -> bool:
    """Store `job` until `release_at` (epoch seconds); returns False when nothing changed.

    A second call with the same job and release time changes nothing. A call with another
    release time moves the job, for example after the subscriber changed time zone.
    """
    if release_at <= now:
        raise ValueError("release_at must be later than now")

    written = table.put(
        {
            "pk": deferral_pk(job.job_id),
            "sk": DEFER_SK,
            "gsi1pk": DEFERRED_INDEX_KEY,
            "gsi1sk": release_sort_key(release_at, job.job_id),
            "job": job.model_dump_json(),
            "release_at": release_at,
            "deferred_at": now,
            "expires_at": release_at + EXPIRES_AFTER_RELEASE_SECONDS,
        },
        condition="attribute_not_exists(pk) OR release_at <> :release_at",
        values={":release_at": release_at},
    )
    if written:
        logger.info(
            "alert sms deferred",
            extra={"job_id": job.job_id, "alert_id": job.alert_id, "release_at": release_at},
        )
    return written


@dataclass
class ReleaseSummary:
    """Counts of one release run."""

    released: int = 0
    # Queued, but another run deleted the item first or the job was deferred again.
    raced: int = 0
    expired: int = 0
    invalid: int = 0


def release_due(table: MainTable, queue: JobQueue, now: int, limit: int) -> int:
    """Queue the deferred jobs due by `now` (epoch seconds), at most `limit`; returns how many.

    The count leaves out jobs that another run deleted first, although this run queued them too.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    summary = ReleaseSummary()
    seen: set[tuple[str, str]] = set()
    # "~" sorts after "#" and every id character, so every job due at `now` is included.
    upto = f"{now:010d}~"

    while len(seen) < limit:
        page_size = min(RELEASE_PAGE, limit - len(seen))
        page = table.query_index("gsi1", DEFERRED_INDEX_KEY, upto, page_size)
        keys = [(str(item["pk"]), str(item["sk"])) for item in page]
        new_keys = [item_key for item_key in keys if item_key not in seen]
        if not new_keys:
            # Every key is one this run handled: the index, which DynamoDB updates
            # asynchronously, still lists deleted items. The next run continues.
            break
        seen.update(new_keys)

        # The index projects keys only, and a strongly consistent read leaves out the items
        # that were deleted since the index was read.
        items = table.get_many(new_keys)
        due = [items[item_key] for item_key in new_keys if item_key in items]
        _release_items(table, queue, due, now, summary)

        if len(page) < page_size:
            break

    logger.info(
        "deferred jobs released",
        extra={
            "released": summary.released,
            "raced": summary.raced,
            "expired": summary.expired,
            "invalid": summary.invalid,
        },
    )
    return summary.released


def _release_items(
    table: MainTable,
    queue: JobQueue,
    items: Sequence[dict[str, Any]],
    now: int,
    summary: ReleaseSummary,
) -> None:
    ready: list[tuple[dict[str, Any], AlertJob]] = []
    for item in items:
        if int(item["expires_at"]) <= now:
            if _delete_released(table, item):
                summary.expired += 1
                logger.warning("deferred job expired unsent", extra={"job_id": _job_id(item)})
            continue
        try:
            job = AlertJob.model_validate_json(item["job"])
        except ValidationError:
            # The item stays for an operator to inspect until its TTL removes it.
            summary.invalid += 1
            logger.error("deferred job invalid", extra={"job_id": _job_id(item)})
            continue
        ready.append((item, job))

    for start in range(0, len(ready), MAX_BATCH):
        chunk = ready[start : start + MAX_BATCH]
        queue.send_many([job for _, job in chunk])
        for item, _ in chunk:
            if _delete_released(table, item):
                summary.released += 1
            else:
                summary.raced += 1


def _delete_released(table: MainTable, item: dict[str, Any]) -> bool:
    """Delete the item if its release time is still the one read; returns False otherwise."""
    return table.delete(
        str(item["pk"]),
        str(item["sk"]),
        condition="gsi1sk = :released",
        values={":released": item["gsi1sk"]},
    )


def _job_id(item: dict[str, Any]) -> str:
    return str(item["pk"]).removeprefix("DEFER#")
