"""SMS delivery states from Twilio status callbacks, applied in order whatever order they arrive in.

A failed or undelivered callback also acts on Twilio's error code: an opted-out recipient or
an invalid number changes the subscriber's SMS state, so no later SMS is attempted, and a
message that overflowed Twilio's queue (30001) is queued to be sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.crypto import Pepper
from idsentry.models.jobs import AlertJob, PaymentNoticeJob
from idsentry.services.ledger import MAX_OVERFLOW_RESENDS
from idsentry.services.preferences import SmsState, set_sms_state
from idsentry.services.sms_numbers import canonical_number, holds_mobile

logger = logging.getLogger(__name__)

# Twilio's message statuses in the order a message moves through them. A status never replaces
# one of equal or higher rank, so a late "sent" cannot undo "delivered" and a repeated callback
# changes nothing. "read" comes after "delivered" only; see _ADVANCE_CONDITION.
STATUS_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "read": 5,
}
FAILED_STATUSES = frozenset({"undelivered", "failed", "canceled"})

# Twilio error codes that describe the number rather than one message.
# 21610: the recipient replied STOP to our sender. 21211: not a valid phone number. 21614: not
# a mobile number. 30005: unknown destination handset. 30006: landline or unreachable carrier.
# Codes left out are recorded only: 30003 (handset unreachable), 30004 (message blocked, whose
# documented causes include weak signal and carrier faults, so it does not prove an opt-out),
# 30007 (carrier filter), 30036 (validity period expired) and 30001 (queue overflow).
NUMBER_STATE_BY_CODE: dict[str, SmsState] = {
    "21610": "opted_out",
    "21211": "invalid",
    "21614": "invalid",
    "30005": "invalid",
    "30006": "invalid",
}

# Twilio's error for a message that overflowed the sender pool's queue: it never left Twilio.
QUEUE_OVERFLOW_CODE = "30001"
# How long the copy of an overflowed message waits before it is sent again, so that the queue
# can drain first (SQS delays a message by at most 900 s).
OVERFLOW_RESEND_DELAY_SECONDS = 300

SUBSCRIBER_ID_PREFIX = "sbr_"
SMS_ITEM_TTL_SECONDS = 90 * 24 * 3600

_ADVANCE_CONDITION = "attribute_not_exists(delivery_rank) OR delivery_rank < :rank"
# "read" follows "delivered": it never replaces a failure of equal rank.
_READ_CONDITION = f"({_ADVANCE_CONDITION}) AND NOT delivery IN (:undelivered, :failed, :canceled)"

Outcome = Literal["recorded", "stale", "ignored"]


@dataclass(frozen=True)
class StatusCallback:
    """The fields of one Twilio status callback that delivery tracking uses.

    `message_key` and `channel` come from the callback URL's query (`m`, `c`), which the
    notifier sets and Twilio's signature covers; older callbacks have neither.
    """

    message_sid: str
    status: str
    error_code: str | None = None
    to: str | None = None
    message_key: str | None = None
    channel: str | None = None


def number_state(error_code: str | None) -> SmsState | None:
    """Return the SMS state that a Twilio error code proves about the number, or None."""
    return NUMBER_STATE_BY_CODE.get(error_code or "")


def record_status(
    table: MainTable, callback: StatusCallback, pepper: Callable[[], Pepper], now: int
) -> Outcome:
    """Record a callback's status on the message's `SMS#{sid}` item and act on its error code.

    Returns "ignored" for a status this service does not track, "stale" when the item already
    has this status or a later one, and "recorded" otherwise. The error code is acted on
    before the status is written, so a crash in between leaves the callback to be repeated.
    """
    rank = STATUS_RANK.get(callback.status)
    if rank is None:
        logger.warning(
            "sms status unknown",
            extra={"message_sid": callback.message_sid, "status": callback.status},
        )
        return "ignored"

    current = table.get(f"SMS#{callback.message_sid}", "SMS")
    if current is not None and not _advances(current, callback.status, rank):
        return "stale"

    if callback.status in FAILED_STATUSES:
        _apply_error_code(table, callback, current, pepper, now)

    values: dict[str, Any] = {
        ":status": callback.status,
        ":rank": rank,
        ":error": callback.error_code or "",
        ":now": now,
        ":expires": now + SMS_ITEM_TTL_SECONDS,
    }
    condition = _ADVANCE_CONDITION
    if callback.status == "read":
        condition = _READ_CONDITION
        values.update({":undelivered": "undelivered", ":failed": "failed", ":canceled": "canceled"})
    # The notifier links this item to its ledger record; a callback may arrive before it does.
    updated = table.update(
        f"SMS#{callback.message_sid}",
        "SMS",
        "SET delivery = :status, delivery_rank = :rank, delivery_error = :error, "
        "delivery_updated_at = :now, expires_at = if_not_exists(expires_at, :expires)",
        values=values,
        condition=condition,
    )
    if updated is None:
        return "stale"
    logger.info(
        "sms status recorded",
        extra={
            "message_sid": callback.message_sid,
            "status": callback.status,
            "error_code": callback.error_code,
        },
    )
    return "recorded"


def resend_overflowed(table: MainTable, queue: JobQueue, callback: StatusCallback) -> bool:
    """Queue again, delayed, the job of an SMS that Twilio failed with 30001; True when queued.

    Only a message whose ledger record has this sid, from an alert or a payment notice, is
    sent again. The record may still be pending: Twilio can report the overflow before the
    notifier has recorded the send. The copy reopens the record when it runs (Ledger.reopen),
    by then marked sent, so a repeated callback queues a copy that sends nothing.
    """
    if callback.status != "failed" or callback.error_code != QUEUE_OVERFLOW_CODE:
        return False
    fields = {"message_sid": callback.message_sid}
    key = _ledger_key(callback, table.get(f"SMS#{callback.message_sid}", "SMS"))
    record = table.get(*key) if key is not None else None
    if (
        record is None
        or record.get("state") not in ("sent", "pending")
        or record.get("provider_id") != callback.message_sid
        or not record.get("job")
    ):
        logger.info("sms queue overflow not resent: the message moved on", extra=fields)
        return False
    if int(record.get("overflow_resends", 0)) >= MAX_OVERFLOW_RESENDS:
        logger.warning("sms queue overflow not resent: too many resends", extra=fields)
        return False

    job = _resendable().validate_json(record["job"])
    copy = job.model_copy(
        update={"job_id": f"{job.job_id}:resend", "resend_sms_of": callback.message_sid}
    )
    queue.send(copy, delay_seconds=OVERFLOW_RESEND_DELAY_SECONDS)
    logger.warning(
        "sms queued again after a twilio queue overflow", extra={**fields, "job_id": job.job_id}
    )
    return True


@cache
def _resendable() -> TypeAdapter[AlertJob | PaymentNoticeJob]:
    # Built on the first resend, not in every cold start of the functions that import this.
    return TypeAdapter(Annotated[AlertJob | PaymentNoticeJob, Field(discriminator="kind")])


def _advances(item: dict[str, Any], status: str, rank: int) -> bool:
    stored_rank = item.get("delivery_rank")
    if stored_rank is None:
        return True
    if status == "read" and item.get("delivery") in FAILED_STATUSES:
        return False
    return int(stored_rank) < rank


def _apply_error_code(
    table: MainTable,
    callback: StatusCallback,
    item: dict[str, Any] | None,
    pepper: Callable[[], Pepper],
    now: int,
) -> None:
    """Mark the subscriber's number opted out or invalid when the error code proves it."""
    state = number_state(callback.error_code)
    fields = {"message_sid": callback.message_sid, "error_code": callback.error_code}
    if state is None:
        logger.info("sms failure recorded only", extra=fields)
        return

    subject_id = _ledger_subject(table, callback, item)
    if subject_id is None or not subject_id.startswith(SUBSCRIBER_ID_PREFIX):
        # Codes go to signups, whose numbers have no SMS state until they become subscribers.
        logger.info("sms failure has no subscriber", extra=fields)
        return

    # The subscriber may have changed their number since the message was queued.
    canonical = canonical_number(callback.to or "")
    if canonical is None or not holds_mobile(table, pepper(), subject_id, canonical):
        logger.info(
            "sms failure is for a previous number", extra={**fields, "subscriber_id": subject_id}
        )
        return

    set_sms_state(table, subject_id, state, callback.error_code or "", now)
    logger.warning(
        "sms number state changed",
        extra={**fields, "subscriber_id": subject_id, "sms_state": state},
    )


def _ledger_subject(
    table: MainTable, callback: StatusCallback, item: dict[str, Any] | None
) -> str | None:
    """Return the subject id of the ledger record that sent the message, if it can be found."""
    key = _ledger_key(callback, item)
    if key is None:
        return None

    record = table.get(*key)
    subject_id = (record or {}).get("subject_id")
    return str(subject_id) if subject_id else None


def _ledger_key(callback: StatusCallback, item: dict[str, Any] | None) -> tuple[str, str] | None:
    """Return the key of the ledger record that sent the message, if it can be found.

    The notifier links the SMS item once it has recorded the send. Until then, the message key
    in the callback URL names the same record.
    """
    ledger_pk = (item or {}).get("ledger_pk")
    ledger_sk = (item or {}).get("ledger_sk")
    if not ledger_pk and callback.message_key and callback.channel == "sms":
        ledger_pk, ledger_sk = f"NOTIFY#{callback.message_key}", "sms"
    if not ledger_pk or not ledger_sk:
        return None
    return str(ledger_pk), str(ledger_sk)
