"""The delivery ledger: each message instance goes out at most once per channel.

A record is `NOTIFY#{message_key}` / `{channel}`, where the key names one message instance
(`alert:{alert_id}`, `invoice:{id}:failed:{attempt}`, `code:{code_id}` …). Sending follows
"already sent? → claim (pending) → send → mark sent with the provider's id", and:

- a transient provider error marks the record `retry` before the job is retried, because
  nothing left: the next attempt may claim it again. An error after which the message may
  have left (a read timeout) leaves the record `pending` instead, as a crash would;
- a permanent error marks it `failed` with the provider's code, and nothing retries it;
- a `pending` record means a send began and never finished. While it is fresh another worker
  may still be sending, so the job waits (DeliveryInFlightError). Once it is stale, the
  process that made it has died: the record is settled by asking the provider about the
  message id a status callback linked to it. Without an id, a caller that can search the
  provider's messages (SMS) looks for the message there, and a search that finds none
  releases the claim, so the message is sent again. Without either, the record is marked
  `unknown` for support. It is never sent blindly again.

A record may keep the job that sent it (ids only). When Twilio reports that a message it
accepted never left its queue (error 30001, queue overflow), the status callback queues that
job again with `resend_sms_of`, and the job reopens the record (`reopen`) and sends once more.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from idsentry.adapters.table import MainTable
from idsentry.errors import ProviderError

logger = logging.getLogger(__name__)

LEDGER_TTL_SECONDS = 90 * 24 * 3600
# A claim older than this outlived the notifier's timeout, so the process that made it has stopped.
STALE_PENDING_SECONDS = 180
# Twilio's queue overflowed this many times for one message: the next overflow is final.
MAX_OVERFLOW_RESENDS = 3
# Writes of a send's outcome that fail with these errors are tried again at once, up to
# OUTCOME_WRITE_ATTEMPTS times with backoff from OUTCOME_WRITE_BACKOFF_SECONDS. A lost outcome
# leaves the claim pending, and a stale e-mail claim can only be settled as `unknown`, even
# when the provider refused the e-mail and nothing went out.
OUTCOME_WRITE_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
    }
)
OUTCOME_WRITE_ATTEMPTS = 4
OUTCOME_WRITE_BACKOFF_SECONDS = 0.2
UNKNOWN_INDEX_KEY = "NOTIFY_UNKNOWN"
SES_MESSAGE_PREFIX = "SESMSG#"
SES_MESSAGE_SK = "SESMSG"

# States after which nothing is ever sent again for the record.
SETTLED_STATES = frozenset({"sent", "failed", "unknown"})
# Twilio statuses that mean the message never reached the phone.
_FAILED_STATUSES = {"failed", "undelivered", "canceled"}

Channel = Literal["sms", "email"]
Outcome = Literal["sent", "skipped", "failed", "unknown", "released"]
# Searches the provider for the message of a claim made at the given epoch second. It returns
# the message's id, or None when the provider never received it.
Finder = Callable[[int], str | None]


class DeliveryInFlightError(RuntimeError):
    """Another worker claimed this message moments ago; retry the job once it has finished."""

    def __init__(self, message_key: str, channel: str) -> None:
        super().__init__(f"{message_key} on {channel} is being sent elsewhere")
        self.message_key = message_key
        self.channel = channel


@dataclass(frozen=True)
class Delivery:
    """The result of one send attempt, with the provider's error code when it failed for good."""

    outcome: Outcome
    error_code: str | None = None


def _record_key(message_key: str) -> str:
    return f"NOTIFY#{message_key}"


def record_key(message_key: str, channel: Channel) -> tuple[str, str]:
    """Return the table key of one message's record on one channel, to read it with others."""
    return _record_key(message_key), channel


def record_state(record: dict[str, Any] | None) -> str | None:
    """Return the state of a record read elsewhere (see `record_key`), or None without one."""
    return str(record["state"]) if record else None


