"""Analyst review: list the alerts waiting in the `REVIEW` index, grouped by breach, and decide them.

Risk review (`services/alerts.py`) queues an uncertain alert as `pending_review` with
`gsi1pk = REVIEW` and `gsi1sk = {breach}#{subscriber}`. An analyst confirms or dismisses a
whole breach's pending alerts or single ones, always with a reason. A decision is one
transaction per chunk of alerts that:

- moves each alert from `pending_review` to `confirmed` or `dismissed`, on the condition that it
  is still pending, so two analysts racing or a repeated request decide an alert once;
- moves the alert from the `REVIEW` index to `REVIEWED#{breach}` (`gsi1sk` the subscriber id),
  where a later request can find it by alert id and report it as already decided;
- creates the audit record (`services/audit.py`) naming the alerts it decided;
- creates an outbox batch (`gsi1pk = REVIEW_OUTBOX`) with the events still to publish.

After the transaction the batch's `Alert.Confirmed` or `Alert.Dismissed` events are published
(`services/review_outbox.py`). Viewing evidence writes a `review.view` audit record before the
evidence is returned.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.dynamo import from_item, to_item
from idsentry.adapters.table import (
    ConditionFailedError,
    MainTable,
    TransactionConflictError,
    put_write,
    update_write,
)
from idsentry.clock import Clock, epoch
from idsentry.errors import NotFoundError
from idsentry.models.breach import Breach
from idsentry.services.alerts import REVIEW_INDEX_KEY, alert_id_for
from idsentry.services.audit import (
    REVIEW_QUEUE_SUBJECT,
    AuditRecord,
    AuditTrail,
    breach_subject,
    format_instant,
)
from idsentry.services.hibp_catalogue import load_breach
from idsentry.services.review_input import (
    MAX_ALERTS_PER_DECISION,
    DecisionRequest,
    PageRequest,
    encode_cursor,
)
from idsentry.services.review_outbox import (
    INDEX_NAME,
    flush_outbox,
    outbox_batch,
    publish_batch,
)

logger = logging.getLogger(__name__)

REVIEWED_INDEX_PREFIX = "REVIEWED#"
PENDING_STATUS = "pending_review"
DECIDED_STATUS: Final[Mapping[str, str]] = {"confirm": "confirmed", "dismiss": "dismissed"}

# TransactWriteItems takes at most 100 actions: the alerts, one audit record, one outbox batch.
ALERTS_PER_TRANSACTION: Final = 98
TRANSACTION_ATTEMPTS: Final = 4
BATCH_GET_PAIRS: Final = 50


@dataclass
class ReviewDeps:
    """Everything analyst review talks to, injected so tests can swap any of it."""

    table: MainTable
    audit: AuditTrail
    publisher: EventPublisher
    clock: Clock


@dataclass(frozen=True)
class Caller:
    """The analyst behind a request: their IAM ARN and the API Gateway request id."""

    actor: str
    request_id: str


# ---------------------------------------------------------------------------- evidence


def breach_summary(breach: Breach | None) -> dict[str, Any] | None:
    """Return what an analyst needs of a catalogue breach, or None when it is not stored."""
    if breach is None:
        return None
    return {
        "name": breach.name,
        "title": breach.title,
        "domain": breach.domain,
        "source": breach.source,
        "breach_date": breach.breach_date.isoformat(),
        "added_date": breach.added_date.isoformat() if breach.added_date else None,
        "pwn_count": breach.pwn_count,
        "data_classes": list(breach.data_classes),
        "is_verified": breach.is_verified,
        "is_sensitive": breach.is_sensitive,
    }


def exposure_evidence(
    subscriber_id: str,
    alert: Mapping[str, Any],
    exposure: Mapping[str, Any] | None,
    identifiers: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Return one exposure's evidence: ids, matched kinds with masked values, scores and dates.

    `identifiers` maps each kind to the subscriber's `IDENT#{kind}` item, of which only the
    masked form is shown. A kind whose identifier is gone (removed or never stored) shows None.
    """
    matched = sorted((exposure or {}).get("matched_kinds") or ())
    found_at = (exposure or {}).get("found_at")
    return {
        "subscriber_id": subscriber_id,
        "alert_id": alert["alert_id"],
        "matched_kinds": matched,
        "masked": {kind: (identifiers.get(kind) or {}).get("masked") for kind in matched},
        "severity": alert["severity"],
        "confidence": alert["confidence"],
        "severity_rule": alert.get("severity_rule"),
        "confidence_rule": alert.get("confidence_rule"),
        "found_at": _instant(found_at) if found_at is not None else None,
        "found_by": (exposure or {}).get("found_by"),
        "queued_at": _instant(alert["created_at"]),
    }


