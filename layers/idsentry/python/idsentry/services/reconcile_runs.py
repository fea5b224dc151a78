"""Reconciliation runs: requests, the daily plan, and each run's status item in the main table.

A run is one `RECON#{reconciliation_id}` / `RUN` item that moves queued → running → done, or
to failed (and back to running when SQS retries it). The worker claims a run with a conditional
update and a lease, so a message delivered twice, or a schedule fired twice, runs once, and a
finished run is never run again.

Admin requests are idempotent two ways. An `Idempotency-Key` maps to the run it started for 24
hours. Without one, the same period, mode and locale return the run that is still queued or
running, through the pointer item `RECONREQ#{from}#{to}#{mode}#{locale}`. After that run has
ended, the same request starts a new one, so finance can run a period again after a repair.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import ConditionFailedError, MainTable, put_write
from idsentry.clock import SHANGHAI, epoch
from idsentry.i18n import SUPPORTED_LOCALES, Locale
from idsentry.ids import new_id
from idsentry.models.billing_jobs import ReconciliationJob
from idsentry.services.reconcile_model import (
    Period,
    ReconcileInputError,
    Reconciliation,
    parse_period,
    previous_day,
)

logger = logging.getLogger(__name__)

QUEUED: Final = "queued"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"
RUN_SK: Final = "RUN"
# Run items and the finance bucket's files are kept this long (the bucket's lifecycle rule in
# template.yaml states the same number of days).
RETENTION_DAYS: Final = 400
IDEMPOTENCY_SECONDS: Final = 24 * 3600
MAX_IDEMPOTENCY_KEY_LENGTH: Final = 255
# A request that loses the race for the pointer item reads the winner's run, so a few attempts do.
REQUEST_ATTEMPTS: Final = 3
REQUEST_FIELDS: Final = ("from", "to", "repair", "locale")
FILE_PREFIX: Final = "reconciliations"
# The same pattern as ReconciliationJob.reconciliation_id: `rcn_` and a ULID or `day_yyyymmdd`.
ID_PATTERN: Final = re.compile(r"rcn_[0-9A-Za-z_]{1,40}")
# The four files of a run, by name, with their content types.
FILES: Final = {
    "reconciliation.csv": "text/csv; charset=utf-8",
    "summary.zh-CN.html": "text/html; charset=utf-8",
    "summary.en.html": "text/html; charset=utf-8",
    "reconciliation.json": "application/json; charset=utf-8",
}


class RunNotFoundError(LookupError):
    """No reconciliation run has this id."""


def record_pk(reconciliation_id: str) -> str:
    return f"RECON#{reconciliation_id}"


def daily_id(day: date) -> str:
    """Return the id of the scheduled run for `day`, the same on every call for that day."""
    return f"rcn_day_{day.strftime('%Y%m%d')}"


def file_key(reconciliation_id: str, name: str) -> str:
    """Return the finance bucket key of one of a run's files."""
    if name not in FILES:
        raise ValueError(f"name must be one of {', '.join(FILES)}, got {name!r}")
    return f"{FILE_PREFIX}/{reconciliation_id}/{name}"


def is_valid_id(text: str | None) -> bool:
    """Return whether `text` has the form of a reconciliation id."""
    return text is not None and ID_PATTERN.fullmatch(text) is not None


@dataclass(frozen=True)
class RunRequest:
    """An admin request for a run: the period, repair mode, CSV locale and optional key."""

    period: Period
    repair: bool
    locale: Locale
    idempotency_key: str | None = None

    @property
    def mode(self) -> str:
        return "repair" if self.repair else "check"

    def fingerprint(self) -> str:
        """Return the SHA-256 of what makes two requests the same run."""
        text = f"{self.period.first}|{self.period.last}|{self.mode}|{self.locale}"
        return hashlib.sha256(text.encode()).hexdigest()

    def pointer_pk(self) -> str:
        first, last = self.period.first.isoformat(), self.period.last.isoformat()
        return f"RECONREQ#{first}#{last}#{self.mode}#{self.locale}"

    def key_pk(self) -> str | None:
        if self.idempotency_key is None:
            return None
        return f"RECONKEY#{hashlib.sha256(self.idempotency_key.encode()).hexdigest()}"


