"""Phone reconfirmation: stop SMS to a number not confirmed for a while, and ask by e-mail.

Chinese carriers reassign mobile numbers that were given up, so a number that proved to be the
subscriber's a year ago may belong to a stranger now. The profile records when the number was
last proven in `mobile_confirmed_at`, set when signup verifies the code and again at each
sign-in by SMS code. Profiles written before that attribute existed fall back to `created_at`,
the moment signup verified the number.

A daily run pages the sparse `ENTITLED` index, reads each page's PROFILE and PREFS items, and
for every subscriber whose number was proven longer ago than the configured number of months
and whose SMS state is "ok":
1. queues a PhoneReconfirmJob, whose e-mail asks the subscriber to sign in (which proves the
   number again) or to reply with a new number;
2. sets the SMS state to "unconfirmed" (no SMS from then on), in a transaction that checks the
   profile still has the confirmation time the run read, so a sign-in in between wins.

The job goes first: a crash between the two repeats the job the next day, and the notifier's
ledger key (`phone_reconfirm:{subscriber}:{confirmed_at}`) sends its e-mail once. Each run
writes a checkpoint (`PHONERECONFIRM#{yyyymmdd}` / `RUN`) after every page, so a retried run
continues after the last finished page.

Page cost: one Query of the index and one BatchGetItem per 50 subscribers. Computing the due
subscribers from the ENTITLED pages, rather than keeping an index of confirmation times, keeps
no extra item per subscriber for deletion to find, and covers profiles written before
`mobile_confirmed_at` existed.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from idsentry.adapters.dynamo import key
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import ConditionFailedError, MainTable, Write, update_write
from idsentry.clock import SHANGHAI, epoch
from idsentry.models.jobs import PhoneReconfirmJob
from idsentry.services.entitled_runs import PAGE_SIZE, run_over_entitled
from idsentry.services.preferences import PREFS_SK
from idsentry.settings import CoreSettings

logger = logging.getLogger(__name__)

# A day's checkpoint is only read on that day; TTL removes it after a week.
RUN_RETENTION_SECONDS = 7 * 24 * 3600
PROFILE_SK = "PROFILE"
# BatchGetItem reads at most 100 keys, and each subscriber needs two.
SUBSCRIBERS_PER_READ = 50
UNCONFIRMED_REASON = "reconfirm_due"
CONFIRMED_REASON = "mobile_confirmed"


class PhoneReconfirmSettings(CoreSettings):
    """Settings of the daily phone reconfirmation run."""

    # Months after which a number that was not proven again stops receiving SMS.
    phone_reconfirm_months: int = 6


@dataclass(frozen=True)
class DueSubscriber:
    """A subscriber whose number is due for reconfirmation, with the confirmation time read."""

    subscriber_id: str
    confirmed_at: int
    # True when the profile has `mobile_confirmed_at`; False when the time is its `created_at`.
    explicit: bool


def message_key(subscriber_id: str, confirmed_at: int) -> str:
    """Return the delivery-ledger key of the e-mail asking to reconfirm one confirmation."""
    return f"phone_reconfirm:{subscriber_id}:{confirmed_at}"


def reconfirm_job(due: DueSubscriber) -> PhoneReconfirmJob:
    """Return the e-mail job of one due confirmation; its id is the same on every run."""
    return PhoneReconfirmJob(
        job_id=f"phone_reconfirm_{due.subscriber_id}_{due.confirmed_at}",
        subscriber_id=due.subscriber_id,
        confirmed_at=due.confirmed_at,
    )


def confirmation_time(profile: dict[str, Any]) -> tuple[int, bool] | None:
    """Return when the profile's number was last proven and whether that was recorded as such."""
    if profile.get("mobile_confirmed_at") is not None:
        return int(profile["mobile_confirmed_at"]), True
    if profile.get("created_at") is not None:
        return int(profile["created_at"]), False
    return None