def group_by_breach(
    rows: Sequence[tuple[str, dict[str, Any]]],
    breaches: Mapping[str, dict[str, Any] | None],
) -> list[dict[str, Any]]:
    """Group (breach name, exposure evidence) rows into one group per key of `breaches`.

    Groups follow the order of `breaches` and rows keep their order within a group. A breach
    without rows gets an empty group. A row whose breach is not in `breaches` raises KeyError.
    """
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in breaches}
    for breach_name, row in rows:
        groups[breach_name].append(row)
    return [
        {
            "breach_name": breach_name,
            "breach": breaches[breach_name],
            "count": len(exposures),
            "exposures": exposures,
        }
        for breach_name, exposures in groups.items()
    ]


def list_pending(
    deps: ReviewDeps, caller: Caller, page: PageRequest, breach_name: str | None = None
) -> dict[str, Any]:
    """Return one page of pending reviews grouped by breach, after auditing the view.

    With `breach_name`, only that breach's pending reviews are listed, and NotFoundError is
    raised when the breach is neither in the catalogue nor has any pending review.
    """
    prefix = f"{breach_name}#" if breach_name is not None else None
    keys, last_key = _review_page(deps.table, page, prefix)
    rows = _load_evidence(deps.table, keys)

    names = list(dict.fromkeys(name for name, _ in rows))
    if breach_name is not None and breach_name not in names:
        names.append(breach_name)
    summaries = {name: breach_summary(load_breach(deps.table, name)) for name in names}
    if breach_name is not None and not rows and summaries[breach_name] is None:
        raise NotFoundError("breach.not_found", {"breach": breach_name})

    groups = group_by_breach(rows, summaries)
    shown_alert_ids = tuple(row["alert_id"] for _, row in rows)
    deps.audit.write(
        AuditRecord(
            action="review.view",
            actor=caller.actor,
            request_id=caller.request_id,
            subject=breach_subject(breach_name) if breach_name else REVIEW_QUEUE_SUBJECT,
            at=deps.clock(),
            breach_names=tuple(group["breach_name"] for group in groups),
            alert_ids=shown_alert_ids,
        )
    )
    logger.info(
        "review evidence viewed",
        extra={
            "request_id": caller.request_id,
            "breach_name": breach_name,
            "alerts": len(shown_alert_ids),
        },
    )
    return {
        "groups": groups,
        "count": len(shown_alert_ids),
        "next_cursor": encode_cursor(last_key) if last_key else None,
    }


def _review_page(
    table: MainTable, page: PageRequest, prefix: str | None
) -> tuple[list[tuple[str, str]], dict[str, Any] | None]:
    """Read one page of REVIEW index keys as (breach, subscriber) pairs, with the last key read."""
    request: dict[str, Any] = {
        "TableName": table.name,
        "IndexName": INDEX_NAME,
        "KeyConditionExpression": "gsi1pk = :review",
        "ExpressionAttributeValues": {":review": {"S": REVIEW_INDEX_KEY}},
        "Limit": page.limit,
    }
    if prefix is not None:
        request["KeyConditionExpression"] += " AND begins_with(gsi1sk, :prefix)"
        request["ExpressionAttributeValues"][":prefix"] = {"S": prefix}
    if page.start_after:
        request["ExclusiveStartKey"] = to_item(page.start_after)
    response = table.client().query(**request)

    pairs = []
    for raw in response.get("Items", []):
        item = from_item(raw)
        # Breach names never contain "#" (the catalogue's Name rule), so the first one splits.
        breach_name, _, subscriber_id = str(item["gsi1sk"]).partition("#")
        pairs.append((breach_name, subscriber_id))
    return pairs, response.get("LastEvaluatedKey")


