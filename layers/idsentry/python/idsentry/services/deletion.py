"""Account deletion (PIPL article 47), run as a job of recorded steps that resumes after a crash.

`deletion_request.request_deletion` records the request on `SUB#{id}/DELETION` and queues an
`AccountDeletionJob`. `run_deletion` then runs the steps in
`STEPS` order and adds each finished step to the item's `steps_done`, so a job that stopped
anywhere repeats at most the step it was in. Every step is idempotent:

- `hold` records the keys later steps need (`refs`) and the ledger pseudonym, while the
  partition and the data key still exist;
- `stripe` turns the customer's link into a tombstone that names the ledger archive, cancels
  open subscriptions and unsets the customer's personal fields;
- `exports` deletes every version of every export file;
- `reports` deletes every version of every report and dossier file;
- `ledger` copies the money ledger to `ARCHIVE#{pseudonym}`, kept for accounting law;
- `twilio` empties the stored text of every SMS sent to the subscriber's number;
- `ses` removes the address from SES's account-level suppression list;
- `references` deletes the items outside the partition that name the subscriber or their
  fingerprints, and points other subscribers' references at the pseudonym;
- `partition` deletes the subscriber's partition, except the deletion item itself;
- `data_key` deletes the data key, so ciphertext left in backups can no longer be read;
- `finish` writes the audit record and deletes the deletion item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from idsentry.adapters.exports import ExportObjects
from idsentry.adapters.keys import DataKeyStore
from idsentry.adapters.sms import SmsRedaction
from idsentry.adapters.stripe_gateway import StripeAccountEraser
from idsentry.adapters.suppression import SuppressionList
from idsentry.adapters.table import MainTable
from idsentry.clock import Clock, epoch
from idsentry.crypto import Pepper, decrypt_field, keyed_hash
from idsentry.object_keys import report_prefix
from idsentry.services.audit import AuditRecord, AuditTrail, AuditWriteError
from idsentry.services.deletion_references import delete_references
from idsentry.services.deletion_request import DELETION_SK
from idsentry.services.export import export_prefix
from idsentry.services.subscriber_records import (
    SubscriberRecords,
    delivery_records,
    load_records,
    message_keys,
    read_many,
    reassignment_takers,
    subscriber_pk,
    taker_signup_ids,
    watch_keys,
)

logger = logging.getLogger(__name__)

STEPS = (
    "hold",
    "stripe",
    "exports",
    "reports",
    "ledger",
    "twilio",
    "ses",
    "references",
    "partition",
    "data_key",
    "finish",
)
ARCHIVE_PREFIX = "ARCHIVE#"
PSEUDONYM_PURPOSE = "ledger-pseudonym"
# Years archived ledger rows are kept by default. The Measures on Accounting Archives (2015)
# keep accounting vouchers and books for 30 years; docs/privacy.md explains the choice.
DEFAULT_ARCHIVE_YEARS = 30
_YEAR_SECONDS = 365 * 24 * 3600


@dataclass
class DeletionDeps:
    """Everything account deletion reads, writes and calls."""

    table: MainTable
    keys: DataKeyStore
    pepper: Callable[[], Pepper]
    stripe: Callable[[], StripeAccountEraser]
    sms: Callable[[], SmsRedaction]
    suppressions: Callable[[], SuppressionList]
    exports: ExportObjects
    reports: ExportObjects
    breach_index: MainTable
    audit: AuditTrail
    clock: Clock
    archive_years: int = DEFAULT_ARCHIVE_YEARS


@dataclass
class _Run:
    """The deletion item of one run, with the references the steps share."""

    subscriber_id: str
    item: dict[str, Any]

    @property
    def refs(self) -> dict[str, Any]:
        refs: dict[str, Any] = self.item.setdefault("refs", {})
        return refs

    @property
    def pseudonym(self) -> str:
        return str(self.item["pseudonym"])


def ledger_pseudonym(pepper: Pepper, subscriber_id: str) -> str:
    """Return the pseudonymous id that a deleted subscriber's ledger rows are kept under.

    It is an HMAC of the subscriber id under a key derived from the pepper, so it cannot be
    traced back to the id without the pepper, and no item kept after deletion contains the id.
    """
    return "psn_" + keyed_hash(pepper.derive_key(PSEUDONYM_PURPOSE), subscriber_id)[:32]


def archive_pk(pseudonym: str) -> str:
    """Return the partition that keeps a deleted subscriber's ledger rows."""
    return f"{ARCHIVE_PREFIX}{pseudonym}"


