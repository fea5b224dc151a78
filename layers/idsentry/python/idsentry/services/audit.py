"""Append-only audit trail of staff actions, kept in a table of its own.

Each record contains who acted (the caller's IAM ARN), when, what (the action, breach names and
alert ids) and why (the analyst's reason), with the API Gateway request id. Records are only
ever created: every write is a PutItem, alone or inside a transaction, with the condition
`attribute_not_exists(pk)`, and the admin function's IAM policy allows nothing but
dynamodb:PutItem on the table, so the API can neither update nor delete a record.

Keys: `pk` is the subject (`BREACH#{name}` for one breach, `REVIEW_QUEUE` for the whole
queue, `SUBSCRIBER#{id}` for one subscriber, `REPORTRUN#{month}` for a month's reports), `sk`
is `{at}#{record_id}`, so one Query lists a subject's records in time order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from idsentry.adapters.table import MainTable, Write, put_write
from idsentry.ids import new_id

AuditAction = Literal[
    "review.view",
    "review.confirm",
    "review.dismiss",
    # A subscriber's own export, a new download link of it, and the deletion of their account.
    "account.export",
    "account.export_link",
    "account.delete",
    # Finance starting a reconciliation, and reading one with its download links.
    "reconciliation.request",
    "reconciliation.view",
    # Staff queueing monthly reports, and making a subscriber's incident dossier.
    "report.request",
    "subscriber.dossier",
]
REVIEW_QUEUE_SUBJECT = "REVIEW_QUEUE"
NEW_RECORD_CONDITION = "attribute_not_exists(pk)"


class AuditWriteError(RuntimeError):
    """An audit record's key already exists, so the record was not written."""


def breach_subject(breach_name: str) -> str:
    """Return the audit subject of one breach."""
    return f"BREACH#{breach_name}"


def format_instant(moment: datetime) -> str:
    """Format an aware datetime as UTC ISO 8601 with milliseconds, which sorts as text."""
    if moment.tzinfo is None:
        raise ValueError("moment must be a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass(frozen=True)
class AuditRecord:
    """One staff action: who, when, what and why."""

    action: AuditAction
    # The caller's IAM ARN, from the request context API Gateway fills in after SigV4.
    actor: str
    request_id: str
    subject: str
    at: datetime
    breach_names: tuple[str, ...] = ()
    alert_ids: tuple[str, ...] = ()
    reason: str | None = None
    # "viewed" for views; "decided" or "no_change" for decisions.
    outcome: str = "viewed"
    # The id of what the action produced, such as a dossier id; stored only when set.
    object_id: str | None = None
    record_id: str = field(default_factory=lambda: new_id("aud"))

    def __post_init__(self) -> None:
        for name in ("actor", "request_id", "subject"):
            if not getattr(self, name):
                raise ValueError(f"an audit record needs a non-empty {name}")

    def item(self) -> dict[str, Any]:
        """Return the record as an audit-table item."""
        at = format_instant(self.at)
        item: dict[str, Any] = {
            "pk": self.subject,
            "sk": f"{at}#{self.record_id}",
            "record_id": self.record_id,
            "action": self.action,
            "actor": self.actor,
            "at": at,
            "request_id": self.request_id,
            "breach_names": list(self.breach_names),
            "alert_ids": list(self.alert_ids),
            "reason": self.reason,
            "outcome": self.outcome,
        }
        if self.object_id is not None:
            item["object_id"] = self.object_id
        return item


class AuditTrail:
    """Writer of audit records, with no method to read, change or remove one."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._table = MainTable(table_name, client)

    def write(self, record: AuditRecord) -> None:
        """Create one record, or raise AuditWriteError rather than replace an existing one."""
        if not self._table.put(record.item(), condition=NEW_RECORD_CONDITION):
            raise AuditWriteError(f"audit record {record.record_id} already exists")

    def transaction_write(self, record: AuditRecord) -> Write:
        """Return a transaction Put that creates the record in this table, never replacing one."""
        write = put_write("audit", record.item(), condition=NEW_RECORD_CONDITION)
        write.table = self.table_name
        return write