def _load_evidence(
    table: MainTable, pairs: Sequence[tuple[str, str]]
) -> list[tuple[str, dict[str, Any]]]:
    """Read the alert, exposure and identifiers of each (breach, subscriber) still pending."""
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for chunk in _chunks(list(pairs), BATCH_GET_PAIRS):
        keys = [
            key
            for breach_name, subscriber_id in chunk
            for key in (
                (f"SUB#{subscriber_id}", f"ALERT#{breach_name}"),
                (f"SUB#{subscriber_id}", f"EXPOSURE#{breach_name}"),
            )
        ]
        records.update(table.get_many(keys))

    # The index is eventually consistent: an alert decided a moment ago may still be listed.
    pending = [
        (breach_name, subscriber_id)
        for breach_name, subscriber_id in pairs
        if (records.get((f"SUB#{subscriber_id}", f"ALERT#{breach_name}")) or {}).get("status")
        == PENDING_STATUS
    ]
    identifier_keys = sorted(
        {
            (f"SUB#{subscriber_id}", f"IDENT#{kind}")
            for breach_name, subscriber_id in pending
            for kind in (
                records.get((f"SUB#{subscriber_id}", f"EXPOSURE#{breach_name}")) or {}
            ).get("matched_kinds")
            or ()
        }
    )
    identifiers: dict[tuple[str, str], dict[str, Any]] = {}
    for key_chunk in _chunks(identifier_keys, 100):
        identifiers.update(table.get_many(key_chunk))

    rows = []
    for breach_name, subscriber_id in pending:
        pk = f"SUB#{subscriber_id}"
        owned = {
            sk.removeprefix("IDENT#"): item
            for (item_pk, sk), item in identifiers.items()
            if item_pk == pk
        }
        evidence = exposure_evidence(
            subscriber_id,
            records[(pk, f"ALERT#{breach_name}")],
            records.get((pk, f"EXPOSURE#{breach_name}")),
            owned,
        )
        rows.append((breach_name, evidence))
    return rows


# ---------------------------------------------------------------------------- decisions


