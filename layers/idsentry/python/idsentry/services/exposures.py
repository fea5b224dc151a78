"""Exposures: a subscriber found in a breach, recorded and announced once per (subscriber, breach).

Subscribers' fingerprints are reachable by fingerprint through watch items
(`WATCH#{kind}#{pepper_version}#{fingerprint}`), which verification and e-mail confirmation
write. Intake looks new breach fingerprints up there; the daily check looks subscribers'
fingerprints up in the breach index. Either way the hits go through `record_exposures`, whose
conditional write makes the first finder the only announcer, whatever is retried or re-uploaded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from idsentry.adapters.batch import BatchTable
from idsentry.adapters.bus import EventPublisher, PublishError
from idsentry.adapters.table import MainTable, Write, update_write
from idsentry.crypto import Fingerprint
from idsentry.item_keys import watch_pk
from idsentry.models.events import ExposureDetected

logger = logging.getLogger(__name__)

FoundBy = Literal["dataset", "index", "hibp"]
ANNOUNCE_CLAIM_SECONDS = 60


def watch_writes(
    kind: str, fingerprints: Iterable[Fingerprint], subscriber_id: str, *, sole: bool
) -> list[Write]:
    """Build the writes that add the subscriber to the watch items of a value's fingerprints.

    `sole` replaces any other holder: an ID number has one verified owner, while a mobile
    number or an e-mail address may be watched by several subscribers.
    """
    expression = "SET subscriber_ids = :ids" if sole else "ADD subscriber_ids :ids"
    return [
        update_write(
            f"watch:{kind}:{fp.version}",
            watch_pk(kind, fp),
            "WATCH",
            expression,
            values={":ids": {subscriber_id}},
        )
        for fp in fingerprints
    ]


@dataclass(frozen=True)
class Hit:
    """A breach fingerprint that belongs to a watched value."""

    kind: str
    fingerprint: Fingerprint
    subscriber_ids: frozenset[str]


def find_watchers(index: BatchTable, keys: Iterable[tuple[str, Fingerprint]]) -> list[Hit]:
    """Return the subscribers watching any of the (kind, fingerprint) pairs, by BatchGetItem."""
    wanted = {(watch_pk(kind, fp), "WATCH"): (kind, fp) for kind, fp in keys}
    found = index.get_many(wanted)
    return [
        Hit(
            kind=wanted[key][0],
            fingerprint=wanted[key][1],
            subscriber_ids=frozenset(item.get("subscriber_ids") or ()),
        )
        for key, item in found.items()
        if item.get("subscriber_ids")
    ]


@dataclass(frozen=True)
class Finding:
    """A subscriber found in a breach by the identifier kinds in `kinds`."""

    subscriber_id: str
    breach_name: str
    kinds: frozenset[str]


def record_exposure(
    table: MainTable,
    publisher: EventPublisher,
    subscriber_id: str,
    breach_name: str,
    kinds: Iterable[str],
    found_by: FoundBy,
    now: int,
) -> bool:
    """Record that the subscriber is in the breach; returns True when this call announced it."""
    finding = Finding(subscriber_id, breach_name, frozenset(kinds))
    return record_exposures(table, publisher, [finding], found_by, now) == 1


def record_exposures(
    table: MainTable,
    publisher: EventPublisher,
    findings: Iterable[Finding],
    found_by: FoundBy,
    now: int,
) -> int:
    """Record each finding's exposure and announce the new ones; returns how many it announced.

    Each item is created unannounced and claimed. The events of every claim go out together,
    10 to a PutEvents request, then the items are marked announced. A crash after a claim is
    repaired by an attempt a minute later. The event id is fixed per (subscriber, breach), so
    consumers de-duplicate the rare second send. When EventBridge rejects some entries, the
    others are marked and PublishError is raised, so a retry announces the rejected ones.
    """
    claimed: list[tuple[Finding, ExposureDetected]] = []
    for finding in findings:
        event = _claim(table, finding, found_by, now)
        if event is not None:
            claimed.append((finding, event))
    if not claimed:
        return 0

    try:
        publisher.publish([event for _, event in claimed])
    except PublishError as exc:
        rejected = set(exc.failed_event_ids)
        _mark_announced(table, [(f, e) for f, e in claimed if e.event_id not in rejected])
        raise
    _mark_announced(table, claimed)
    return len(claimed)


def _mark_announced(table: MainTable, announced: list[tuple[Finding, ExposureDetected]]) -> None:
    for finding, event in announced:
        table.update(
            f"SUB#{finding.subscriber_id}",
            f"EXPOSURE#{finding.breach_name}",
            "SET announced = :true",
            values={":true": True},
        )
        logger.info(
            "exposure detected",
            extra={
                "subscriber_id": finding.subscriber_id,
                "breach_name": finding.breach_name,
                "found_by": event.found_by,
            },
        )


def _claim(
    table: MainTable, finding: Finding, found_by: FoundBy, now: int
) -> ExposureDetected | None:
    """Upsert the exposure item and claim its announcement; returns its event when claimed."""
    pk, sk = f"SUB#{finding.subscriber_id}", f"EXPOSURE#{finding.breach_name}"
    table.update(
        pk,
        sk,
        "SET breach_name = :breach, found_by = if_not_exists(found_by, :found_by), "
        "found_at = if_not_exists(found_at, :now), announced = if_not_exists(announced, :false) "
        "ADD matched_kinds :kinds",
        values={
            ":breach": finding.breach_name,
            ":found_by": found_by,
            ":now": now,
            ":false": False,
            ":kinds": set(finding.kinds),
        },
    )
    # One caller at a time may announce. A claim older than a minute belonged to a caller that
    # crashed, and is taken over.
    claimed = table.update(
        pk,
        sk,
        "SET announcing_at = :now",
        values={":now": now, ":false": False, ":stale": now - ANNOUNCE_CLAIM_SECONDS},
        condition="announced = :false AND "
        "(attribute_not_exists(announcing_at) OR announcing_at < :stale)",
    )
    if claimed is None:
        return None

    return ExposureDetected(
        event_id=f"evt_exposure_{finding.subscriber_id}_{finding.breach_name}",
        subscriber_id=finding.subscriber_id,
        breach_name=finding.breach_name,
        matched_kinds=tuple(sorted(claimed.get("matched_kinds") or finding.kinds)),
        found_by=claimed.get("found_by", found_by),
    )