def run_deletion(deps: DeletionDeps, subscriber_id: str) -> str:
    """Run the deletion steps not done yet; returns "deleted", "already_deleted" or "not_requested".

    Any failure propagates after the steps before it were recorded, so the retried job resumes
    at the failed step.
    """
    pk = subscriber_pk(subscriber_id)
    item = deps.table.get(pk, DELETION_SK)
    if item is None:
        if deps.table.get(pk, "PROFILE") is None:
            logger.info("account deletion already complete", extra={"subscriber_id": subscriber_id})
            return "already_deleted"
        # Only a recorded request deletes an account, whatever a queue message contains.
        logger.warning("account deletion not requested", extra={"subscriber_id": subscriber_id})
        return "not_requested"

    run = _Run(subscriber_id, item)
    done = set(item.get("steps_done") or ())
    for step in STEPS:
        if step in done:
            continue
        try:
            _STEP_FUNCTIONS[step](deps, run)
        except Exception as exc:
            logger.warning(
                "account deletion step failed",
                extra={
                    "subscriber_id": subscriber_id,
                    "step": step,
                    "error_type": type(exc).__name__,
                },
            )
            raise
        if step != "finish":
            _mark_done(deps, run, step)
    logger.info("account deleted", extra={"subscriber_id": subscriber_id})
    return "deleted"


def _mark_done(deps: DeletionDeps, run: _Run, step: str) -> None:
    deps.table.update(
        subscriber_pk(run.subscriber_id),
        DELETION_SK,
        "ADD steps_done :step SET updated_at = :now",
        values={":step": {step}, ":now": epoch(deps.clock())},
        condition="attribute_exists(pk)",
    )


def _save_refs(deps: DeletionDeps, run: _Run) -> None:
    deps.table.update(
        subscriber_pk(run.subscriber_id),
        DELETION_SK,
        "SET refs = :refs",
        values={":refs": run.refs},
        condition="attribute_exists(pk)",
    )


def _read_refs(deps: DeletionDeps, run: _Run) -> SubscriberRecords:
    """Read the partition again and merge what it names now into the stored references.

    Messages sent or alerts written since `hold` are found this way while the partition
    exists. Once it is deleted, the stored references are all that is left.
    """
    records = load_records(deps.table, run.subscriber_id)
    if records.profile is None:
        return records
    takers = reassignment_takers(records)
    found: dict[str, list[Any]] = {
        "watch": [[key.kind, key.version, key.value] for key in watch_keys(records)],
        "message_keys": message_keys(records, taker_signup_ids(deps.table, records)),
        "alert_ids": [
            str(alert["alert_id"])
            for alert in records.with_prefix("ALERT#")
            if alert.get("alert_id")
        ],
        "takers": takers,
        "review_batches": [
            str(alert["audit_record_id"])
            for alert in records.with_prefix("ALERT#")
            if alert.get("audit_record_id")
        ],
    }
    for name, values in found.items():
        merged = list(run.refs.get(name) or [])
        merged.extend(value for value in values if value not in merged)
        run.refs[name] = merged
    profile = records.profile
    for name in ("signup_id", "stripe_customer_id", "own_referral_code"):
        if profile.get(name):
            run.refs[name] = str(profile[name])
    holder = (records.signup.get("SIGNUP") or {}).get("reassigned_from")
    if holder:
        run.refs["reassigned_from"] = str(holder)
    _save_refs(deps, run)
    return records


# ------------------------------------------------------------------------------------- steps


def _hold(deps: DeletionDeps, run: _Run) -> None:
    pseudonym = run.item.get("pseudonym") or ledger_pseudonym(deps.pepper(), run.subscriber_id)
    deps.table.update(
        subscriber_pk(run.subscriber_id),
        DELETION_SK,
        "SET pseudonym = :pseudonym, #status = :running, "
        "started_at = if_not_exists(started_at, :now)",
        values={":pseudonym": pseudonym, ":running": "running", ":now": epoch(deps.clock())},
        names={"#status": "status"},
        condition="attribute_exists(pk)",
    )
    run.item["pseudonym"] = pseudonym
    _read_refs(deps, run)


def _stripe(deps: DeletionDeps, run: _Run) -> None:
    customer_id = run.refs.get("stripe_customer_id")
    if not customer_id:
        return

    # The billing consumer reads this link for every event of the customer. From now on it
    # writes money movements to the archive and applies nothing else.
    deps.table.put(
        {
            "pk": f"STRIPECUS#{customer_id}",
            "sk": "LINK",
            "erased_ledger_pk": archive_pk(run.pseudonym),
            "erased_at": epoch(deps.clock()),
        }
    )
    gateway = deps.stripe()
    for subscription_id in gateway.open_subscription_ids(str(customer_id)):
        gateway.cancel_subscription(subscription_id)
    gateway.redact_customer(str(customer_id), f"erase-{customer_id}")


def _exports(deps: DeletionDeps, run: _Run) -> None:
    deleted = deps.exports.delete_every_version(export_prefix(run.subscriber_id))
    logger.info(
        "export files deleted", extra={"subscriber_id": run.subscriber_id, "count": deleted}
    )


def _reports(deps: DeletionDeps, run: _Run) -> None:
    deleted = deps.reports.delete_every_version(report_prefix(run.subscriber_id))
    logger.info(
        "report files deleted", extra={"subscriber_id": run.subscriber_id, "count": deleted}
    )


def _ledger(deps: DeletionDeps, run: _Run) -> None:
    records = load_records(deps.table, run.subscriber_id)
    archived_at = epoch(deps.clock())
    # DynamoDB's TTL removes each row once its retention has passed.
    expires_at = archived_at + deps.archive_years * _YEAR_SECONDS
    for row in records.with_prefix("LEDGER#"):
        copy = {name: value for name, value in row.items() if name != "pk"}
        deps.table.put(
            {
                **copy,
                "pk": archive_pk(run.pseudonym),
                "archived_at": archived_at,
                "expires_at": expires_at,
            },
            condition="attribute_not_exists(pk)",
        )


