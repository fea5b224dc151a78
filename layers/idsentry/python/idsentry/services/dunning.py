"""Failed payments: the notice at once, a reminder later, and nothing once the invoice is paid.

Each failed invoice gets one `DUNNING#{invoice_id}` item on the subscriber. While the invoice is
unpaid the item is in the overloaded index under `REMINDER`, sorted by when the reminder is
due, and the hourly sweep sends the reminders that are due. Paying the invoice resolves the item and
takes it out of the index, and the notifier skips any notice of a resolved item.
"""

from __future__ import annotations

import logging
from typing import Any

from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.models.jobs import PaymentNoticeJob

logger = logging.getLogger(__name__)

REMINDER_AFTER_SECONDS = 3 * 24 * 3600
REMINDER_INDEX_KEY = "REMINDER"
SWEEP_BATCH = 100


def dunning_sk(invoice_id: str) -> str:
    """Return the sort key of an invoice's dunning item."""
    return f"DUNNING#{invoice_id}"


def record_failure(
    table: MainTable,
    queue: JobQueue,
    subscriber_id: str,
    invoice: dict[str, Any],
    monitored_until: int,
    now: int,
) -> None:
    """Record the failed invoice, schedule its reminder once, and queue the notice of this attempt."""
    invoice_id = str(invoice["id"])
    attempt = int(invoice.get("attempt_count") or 1)
    due = now + REMINDER_AFTER_SECONDS
    recorded = table.update(
        f"SUB#{subscriber_id}",
        dunning_sk(invoice_id),
        "SET amount_due = :amount, currency = :currency, attempt_count = :attempt, "
        "monitored_until = :until, failed_at = if_not_exists(failed_at, :now), "
        "gsi1pk = if_not_exists(gsi1pk, :index), gsi1sk = if_not_exists(gsi1sk, :due)",
        values={
            ":amount": int(invoice.get("amount_due") or 0),
            ":currency": str(invoice["currency"]),
            ":attempt": attempt,
            ":until": monitored_until,
            ":now": now,
            ":index": REMINDER_INDEX_KEY,
            ":due": f"{due:010d}#{subscriber_id}#{invoice_id}",
            ":resolved": True,
        },
        # A paid invoice stays resolved even if its failure event arrives late.
        condition="attribute_not_exists(resolved) OR resolved <> :resolved",
    )
    if recorded is None:
        return
    queue.send(
        PaymentNoticeJob(
            job_id=f"job_payment_failed_{invoice_id}_{attempt}",
            subscriber_id=subscriber_id,
            invoice_id=invoice_id,
            notice="failed",
        )
    )
    logger.info(
        "payment failure recorded",
        extra={"subscriber_id": subscriber_id, "invoice_id": invoice_id, "attempt": attempt},
    )


def resolve(table: MainTable, subscriber_id: str, invoice_id: str, now: int) -> None:
    """Mark the invoice paid: no reminder and no notice about it goes out any more."""
    table.update(
        f"SUB#{subscriber_id}",
        dunning_sk(invoice_id),
        "SET resolved = :true, resolved_at = :now REMOVE gsi1pk, gsi1sk",
        values={":true": True, ":now": now},
        condition="attribute_exists(pk)",
    )


def send_due_reminders(table: MainTable, queue: JobQueue, now: int) -> int:
    """Queue the reminders due by `now` and take them out of the index; returns how many."""
    sent = 0
    while True:
        due = table.query_index("gsi1", REMINDER_INDEX_KEY, f"{now:010d}~", SWEEP_BATCH)
        for item in due:
            subscriber_id = str(item["pk"]).removeprefix("SUB#")
            invoice_id = str(item["sk"]).removeprefix("DUNNING#")
            # Queued first, then taken out of the index: a crash in between repeats the job,
            # which the notifier's ledger sends once.
            queue.send(
                PaymentNoticeJob(
                    job_id=f"job_payment_reminder_{invoice_id}",
                    subscriber_id=subscriber_id,
                    invoice_id=invoice_id,
                    notice="reminder",
                )
            )
            table.update(
                str(item["pk"]),
                str(item["sk"]),
                "SET reminded_at = :now REMOVE gsi1pk, gsi1sk",
                values={":now": now},
            )
            sent += 1
        if len(due) < SWEEP_BATCH:
            break
    logger.info("payment reminders queued", extra={"count": sent})
    return sent