class Ledger:
    """Delivery records of the main table, with the clock and the provider lookup injected.

    `lookup(channel, provider_id)` returns the provider's current status of a message, or None
    when the provider does not know it.
    """

    def __init__(
        self,
        table: MainTable,
        now: Callable[[], int],
        lookup: Callable[[str, str], str | None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table
        self._now = now
        self._lookup = lookup
        self._sleep = sleep

    def record(self, message_key: str, channel: Channel) -> dict[str, Any] | None:
        """Return the stored record of one message and channel, if any."""
        return self._table.get(*record_key(message_key, channel))

    def state(self, message_key: str, channel: Channel) -> str | None:
        """Return the record's state (`pending`, `retry`, `sent`, `failed`, `unknown`), or None."""
        return record_state(self.record(message_key, channel))

    def already_sent(self, message_key: str, channel: Channel) -> bool:
        """Return whether this message went out or was settled on this channel for good."""
        return self.state(message_key, channel) in SETTLED_STATES

    def resolve_pending(
        self, message_key: str, channel: Channel, find: Finder | None = None
    ) -> Delivery:
        """Resolve a claim found pending without sending: wait while fresh, settle once stale.

        With `find`, a stale claim without a provider id is looked for at the provider. The
        outcome is "released" when the provider never received the message: the record is
        `retry` again, and the caller may deliver it.
        """
        return self._resolve_claimed(message_key, channel, find)

    def deliver(
        self,
        message_key: str,
        channel: Channel,
        subject_id: str,
        send: Callable[[], str],
        job: str | None = None,
    ) -> Delivery:
        """Send one message at most once; transient provider errors propagate after `retry`.

        `job` (the job's JSON, ids only) is kept on the record, so that the message can be
        queued again if the provider reports that it never left (see `reopen`).
        """
        if not self._claim(message_key, channel, subject_id, job):
            return self._resolve_claimed(message_key, channel)

        try:
            provider_id = send()
        except ProviderError as exc:
            if exc.outcome_unknown:
                # The provider may have accepted the message: settle the claim, never resend.
                logger.warning(
                    "notification outcome unknown after a provider timeout",
                    extra={"message_key": message_key, "channel": channel},
                )
                raise
            if exc.transient:
                self._mark_outcome(message_key, channel, "retry", failure=str(exc))
                raise
            self._mark_outcome(
                message_key, channel, "failed", failure=str(exc), error_code=exc.code
            )
            logger.warning(
                "notification failed permanently",
                extra={
                    "message_key": message_key,
                    "channel": channel,
                    "provider": exc.provider,
                    "error_code": exc.code,
                },
            )
            return Delivery("failed", exc.code)

        self._mark_outcome(message_key, channel, "sent", provider_id=provider_id)
        if channel == "sms":
            self._link_sms(message_key, provider_id)
        else:
            self._link_email(message_key, provider_id, subject_id)
        logger.info("notification sent", extra={"message_key": message_key, "channel": channel})
        return Delivery("sent")

    def _claim(
        self, message_key: str, channel: Channel, subject_id: str, job: str | None = None
    ) -> bool:
        now = self._now()
        values: dict[str, Any] = {
            ":pending": "pending",
            ":retry": "retry",
            ":subject": subject_id,
            ":zero": 0,
            ":one": 1,
            ":now": now,
            ":expires": now + LEDGER_TTL_SECONDS,
        }
        expression = (
            "SET #state = :pending, subject_id = :subject, claimed_at = :now, updated_at = :now, "
            "attempts = if_not_exists(attempts, :zero) + :one, expires_at = :expires"
        )
        if job is not None:
            expression += ", job = :job"
            values[":job"] = job
        claimed = self._table.update(
            _record_key(message_key),
            channel,
            expression,
            values=values,
            names={"#state": "state"},
            condition="attribute_not_exists(pk) OR #state = :retry",
        )
        return claimed is not None

    def _resolve_claimed(
        self, message_key: str, channel: Channel, find: Finder | None = None
    ) -> Delivery:
        record = self.record(message_key, channel) or {}
        state = record.get("state")
        if state != "pending":
            logger.info(
                "notification already sent",
                extra={"message_key": message_key, "channel": channel, "state": state},
            )
            return Delivery("skipped")
        if self._now() - int(record.get("claimed_at", 0)) < STALE_PENDING_SECONDS:
            raise DeliveryInFlightError(message_key, channel)
        return self.settle(message_key, channel, record, find)

    def settle(
        self,
        message_key: str,
        channel: Channel,
        record: dict[str, Any],
        find: Finder | None = None,
    ) -> Delivery:
        """Settle a stale pending record from the provider's status of the message, without sending again."""
        provider_id = record.get("provider_id")
        if not provider_id and find is not None:
            provider_id = find(int(record.get("claimed_at", 0)))
            if provider_id is None:
                return self._release(message_key, channel)
            if channel == "sms":
                self._link_sms(message_key, provider_id)
        status = self._lookup(channel, provider_id) if provider_id and self._lookup else None

        if status is None:
            now = self._now()
            settled = self._mark(
                message_key,
                channel,
                "unknown",
                expected="pending",
                extra={
                    "gsi1pk": UNKNOWN_INDEX_KEY,
                    "gsi1sk": f"{now:010d}#{message_key}#{channel}",
                },
            )
            if settled:
                logger.warning(
                    "notification outcome unknown",
                    extra={"message_key": message_key, "channel": channel},
                )
            return Delivery("unknown")

        if status in _FAILED_STATUSES:
            self._mark(message_key, channel, "failed", expected="pending", failure=status)
            return Delivery("failed")
        self._mark(message_key, channel, "sent", expected="pending", provider_id=provider_id)
        logger.info(
            "notification settled as sent", extra={"message_key": message_key, "channel": channel}
        )
        return Delivery("skipped")

    def reopen(self, message_key: str, channel: Channel, provider_id: str) -> bool:
        """Reopen a record marked sent with `provider_id`, whose message the provider never sent.

        The record goes back to `retry`, so the next delivery claims it and sends again.
        Returns False, changing nothing, when the record moved on (another copy reopened it, or
        it was sent again since) or already reopened MAX_OVERFLOW_RESENDS times.
        """
        reopened = self._table.update(
            _record_key(message_key),
            channel,
            "SET #state = :retry, updated_at = :now, failure = :failure, "
            "overflow_resends = if_not_exists(overflow_resends, :zero) + :one",
            values={
                ":retry": "retry",
                ":sent": "sent",
                ":provider_id": provider_id,
                ":now": self._now(),
                ":failure": "the provider did not send the message",
                ":zero": 0,
                ":one": 1,
                ":max": MAX_OVERFLOW_RESENDS,
            },
            names={"#state": "state"},
            condition="#state = :sent AND provider_id = :provider_id AND "
            "(attribute_not_exists(overflow_resends) OR overflow_resends < :max)",
        )
        if reopened is not None:
            logger.info(
                "notification reopened to send again",
                extra={"message_key": message_key, "channel": channel},
            )
        return reopened is not None

    def _mark_outcome(self, message_key: str, channel: Channel, state: str, **fields: Any) -> None:
        """Record what the provider did with a claimed message, trying throttled writes again."""
        for attempt in range(1, OUTCOME_WRITE_ATTEMPTS + 1):
            try:
                self._mark(message_key, channel, state, **fields)
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code not in OUTCOME_WRITE_ERRORS or attempt == OUTCOME_WRITE_ATTEMPTS:
                    raise
                logger.warning(
                    "notification outcome write failed, trying again",
                    extra={
                        "message_key": message_key,
                        "channel": channel,
                        "error_code": code,
                        "attempt": attempt,
                    },
                )
                self._sleep(random.uniform(0, OUTCOME_WRITE_BACKOFF_SECONDS * 2 ** (attempt - 1)))

    def _release(self, message_key: str, channel: Channel) -> Delivery:
        """Free a stale claim whose message the provider never received, so it is sent again."""
        released = self._mark(
            message_key,
            channel,
            "retry",
            expected="pending",
            failure="the provider never received the message",
        )
        if not released:
            # Another worker settled the record first.
            return Delivery("skipped")
        logger.warning(
            "notification claim released: the provider never received the message",
            extra={"message_key": message_key, "channel": channel},
        )
        return Delivery("released")

    def _mark(
        self,
        message_key: str,
        channel: Channel,
        state: str,
        *,
        expected: str | None = None,
        provider_id: str | None = None,
        failure: str | None = None,
        error_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        attributes: dict[str, Any] = {
            "state": state,
            "updated_at": self._now(),
            "provider_id": provider_id,
            "failure": failure,
            "error_code": error_code,
            **(extra or {}),
        }
        present = {name: value for name, value in attributes.items() if value is not None}
        names = {f"#a{index}": name for index, name in enumerate(present)}
        values = {f":v{index}": value for index, value in enumerate(present.values())}
        expression = "SET " + ", ".join(f"#a{index} = :v{index}" for index in range(len(present)))
        condition = None
        if expected is not None:
            names["#expected_state"] = "state"
            values[":expected"] = expected
            condition = "#expected_state = :expected"
        updated = self._table.update(
            _record_key(message_key),
            channel,
            expression,
            values=values,
            names=names,
            condition=condition,
        )
        return updated is not None

    def _link_sms(self, message_key: str, provider_id: str) -> None:
        # Status callbacks carry only the message sid; this item points back to the ledger
        # and stores the delivery state, even when a callback arrived first.
        self._table.update(
            f"SMS#{provider_id}",
            "SMS",
            "SET ledger_pk = :ledger_pk, ledger_sk = :ledger_sk, "
            "expires_at = if_not_exists(expires_at, :expires)",
            values={
                ":ledger_pk": _record_key(message_key),
                ":ledger_sk": "sms",
                ":expires": self._now() + LEDGER_TTL_SECONDS,
            },
        )

    def _link_email(self, message_key: str, provider_id: str, subject_id: str) -> None:
        # SES bounce and complaint events carry only the message id. This item records which
        # account the message went to, also before the address was confirmed.
        self._table.put(
            {
                "pk": f"{SES_MESSAGE_PREFIX}{provider_id}",
                "sk": SES_MESSAGE_SK,
                "ledger_pk": _record_key(message_key),
                "subject_id": subject_id,
                "expires_at": self._now() + LEDGER_TTL_SECONDS,
            }
        )


def sent_email_subject(table: MainTable, ses_message_id: str) -> str | None:
    """Return the id of the account an e-mail went to, from SES's message id, if we sent it."""
    item = table.get(f"{SES_MESSAGE_PREFIX}{ses_message_id}", SES_MESSAGE_SK)
    return str(item["subject_id"]) if item else None


def link_provider_id(
    table: MainTable, message_key: str, channel: str, provider_id: str, now: int
) -> None:
    """Record the provider's id on a still-pending record, from a status callback.

    The callback URL names the message key, so a callback that arrives while the sender is
    still pending (or after it crashed) gives the settlement the message id to look up.
    Records in any other state, and records that already have an id, are left alone.
    """
    table.update(
        _record_key(message_key),
        channel,
        "SET provider_id = :provider_id, linked_at = :now",
        values={":provider_id": provider_id, ":now": now, ":pending": "pending"},
        names={"#state": "state"},
        condition="#state = :pending AND attribute_not_exists(provider_id)",
    )


def unknown_deliveries(table: MainTable, limit: int = 100) -> list[dict[str, Any]]:
    """Return the deliveries settled as `unknown`, oldest first, for support to follow up.

    Each entry names the message key, channel and subject id, never an address: support looks
    the subscriber up and contacts them to check whether the message arrived.
    """
    keys = [
        (item["pk"], item["sk"])
        for item in table.query_index("gsi1", UNKNOWN_INDEX_KEY, "~", min(limit, 100))
    ]
    found = table.get_many(keys) if keys else {}
    entries = []
    for pk, sk in keys:
        record = found.get((pk, sk))
        if record is None or record.get("state") != "unknown":
            continue
        entries.append(
            {
                "message_key": pk.removeprefix("NOTIFY#"),
                "channel": sk,
                "subject_id": record.get("subject_id"),
                "attempts": record.get("attempts"),
                "claimed_at": record.get("claimed_at"),
                "settled_at": record.get("updated_at"),
            }
        )
    return entries