def due_before(now: datetime, months: int) -> int:
    """Return the epoch second before which a confirmation is due: `months` calendar months ago.

    Months count in China time. A day that the earlier month lacks becomes that month's last
    day, so 31 August minus 6 months is 28 or 29 February.
    """
    if months < 1:
        raise ValueError(f"invalid months {months}: expected 1 or more")
    local = now.astimezone(SHANGHAI)
    month_index = local.year * 12 + (local.month - 1) - months
    year, month = divmod(month_index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return epoch(local.replace(year=year, month=month + 1, day=day))


def months_between(confirmed_at: int, now: datetime) -> int:
    """Return the whole calendar months (China time) from `confirmed_at` to `now`, at least 1."""
    start = datetime.fromtimestamp(confirmed_at, SHANGHAI)
    local = now.astimezone(SHANGHAI)
    months = (local.year - start.year) * 12 + local.month - start.month
    if (local.day, local.time()) < (start.day, start.time()):
        months -= 1
    return max(months, 1)


def due_subscribers(
    items: dict[tuple[str, str], dict[str, Any]], subscriber_ids: list[str], cutoff: int
) -> list[DueSubscriber]:
    """Select the subscribers whose number was proven before `cutoff` and whose SMS state is ok."""
    due = []
    for subscriber_id in subscriber_ids:
        pk = f"SUB#{subscriber_id}"
        profile = items.get((pk, PROFILE_SK))
        prefs = items.get((pk, PREFS_SK)) or {}
        if profile is None or (prefs.get("sms_state") or "ok") != "ok":
            continue
        confirmation = confirmation_time(profile)
        if confirmation is None or confirmation[0] >= cutoff:
            continue
        due.append(DueSubscriber(subscriber_id, confirmation[0], confirmation[1]))
    return due


def mark_unconfirmed(table: MainTable, due: DueSubscriber, now: int) -> bool:
    """Set the SMS state to "unconfirmed"; return False when a sign-in or a provider state won.

    The PREFS update also records the e-mail's ledger key, so that account deletion finds it.
    """
    pk = f"SUB#{due.subscriber_id}"
    if due.explicit:
        unchanged = "mobile_confirmed_at = :confirmed"
        values: dict[str, Any] = {":confirmed": due.confirmed_at}
    else:
        unchanged = "attribute_not_exists(mobile_confirmed_at)"
        values = {}
    profile_check = Write(
        "profile",
        "ConditionCheck",
        {
            "Key": key(pk, PROFILE_SK),
            "ConditionExpression": f"attribute_exists(pk) AND {unchanged}",
        },
        values,
    )
    prefs_update = update_write(
        "preferences",
        pk,
        PREFS_SK,
        "SET sms_state = :unconfirmed, sms_state_reason = :reason, updated_at = :now "
        "ADD reconfirm_message_keys :message_key",
        values={
            ":unconfirmed": "unconfirmed",
            ":reason": UNCONFIRMED_REASON,
            ":now": now,
            ":message_key": {message_key(due.subscriber_id, due.confirmed_at)},
            ":ok": "ok",
        },
        condition="attribute_not_exists(sms_state) OR sms_state = :ok",
    )
    try:
        table.transact([profile_check, prefs_update])
    except ConditionFailedError:
        return False
    return True


def plan_reconfirmations(
    table: MainTable, jobs: JobQueue, now: datetime, months: int, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    """Stop SMS to, and queue an e-mail for, every entitled subscriber whose number is due.

    Continues after the checkpoint of an earlier attempt of the same China day, and does
    nothing when that day's run already finished.
    """
    day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
    cutoff = due_before(now, months)
    now_epoch = epoch(now)
    counts = {"checked": 0, "due": 0, "unconfirmed": 0}

    def handle_page(subscriber_ids: list[str]) -> None:
        due = _due_in_page(table, subscriber_ids, cutoff)
        jobs.send_many([reconfirm_job(subscriber) for subscriber in due])
        for subscriber in due:
            if mark_unconfirmed(table, subscriber, now_epoch):
                counts["unconfirmed"] += 1
        counts["checked"] += len(subscriber_ids)
        counts["due"] += len(due)

    checkpoint = {"day": day, "expires_at": now_epoch + RUN_RETENTION_SECONDS}
    outcome = run_over_entitled(table, f"PHONERECONFIRM#{day}", handle_page, page_size, checkpoint)
    if outcome.already_finished:
        logger.info("phone reconfirmation already run", extra={"day": day})
        return {"day": day, "checked": 0, "due": 0, "unconfirmed": 0, "already_finished": True}

    logger.info("phone reconfirmation run finished", extra={"day": day, "months": months, **counts})
    return {"day": day, **counts, "already_finished": False}


def _due_in_page(table: MainTable, subscriber_ids: list[str], cutoff: int) -> list[DueSubscriber]:
    due: list[DueSubscriber] = []
    for start in range(0, len(subscriber_ids), SUBSCRIBERS_PER_READ):
        chunk = subscriber_ids[start : start + SUBSCRIBERS_PER_READ]
        keys = [(f"SUB#{sid}", sk) for sid in chunk for sk in (PROFILE_SK, PREFS_SK)]
        due.extend(due_subscribers(table.get_many(keys), chunk, cutoff))
    return due


def confirm_mobile(table: MainTable, subscriber_id: str, now: int) -> None:
    """Record that the subscriber proved the number now, and resume SMS if reconfirmation stopped it.

    Called after a sign-in code to the number was accepted. Only the "unconfirmed" state is
    cleared; an opt-out or an invalid number stays as the provider reported it. A deleted
    account is left alone.
    """
    pk = f"SUB#{subscriber_id}"
    profile_update = update_write(
        "profile",
        pk,
        PROFILE_SK,
        "SET mobile_confirmed_at = :now",
        values={":now": now},
        condition="attribute_exists(pk)",
    )
    writes = [profile_update]
    prefs = table.get(pk, PREFS_SK) or {}
    if prefs.get("sms_state") == "unconfirmed":
        writes.append(
            update_write(
                "preferences",
                pk,
                PREFS_SK,
                "SET sms_state = :ok, sms_state_reason = :reason, updated_at = :now",
                values={
                    ":ok": "ok",
                    ":reason": CONFIRMED_REASON,
                    ":now": now,
                    ":unconfirmed": "unconfirmed",
                },
                condition="sms_state = :unconfirmed",
            )
        )

    try:
        table.transact(writes)
    except ConditionFailedError as exc:
        if exc.name == "profile":
            logger.info(
                "mobile confirmation skipped: no profile", extra={"subscriber_id": subscriber_id}
            )
            return
        # A provider changed the state since it was read: record the confirmation alone.
        table.transact([profile_update])
        return
    if len(writes) > 1:
        logger.info("mobile reconfirmed, sms resumed", extra={"subscriber_id": subscriber_id})