def parse_request(body: Mapping[str, Any], idempotency_key: str | None, today: date) -> RunRequest:
    """Validate a request body {"from", "to", "repair", "locale"} and the Idempotency-Key header.

    Raises ReconcileInputError naming the first invalid field. A period may end today (a
    partial day) but may not start after it.
    """
    unknown = sorted(set(body) - set(REQUEST_FIELDS))
    if unknown:
        raise ReconcileInputError(
            unknown[0], f"unknown field {unknown[0]}: expected {', '.join(REQUEST_FIELDS)}"
        )
    for name in ("from", "to"):
        if name in body and body[name] is not None and not isinstance(body[name], str):
            raise ReconcileInputError(
                name, f"invalid {name}: expected a date string as YYYY-MM-DD, e.g. 2026-12-04"
            )
    period = parse_period(body.get("from"), body.get("to"))
    if period.first > today:
        raise ReconcileInputError(
            "from",
            f"invalid from: {period.first.isoformat()} is after today "
            f"({today.isoformat()}, Asia/Shanghai)",
        )

    repair = body.get("repair", False)
    if not isinstance(repair, bool):
        raise ReconcileInputError("repair", "invalid repair: expected true or false")
    locale = body.get("locale", "zh-CN")
    if locale not in SUPPORTED_LOCALES:
        raise ReconcileInputError(
            "locale", f"invalid locale: expected one of {', '.join(SUPPORTED_LOCALES)}"
        )

    if idempotency_key is not None and (
        not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH
        or not all(33 <= ord(character) <= 126 for character in idempotency_key)
    ):
        raise ReconcileInputError(
            "Idempotency-Key",
            "invalid Idempotency-Key: expected 1 to 255 visible ASCII characters",
        )
    return RunRequest(period, repair, locale, idempotency_key)


