"""Outbox of review decisions: the events a decision still has to publish, kept in the main table.

A decision's transaction creates one batch item (`pk = REVIEWBATCH#{audit record id}`) with
`gsi1pk = REVIEW_OUTBOX`. Its events are published after the transaction, and then the batch
leaves the index. `flush_outbox` publishes again a batch that a crash or a PutEvents failure
left in the index. Consumers drop the repeats, because the events' ids come from the alert ids.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.table import MainTable
from idsentry.clock import Clock, epoch
from idsentry.models.events import AlertConfirmed, AlertDismissed, EventDetail
from idsentry.services.audit import AuditRecord

logger = logging.getLogger(__name__)

INDEX_NAME = "gsi1"
OUTBOX_INDEX_KEY = "REVIEW_OUTBOX"
OUTBOX_BATCHES_PER_REQUEST: Final = 25
# A published batch is only a copy of what the audit trail keeps, so TTL removes it later.
PUBLISHED_BATCH_TTL_SECONDS: Final = 30 * 24 * 3600


def outbox_batch(
    record: AuditRecord,
    breach_name: str,
    status: str,
    alerts: Sequence[tuple[str, str, Mapping[str, Any]]],
    now: datetime,
) -> dict[str, Any]:
    return {
        "pk": f"REVIEWBATCH#{record.record_id}",
        "sk": "BATCH",
        "gsi1pk": OUTBOX_INDEX_KEY,
        "gsi1sk": f"{breach_name}#{record.record_id}",
        "breach_name": breach_name,
        "status": status,
        "audit_record_id": record.record_id,
        "created_at": epoch(now),
        "alerts": [
            {
                "alert_id": alert_id,
                "subscriber_id": subscriber_id,
                "severity": alert["severity"],
                "confidence": alert["confidence"],
            }
            for alert_id, subscriber_id, alert in alerts
        ],
    }


def batch_events(batch: Mapping[str, Any]) -> list[EventDetail]:
    """Return the events of one outbox batch, with event ids derived from the alert ids."""
    breach_name = str(batch["breach_name"])
    events: list[EventDetail] = []
    for entry in batch["alerts"]:
        alert_id = str(entry["alert_id"])
        if batch["status"] == "confirmed":
            events.append(
                AlertConfirmed(
                    event_id=f"evt_alert_{alert_id}",
                    subscriber_id=str(entry["subscriber_id"]),
                    alert_id=alert_id,
                    breach_name=breach_name,
                    severity=entry["severity"],
                    confidence=entry["confidence"],
                    confirmed_by="analyst",
                )
            )
        else:
            events.append(
                AlertDismissed(
                    event_id=f"evt_alert_dismissed_{alert_id}",
                    subscriber_id=str(entry["subscriber_id"]),
                    alert_id=alert_id,
                    breach_name=breach_name,
                )
            )
    return events


def publish_batch(
    table: MainTable, publisher: EventPublisher, clock: Clock, batch: Mapping[str, Any]
) -> None:
    """Publish a batch's events, then take the batch out of the outbox index."""
    publisher.publish(batch_events(batch))

    now = epoch(clock())
    table.update(
        str(batch["pk"]),
        str(batch["sk"]),
        "SET published_at = :now, expires_at = :expires REMOVE gsi1pk, gsi1sk",
        values={":now": now, ":expires": now + PUBLISHED_BATCH_TTL_SECONDS},
        condition="attribute_exists(gsi1pk)",
    )


def flush_outbox(table: MainTable, publisher: EventPublisher, clock: Clock) -> int:
    """Publish the outbox batches that earlier requests stored but did not publish, and count them.

    Every decision request flushes it, and so does the notification release schedule once a
    minute, so a batch whose publishing failed waits at most a minute without new decisions.
    """
    response = table.client().query(
        TableName=table.name,
        IndexName=INDEX_NAME,
        KeyConditionExpression="gsi1pk = :outbox",
        ExpressionAttributeValues={":outbox": {"S": OUTBOX_INDEX_KEY}},
        Limit=OUTBOX_BATCHES_PER_REQUEST,
    )
    published = 0
    for raw in response.get("Items", []):
        batch = table.get(raw["pk"]["S"], raw["sk"]["S"])
        # The index lags the table: a batch published a moment ago may still be listed.
        if batch is None or "gsi1pk" not in batch:
            continue
        publish_batch(table, publisher, clock, batch)
        published += 1
    if published:
        logger.info("review outbox flushed", extra={"batches": published})
    return published
