"""The subscriber's request to delete their account: recorded once, then the job is queued."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.clock import Clock, epoch
from idsentry.errors import NotFoundError
from idsentry.models.account_jobs import AccountDeletionJob
from idsentry.services.audit import AuditRecord, AuditTrail
from idsentry.services.subscriber_records import subscriber_pk

logger = logging.getLogger(__name__)

DELETION_SK = "DELETION"


def request_deletion(
    table: MainTable,
    queue: JobQueue,
    audit: AuditTrail,
    subscriber_id: str,
    request_id: str,
    clock: Clock,
) -> dict[str, Any]:
    """Record the subscriber's deletion request and queue the job; repeating it queues it again."""
    pk = subscriber_pk(subscriber_id)
    profile = table.get(pk, "PROFILE")
    existing = table.get(pk, DELETION_SK)
    if profile is None and existing is None:
        raise NotFoundError("account.not_found")
    moment = clock()
    now = epoch(moment)

    if existing is None:
        created = table.put(
            {
                "pk": pk,
                "sk": DELETION_SK,
                "status": "requested",
                "requested_at": now,
                "request_id": request_id,
            },
            condition="attribute_not_exists(pk)",
        )
        if created:
            audit.write(
                AuditRecord(
                    action="account.delete",
                    actor=f"subscriber:{subscriber_id}",
                    request_id=request_id,
                    subject=f"SUBSCRIBER#{subscriber_id}",
                    at=moment,
                    reason="account deletion requested by the subscriber",
                    outcome="requested",
                )
            )
        # No new checks, reports or reminders are planned for the account from now on.
        table.update(
            pk,
            "PROFILE",
            "SET deletion_requested_at = if_not_exists(deletion_requested_at, :now) "
            "REMOVE gsi1pk, gsi1sk",
            values={":now": now},
            condition="attribute_exists(pk)",
        )
    requested_at = int((existing or {}).get("requested_at") or now)

    queue.send(
        AccountDeletionJob(job_id=f"job_delete_{subscriber_id}", subscriber_id=subscriber_id)
    )
    logger.info("account deletion requested", extra={"subscriber_id": subscriber_id})
    return {
        "status": "deletion_requested",
        "requested_at": datetime.fromtimestamp(requested_at, UTC)
        .isoformat()
        .replace("+00:00", "Z"),
    }