def decide(
    deps: ReviewDeps, caller: Caller, breach_name: str, request: DecisionRequest
) -> dict[str, Any]:
    """Confirm or dismiss a breach's pending alerts, or the ones named, and audit it.

    Returns the outcome of each alert: `confirmed` or `dismissed` by this request,
    `already_decided` (with its current status) or `not_found`. Raises NotFoundError when the
    breach is neither in the catalogue nor has a pending review. Raises PublishError when
    events of this or an earlier decision could not be published, and repeating the request
    publishes them.
    """
    now = deps.clock()
    flush_outbox(deps.table, deps.publisher, deps.clock)

    pending = _indexed_alerts(deps.table, REVIEW_INDEX_KEY, f"{breach_name}#", breach_name)
    if not pending and load_breach(deps.table, breach_name) is None:
        raise NotFoundError("breach.not_found", {"breach": breach_name})

    more_pending = False
    missing: list[str] = []
    if request.alert_ids is None:
        targets = dict(list(pending.items())[:MAX_ALERTS_PER_DECISION])
        more_pending = len(pending) > len(targets)
    else:
        targets = {aid: pending[aid] for aid in request.alert_ids if aid in pending}
        missing = [aid for aid in request.alert_ids if aid not in pending]

    outcomes: dict[str, dict[str, Any]] = {}
    alerts = _read_alerts(deps.table, breach_name, targets)
    candidates = []
    for alert_id, subscriber_id in targets.items():
        alert = alerts.get(alert_id)
        if alert is not None and alert.get("status") == PENDING_STATUS:
            candidates.append((alert_id, subscriber_id, alert))
        else:
            missing.append(alert_id)

    batches = []
    decided: list[str] = []
    for chunk in _chunks(candidates, ALERTS_PER_TRANSACTION):
        batch, raced = _commit(deps, caller, breach_name, request, chunk, now)
        missing.extend(raced)
        if batch is None:
            continue
        batches.append(batch)
        for entry in batch["alerts"]:
            decided.append(entry["alert_id"])
            outcomes[entry["alert_id"]] = _outcome(
                entry["alert_id"], entry["subscriber_id"], batch["status"], batch["status"]
            )

    outcomes.update(_undecided_outcomes(deps.table, breach_name, missing, targets))
    if not decided:
        _audit_no_change(deps, caller, breach_name, request, now, tuple(outcomes))

    for batch in batches:
        publish_batch(deps.table, deps.publisher, deps.clock, batch)

    ordered = request.alert_ids if request.alert_ids is not None else tuple(targets)
    results = [outcomes[aid] for aid in ordered if aid in outcomes]
    logger.info(
        "review decided",
        extra={
            "request_id": caller.request_id,
            "breach_name": breach_name,
            "decision": request.decision,
            "decided": len(decided),
            "unchanged": len(results) - len(decided),
        },
    )
    return {
        "breach_name": breach_name,
        "decision": request.decision,
        "decided": len(decided),
        "results": results,
        "more_pending": more_pending,
    }


def _outcome(
    alert_id: str, subscriber_id: str | None, outcome: str, status: str | None
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "subscriber_id": subscriber_id,
        "outcome": outcome,
        "status": status,
    }