def new_record(
    reconciliation_id: str,
    period: Period,
    *,
    repair: bool,
    locale: str,
    requested_by: str,
    request_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Return the item of a new queued run."""
    created = epoch(now)
    return {
        "pk": record_pk(reconciliation_id),
        "sk": RUN_SK,
        "reconciliation_id": reconciliation_id,
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "repair": repair,
        "locale": locale,
        "requested_by": requested_by,
        "request_id": request_id,
        "status": QUEUED,
        "attempts": 0,
        "created_at": created,
        "expires_at": created + RETENTION_DAYS * 24 * 3600,
    }


def job_of(record: Mapping[str, Any]) -> ReconciliationJob:
    """Return the queue message of a run item."""
    return ReconciliationJob(
        job_id=new_id("job"),
        reconciliation_id=str(record["reconciliation_id"]),
        from_date=str(record["from"]),
        to_date=str(record["to"]),
        repair=bool(record["repair"]),
        locale=record["locale"],
        requested_by=record["requested_by"],
        request_id=record.get("request_id"),
    )


def get_run(table: MainTable, reconciliation_id: str) -> dict[str, Any]:
    """Return a run's item, or raise RunNotFoundError."""
    record = table.get(record_pk(reconciliation_id), RUN_SK)
    if record is None:
        raise RunNotFoundError(reconciliation_id)
    return record


# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RequestOutcome:
    """The run a request names, and whether this request created it."""

    record: dict[str, Any]
    created: bool


def request_run(
    table: MainTable,
    queue: JobQueue,
    request: RunRequest,
    *,
    request_id: str,
    now: datetime,
) -> RequestOutcome:
    """Return the run this request names, starting one when none is queued or running.

    Raises ReconcileInputError on "Idempotency-Key" when the key was used for another request.
    """
    for _ in range(REQUEST_ATTEMPTS):
        existing = _existing_run(table, request, epoch(now))
        if existing is not None:
            return RequestOutcome(existing, created=False)

        record = new_record(
            new_id("rcn"),
            request.period,
            repair=request.repair,
            locale=request.locale,
            requested_by="admin",
            request_id=request_id,
            now=now,
        )
        try:
            table.transact(_creation_writes(table, request, record, epoch(now)))
        except ConditionFailedError:
            # Another request created a run for the same pointer or key first; read it.
            continue

        _enqueue(table, queue, record, now)
        logger.info(
            "reconciliation requested",
            extra={
                "reconciliation_id": record["reconciliation_id"],
                "request_id": request_id,
                "repair": request.repair,
            },
        )
        return RequestOutcome(record, created=True)
    raise RuntimeError("reconciliation request kept losing races for its pointer item")


def _existing_run(table: MainTable, request: RunRequest, now: int) -> dict[str, Any] | None:
    """Return the run the request's key or pointer names, if it still counts."""
    key_pk = request.key_pk()
    if key_pk is not None:
        key_item = table.get(key_pk, "KEY")
        if key_item is not None and int(key_item.get("expires_at", 0)) > now:
            if key_item.get("fingerprint") != request.fingerprint():
                raise ReconcileInputError(
                    "Idempotency-Key",
                    "invalid Idempotency-Key: it was used for a different request; "
                    "send a new key for new parameters",
                )
            return table.get(record_pk(str(key_item["reconciliation_id"])), RUN_SK)

    pointer = table.get(request.pointer_pk(), "ACTIVE")
    if pointer is None:
        return None
    record = table.get(record_pk(str(pointer["reconciliation_id"])), RUN_SK)
    if record is not None and record.get("status") in (QUEUED, RUNNING):
        return record
    return None


def _creation_writes(
    table: MainTable, request: RunRequest, record: dict[str, Any], now: int
) -> list[Any]:
    pointer = table.get(request.pointer_pk(), "ACTIVE")
    if pointer is None:
        pointer_condition = "attribute_not_exists(pk)"
        pointer_values: dict[str, Any] = {}
    else:
        # Replace only the pointer that was read, so that two requests cannot both win.
        pointer_condition = "reconciliation_id = :previous"
        pointer_values = {":previous": pointer["reconciliation_id"]}
    writes = [
        put_write(
            "pointer",
            {
                "pk": request.pointer_pk(),
                "sk": "ACTIVE",
                "reconciliation_id": record["reconciliation_id"],
                "expires_at": record["expires_at"],
            },
            condition=pointer_condition,
            values=pointer_values,
        ),
        put_write("run", record, condition="attribute_not_exists(pk)"),
    ]
    key_pk = request.key_pk()
    if key_pk is not None:
        writes.append(
            put_write(
                "idempotency_key",
                {
                    "pk": key_pk,
                    "sk": "KEY",
                    "reconciliation_id": record["reconciliation_id"],
                    "fingerprint": request.fingerprint(),
                    "expires_at": now + IDEMPOTENCY_SECONDS,
                },
                condition="attribute_not_exists(pk) OR expires_at < :now",
                values={":now": now},
            )
        )
    return writes


def _enqueue(table: MainTable, queue: JobQueue, record: Mapping[str, Any], now: datetime) -> None:
    """Send the run's job. A run whose job could not be sent is marked failed, not left queued."""
    try:
        queue.send(job_of(record))
    except Exception:
        table.update(
            record_pk(str(record["reconciliation_id"])),
            RUN_SK,
            "SET #status = :failed, finished_at = :now, #error = :error",
            values={
                ":failed": FAILED,
                ":now": epoch(now),
                ":error": {"type": "EnqueueFailed", "transient": True},
                ":queued": QUEUED,
            },
            condition="#status = :queued",
            names={"#status": "status", "#error": "error"},
        )
        raise


# ---------------------------------------------------------------------------- the daily plan


def plan_daily(table: MainTable, queue: JobQueue, scheduled: datetime) -> dict[str, Any]:
    """Queue the run of the day before `scheduled` (Asia/Shanghai) unless it has started.

    The run's id is the day's, so a schedule fired twice finds the same item. A run still
    queued is sent again, which is harmless: the worker claims it once.
    """
    period = previous_day(scheduled)
    reconciliation_id = daily_id(period.first)
    record = new_record(
        reconciliation_id,
        period,
        repair=False,
        locale="zh-CN",
        requested_by="schedule",
        request_id=None,
        now=scheduled,
    )
    created = table.put(record, condition="attribute_not_exists(pk)")
    current = get_run(table, reconciliation_id)

    if current["status"] != QUEUED:
        logger.info(
            "daily reconciliation already started",
            extra={"reconciliation_id": reconciliation_id, "status": current["status"]},
        )
        return {
            "reconciliation_id": reconciliation_id,
            "queued": False,
            "status": current["status"],
        }
    queue.send(job_of(current))
    logger.info(
        "daily reconciliation queued",
        extra={"reconciliation_id": reconciliation_id, "item_written": created},
    )
    return {"reconciliation_id": reconciliation_id, "queued": True, "status": QUEUED}


# ---------------------------------------------------------------------------- the worker's steps


def ensure_run(table: MainTable, job: ReconciliationJob, now: datetime) -> dict[str, Any]:
    """Return the job's run item, writing it from the job when it does not exist (a replay)."""
    record = table.get(record_pk(job.reconciliation_id), RUN_SK)
    if record is not None:
        return record
    period = parse_period(job.from_date, job.to_date)
    table.put(
        new_record(
            job.reconciliation_id,
            period,
            repair=job.repair,
            locale=job.locale,
            requested_by=job.requested_by,
            request_id=job.request_id,
            now=now,
        ),
        condition="attribute_not_exists(pk)",
    )
    return get_run(table, job.reconciliation_id)


def claim(
    table: MainTable, reconciliation_id: str, now: datetime, lease_seconds: int
) -> str | None:
    """Mark the run running for `lease_seconds` and return the claim id, or None if taken.

    A queued or failed run can be claimed, and so can a running one whose lease ran out
    (its worker died). A done run never can.
    """
    claim_id = new_id("clm")
    moment = epoch(now)
    updated = table.update(
        record_pk(reconciliation_id),
        RUN_SK,
        "SET #status = :running, started_at = :now, lease_until = :until, claim_id = :claim "
        "ADD attempts :one REMOVE #error",
        values={
            ":running": RUNNING,
            ":queued": QUEUED,
            ":failed": FAILED,
            ":now": moment,
            ":until": moment + lease_seconds,
            ":claim": claim_id,
            ":one": 1,
        },
        condition="#status IN (:queued, :failed) OR (#status = :running AND lease_until < :now)",
        names={"#status": "status", "#error": "error"},
    )
    return claim_id if updated is not None else None


def summary_of(result: Reconciliation) -> dict[str, Any]:
    """Return what a finished run item records: counts, totals, repairs and Stripe requests."""
    outcomes = Counter(repair.outcome for repair in result.repairs)
    return {
        "counts": result.counts(),
        "rows": len(result.rows),
        "totals": {currency: vars(totals) for currency, totals in sorted(result.totals.items())},
        "repairs": dict(sorted(outcomes.items())),
        "stripe_requests": dict(sorted(result.stripe_requests.items())),
        "stripe_objects": dict(sorted(result.objects.items())),
    }


def finish(
    table: MainTable,
    reconciliation_id: str,
    claim_id: str,
    summary: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any] | None:
    """Mark the claimed run done with its summary and return the item, or None if the claim was lost."""
    return table.update(
        record_pk(reconciliation_id),
        RUN_SK,
        "SET #status = :done, finished_at = :now, counts = :counts, #rows = :rows, "
        "totals = :totals, repairs = :repairs, stripe_requests = :requests, "
        "stripe_objects = :objects REMOVE lease_until",
        values={
            ":done": DONE,
            ":running": RUNNING,
            ":now": epoch(now),
            ":claim": claim_id,
            ":counts": summary["counts"],
            ":rows": summary["rows"],
            ":totals": summary["totals"],
            ":repairs": summary["repairs"],
            ":requests": summary["stripe_requests"],
            ":objects": summary["stripe_objects"],
        },
        condition="#status = :running AND claim_id = :claim",
        names={"#status": "status", "#rows": "rows"},
    )


def fail(
    table: MainTable,
    reconciliation_id: str,
    claim_id: str,
    error: BaseException,
    now: datetime,
) -> None:
    """Mark the claimed run failed with the error's type; SQS may retry it later."""
    transient = bool(getattr(error, "transient", True))
    table.update(
        record_pk(reconciliation_id),
        RUN_SK,
        "SET #status = :failed, finished_at = :now, #error = :error REMOVE lease_until",
        values={
            ":failed": FAILED,
            ":running": RUNNING,
            ":now": epoch(now),
            ":claim": claim_id,
            ":error": {"type": type(error).__name__, "transient": transient},
        },
        condition="#status = :running AND claim_id = :claim",
        names={"#status": "status", "#error": "error"},
    )


def record_email(
    table: MainTable,
    reconciliation_id: str,
    now: datetime,
    *,
    message_id: str | None = None,
    error_code: str | None = None,
) -> None:
    """Record that the finance e-mail was sent, or that it failed for good with `error_code`."""
    if message_id is not None:
        expression = "SET emailed_at = :now, email_message_id = :message REMOVE email_error"
        values: dict[str, Any] = {":now": epoch(now), ":message": message_id}
    else:
        expression = "SET email_error = :error, email_failed_at = :now"
        values = {":now": epoch(now), ":error": error_code or "unknown"}
    table.update(record_pk(reconciliation_id), RUN_SK, expression, values=values)


# ---------------------------------------------------------------------------- views


def run_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return a run item as the admin API shows it: ids, period, status, counts, never keys."""
    view: dict[str, Any] = {
        "reconciliation_id": record["reconciliation_id"],
        "status": record["status"],
        "period": {"from": record["from"], "to": record["to"], "time_zone": "Asia/Shanghai"},
        "repair": bool(record.get("repair")),
        "locale": record.get("locale"),
        "requested_by": record.get("requested_by"),
        "attempts": int(record.get("attempts", 0)),
        "created_at": record.get("created_at"),
        "started_at": record.get("started_at"),
        "finished_at": record.get("finished_at"),
    }
    for name in (
        "counts",
        "rows",
        "totals",
        "repairs",
        "stripe_requests",
        "stripe_objects",
        "error",
        "emailed_at",
        "email_error",
    ):
        if record.get(name) is not None:
            view[name] = record[name]
    return view


def beijing_date(moment: datetime) -> date:
    """Return the Asia/Shanghai calendar date of an aware datetime."""
    return moment.astimezone(SHANGHAI).date()
