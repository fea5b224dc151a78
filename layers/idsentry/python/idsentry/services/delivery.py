"""SMS delivery states from Twilio status callbacks, applied in order whatever order they arrive in."""

from __future__ import annotations

import logging

from idsentry.adapters.table import MainTable

logger = logging.getLogger(__name__)

# A later state never goes back to an earlier one, so a late "sent" cannot undo "delivered".
STATUS_RANK = {
    "accepted": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
}


def apply_sms_status(
    table: MainTable, message_sid: str, status: str, error_code: str | None, now: int
) -> str:
    """Record a callback's status on the ledger entry of `message_sid`; returns what happened."""
    rank = STATUS_RANK.get(status)
    if rank is None:
        logger.warning("sms status unknown", extra={"message_sid": message_sid, "status": status})
        return "ignored"

    # The status is stored on the message's own item, which the notifier links to its ledger
    # entry. A callback may arrive before the notifier has recorded the send.
    updated = table.update(
        f"SMS#{message_sid}",
        "SMS",
        "SET delivery = :status, delivery_rank = :rank, delivery_error = :error, "
        "delivery_updated_at = :now, expires_at = if_not_exists(expires_at, :expires)",
        values={
            ":status": status,
            ":rank": rank,
            ":error": error_code or "",
            ":now": now,
            ":expires": now + 90 * 24 * 3600,
        },
        condition="attribute_not_exists(delivery_rank) OR delivery_rank < :rank",
    )
    if updated is None:
        return "stale"
    logger.info("sms status recorded", extra={"message_sid": message_sid, "status": status})
    return "recorded"