def _indexed_alerts(
    table: MainTable, index_key: str, prefix: str | None, breach_name: str
) -> dict[str, str]:
    """Page through one gsi1 partition and return alert id → subscriber id in index order."""
    request: dict[str, Any] = {
        "TableName": table.name,
        "IndexName": INDEX_NAME,
        "KeyConditionExpression": "gsi1pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": index_key}},
    }
    if prefix is not None:
        request["KeyConditionExpression"] += " AND begins_with(gsi1sk, :prefix)"
        request["ExpressionAttributeValues"][":prefix"] = {"S": prefix}

    found: dict[str, str] = {}
    while True:
        response = table.client().query(**request)
        for raw in response.get("Items", []):
            subscriber_id = str(raw["gsi1sk"]["S"]).removeprefix(prefix or "")
            found[alert_id_for(subscriber_id, breach_name)] = subscriber_id
        if "LastEvaluatedKey" not in response:
            return found
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _read_alerts(
    table: MainTable, breach_name: str, targets: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Read the alert items of alert id → subscriber id with consistent reads, by alert id."""
    alerts: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(list(targets.items()), 100):
        keys = [(f"SUB#{subscriber_id}", f"ALERT#{breach_name}") for _, subscriber_id in chunk]
        for item in table.get_many(keys).values():
            alerts[str(item["alert_id"])] = item
    return alerts


def _commit(
    deps: ReviewDeps,
    caller: Caller,
    breach_name: str,
    request: DecisionRequest,
    chunk: Sequence[tuple[str, str, Mapping[str, Any]]],
    now: datetime,
) -> tuple[dict[str, Any] | None, list[str]]:
    """Decide one chunk in a transaction with its audit record and outbox batch.

    An alert that another request decided first fails its condition; it is dropped and the
    rest retried. Returns the committed outbox batch (None when every alert was taken) and
    the ids of the dropped alerts.
    """
    remaining = list(chunk)
    raced: list[str] = []
    conflicts = 0
    status = DECIDED_STATUS[request.decision]
    while remaining:
        record = AuditRecord(
            action="review.confirm" if request.decision == "confirm" else "review.dismiss",
            actor=caller.actor,
            request_id=caller.request_id,
            subject=breach_subject(breach_name),
            at=now,
            breach_names=(breach_name,),
            alert_ids=tuple(alert_id for alert_id, _, _ in remaining),
            reason=request.reason,
            outcome="decided",
        )
        batch = outbox_batch(record, breach_name, status, remaining, now)
        writes = [
            update_write(
                f"alert:{alert_id}",
                f"SUB#{subscriber_id}",
                f"ALERT#{breach_name}",
                "SET #status = :status, decided_at = :now, decided_by = :actor, "
                "audit_record_id = :record, gsi1pk = :reviewed, gsi1sk = :subscriber",
                values={
                    ":status": status,
                    ":pending": PENDING_STATUS,
                    ":now": epoch(now),
                    ":actor": caller.actor,
                    ":record": record.record_id,
                    ":reviewed": f"{REVIEWED_INDEX_PREFIX}{breach_name}",
                    ":subscriber": subscriber_id,
                },
                condition="#status = :pending",
                names={"#status": "status"},
            )
            for alert_id, subscriber_id, _ in remaining
        ]
        writes.append(deps.audit.transaction_write(record))
        writes.append(put_write("outbox", batch, condition="attribute_not_exists(pk)"))

        try:
            deps.table.transact(writes)
        except ConditionFailedError as exc:
            if not exc.name.startswith("alert:"):
                raise
            decided_elsewhere = exc.name.removeprefix("alert:")
            raced.append(decided_elsewhere)
            remaining = [entry for entry in remaining if entry[0] != decided_elsewhere]
            continue
        except TransactionConflictError:
            conflicts += 1
            if conflicts >= TRANSACTION_ATTEMPTS:
                raise
            # Another transaction is writing one of these alerts, so back off briefly, with jitter.
            time.sleep(random.uniform(0, 0.05 * conflicts))
            continue
        return batch, raced
    return None, raced


def _undecided_outcomes(
    table: MainTable, breach_name: str, alert_ids: Sequence[str], known: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Report alerts this request did not decide: already decided (with status) or not found."""
    if not alert_ids:
        return {}
    subscribers = dict(known)
    unknown = [aid for aid in alert_ids if aid not in subscribers]
    if unknown:
        subscribers.update(
            _indexed_alerts(table, f"{REVIEWED_INDEX_PREFIX}{breach_name}", None, breach_name)
        )
    located = {aid: subscribers[aid] for aid in alert_ids if aid in subscribers}
    alerts = _read_alerts(table, breach_name, located)

    outcomes = {}
    for alert_id in alert_ids:
        alert = alerts.get(alert_id)
        if alert is None:
            outcomes[alert_id] = _outcome(alert_id, None, "not_found", None)
        else:
            outcomes[alert_id] = _outcome(
                alert_id, located[alert_id], "already_decided", str(alert["status"])
            )
    return outcomes


def _audit_no_change(
    deps: ReviewDeps,
    caller: Caller,
    breach_name: str,
    request: DecisionRequest,
    now: datetime,
    alert_ids: tuple[str, ...],
) -> None:
    """Audit a decision request that changed nothing: a repeat, a lost race or unknown ids."""
    deps.audit.write(
        AuditRecord(
            action="review.confirm" if request.decision == "confirm" else "review.dismiss",
            actor=caller.actor,
            request_id=caller.request_id,
            subject=breach_subject(breach_name),
            at=now,
            breach_names=(breach_name,),
            alert_ids=alert_ids,
            reason=request.reason,
            outcome="no_change",
        )
    )


# ---------------------------------------------------------------------------- helpers


def _chunks[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _instant(seconds: Any) -> str:
    return format_instant(datetime.fromtimestamp(int(seconds), UTC))