def _twilio(deps: DeletionDeps, run: _Run) -> None:
    records = _read_refs(deps, run)
    sids = set(run.refs.get("sms_sids") or ())
    keys = run.refs.get("message_keys") or []
    for (_, channel), record in delivery_records(deps.table, keys).items():
        if channel == "sms" and record.get("provider_id"):
            sids.add(str(record["provider_id"]))
    sms = deps.sms()
    if records.profile is not None:
        mobile = decrypt_field(
            deps.keys.get(run.subscriber_id),
            run.subscriber_id,
            records.profile["mobile_enc"],
            purpose="deletion",
        )
        sids.update(sms.message_ids_to(mobile))
    run.refs["sms_sids"] = sorted(sids)
    _add_pointed_message_keys(deps, run, sids)
    _save_refs(deps, run)

    for sid in sorted(sids):
        sms.redact(sid)
    logger.info(
        "sms bodies redacted", extra={"subscriber_id": run.subscriber_id, "count": len(sids)}
    )


def _add_pointed_message_keys(deps: DeletionDeps, run: _Run, sids: set[str]) -> None:
    """Add the ledger records that the SMS pointers of `sids` name and that concern this account.

    This finds the records of SMS kinds whose message keys the partition does not name, such
    as sign-in codes, through the messages Twilio lists for the number.
    """
    pointers = read_many(deps.table, [(f"SMS#{sid}", "SMS") for sid in sorted(sids)])
    candidates = sorted(
        {
            str(pointer["ledger_pk"]).removeprefix("NOTIFY#")
            for pointer in pointers.values()
            if str(pointer.get("ledger_pk", "")).startswith("NOTIFY#")
        }
    )
    owners = {run.subscriber_id, str(run.refs.get("signup_id") or "")}
    keys = list(run.refs.get("message_keys") or [])
    for (key, _), record in delivery_records(deps.table, candidates).items():
        if record.get("subject_id") in owners and key not in keys:
            keys.append(key)
    run.refs["message_keys"] = keys


def _ses(deps: DeletionDeps, run: _Run) -> None:
    profile = deps.table.get(subscriber_pk(run.subscriber_id), "PROFILE")
    if profile is None or not profile.get("email_enc"):
        return
    address = decrypt_field(
        deps.keys.get(run.subscriber_id),
        run.subscriber_id,
        profile["email_enc"],
        purpose="deletion",
    )
    removed = deps.suppressions().remove(address)
    logger.info(
        "ses suppression checked", extra={"subscriber_id": run.subscriber_id, "removed": removed}
    )


def _references(deps: DeletionDeps, run: _Run) -> None:
    _read_refs(deps, run)
    delete_references(deps.table, deps.breach_index, run.subscriber_id, run.pseudonym, run.refs)


def _partition(deps: DeletionDeps, run: _Run) -> None:
    pk = subscriber_pk(run.subscriber_id)
    items = deps.table.get_partition(pk)
    for sk in items:
        if sk != DELETION_SK:
            deps.table.delete(pk, sk)
    logger.info(
        "subscriber partition deleted",
        extra={"subscriber_id": run.subscriber_id, "count": len(items) - 1},
    )


def _data_key(deps: DeletionDeps, run: _Run) -> None:
    deps.keys.delete(run.subscriber_id)


def _finish(deps: DeletionDeps, run: _Run) -> None:
    pk = subscriber_pk(run.subscriber_id)
    updated = deps.table.update(
        pk,
        DELETION_SK,
        "SET completed_at = if_not_exists(completed_at, :now)",
        values={":now": epoch(deps.clock())},
        condition="attribute_exists(pk)",
    )
    completed_at = int((updated or run.item).get("completed_at") or epoch(deps.clock()))
    # The record's key is fixed by the completion time, so a repeated finish finds it written.
    try:
        deps.audit.write(
            AuditRecord(
                action="account.delete",
                actor=f"subscriber:{run.subscriber_id}",
                request_id=str(run.item.get("request_id") or "deletion-job"),
                subject=f"SUBSCRIBER#{run.subscriber_id}",
                at=datetime.fromtimestamp(completed_at, UTC),
                reason=f"account deleted; ledger kept as {run.pseudonym}",
                outcome="deleted",
                record_id=f"aud_deleted_{run.subscriber_id}",
            )
        )
    except AuditWriteError:
        logger.info("deletion audit already written", extra={"subscriber_id": run.subscriber_id})
    deps.table.delete(pk, DELETION_SK)


_STEP_FUNCTIONS: dict[str, Callable[[DeletionDeps, _Run], None]] = {
    "hold": _hold,
    "stripe": _stripe,
    "exports": _exports,
    "reports": _reports,
    "ledger": _ledger,
    "twilio": _twilio,
    "ses": _ses,
    "references": _references,
    "partition": _partition,
    "data_key": _data_key,
    "finish": _finish,
}
