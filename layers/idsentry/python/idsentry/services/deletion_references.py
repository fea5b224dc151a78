"""Deletion's `references` step: the items outside a subscriber's partition that concern them.

Items that exist only for this subscriber are deleted: delivery records and their provider
pointers, deferred SMS jobs, the signup, the ID claim, the referral code, and watch items,
SMS windows and breach-index entries of fingerprints nobody else watches. Items of other
subscribers that name this one (a referee's referrer, the previous or next holder of an ID
number, an analyst's outbox batch) keep their meaning with the pseudonym instead of the id.
Each write is conditional on still naming this subscriber, so repeating the step is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from idsentry.adapters.dynamo import from_item
from idsentry.adapters.table import MainTable
from idsentry.index_keys import sign_in_index_key, signup_requests_index_key
from idsentry.services.referrals import referrer_index_key
from idsentry.services.subscriber_records import (
    CHANNELS,
    WatchKey,
    delivery_records,
    read_many,
    subscriber_pk,
)

logger = logging.getLogger(__name__)


def delete_references(
    table: MainTable,
    breach_index: MainTable,
    subscriber_id: str,
    pseudonym: str,
    refs: dict[str, Any],
) -> None:
    """Delete or re-point every item outside the partition that `refs` names; safe to repeat."""
    _delete_deliveries(table, refs)
    for alert_id in refs.get("alert_ids") or ():
        table.delete(f"DEFER#job_{alert_id}", "DEFER")
    _delete_partition(table, f"SIGNUP#{refs['signup_id']}" if refs.get("signup_id") else None)
    if refs.get("signup_id"):
        for pk, sk in _index_keys(table, signup_requests_index_key(str(refs["signup_id"]))):
            table.delete(pk, sk)
    for pk, _ in _index_keys(table, sign_in_index_key(subscriber_id)):
        _delete_partition(table, pk)

    watch = [
        WatchKey(str(kind), str(version), str(value))
        for kind, version, value in refs.get("watch") or ()
    ]
    unwatched = [key for key in watch if unwatch(table, breach_index, key, subscriber_id)]
    for key in watch:
        if key.kind == "id_number":
            table.delete(
                f"CLAIM#id_number#{key.version}#{key.value}",
                "CLAIM",
                condition="subscriber_id = :me",
                values={":me": subscriber_id},
            )
    for key in unwatched:
        if key.kind == "mobile":
            # The number's 24-hour SMS window; kept while another account watches the number.
            table.delete(f"SMSWIN#{key.value}", "SMSWIN")

    code = refs.get("own_referral_code")
    if code:
        table.delete(
            f"REFCODE#{code}",
            "REFCODE",
            condition="subscriber_id = :me",
            values={":me": subscriber_id},
        )
    _repoint_referees(table, subscriber_id, pseudonym)
    _repoint_reassignments(table, subscriber_id, pseudonym, refs)
    _repoint_review_batches(table, subscriber_id, pseudonym, refs.get("review_batches") or ())
    logger.info(
        "subscriber references deleted",
        extra={"subscriber_id": subscriber_id, "unwatched": len(unwatched)},
    )


def _delete_deliveries(table: MainTable, refs: dict[str, Any]) -> None:
    """Delete the delivery records, after the SMS and SES pointers that their provider ids name."""
    keys = list(refs.get("message_keys") or ())
    records = delivery_records(table, keys)
    sms_sids = set(refs.get("sms_sids") or ())
    ses_ids: set[str] = set()
    for (_, channel), record in records.items():
        provider_id = record.get("provider_id")
        if provider_id:
            (sms_sids if channel == "sms" else ses_ids).add(str(provider_id))

    # Pointers first: a crash before the records go leaves the records to find them again.
    for sid in sorted(sms_sids):
        table.delete(f"SMS#{sid}", "SMS")
    for message_id in sorted(ses_ids):
        table.delete(f"SESMSG#{message_id}", "SESMSG")
    for key in keys:
        for channel in CHANNELS:
            table.delete(f"NOTIFY#{key}", channel)


def _delete_partition(table: MainTable, pk: str | None) -> None:
    if pk is None:
        return
    for sk in table.get_partition(pk):
        table.delete(pk, sk)


def unwatch(table: MainTable, breach_index: MainTable, key: WatchKey, subscriber_id: str) -> bool:
    """Take the subscriber off one watch item; returns True when nobody watches the value any more.

    DynamoDB removes a set attribute when its last element goes, so an item without
    `subscriber_ids` is watched by nobody and is deleted. The breach index entries of a value
    nobody watches only tie this subscriber's fingerprint to breaches, so they go too.
    """
    table.update(
        key.watch_pk,
        "WATCH",
        "DELETE subscriber_ids :me",
        values={":me": {subscriber_id}},
        condition="attribute_exists(pk)",
    )
    table.delete(key.watch_pk, "WATCH", condition="attribute_not_exists(subscriber_ids)")
    if table.get(key.watch_pk, "WATCH") is not None:
        return False
    for sk in breach_index.get_partition(key.index_pk):
        breach_index.delete(key.index_pk, sk)
    return True


def _index_keys(table: MainTable, index_key: str) -> list[tuple[str, str]]:
    """Return the (pk, sk) of every item listed under one key of the overloaded index."""
    keys: list[tuple[str, str]] = []
    request: dict[str, Any] = {
        "TableName": table.name,
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :key",
        "ExpressionAttributeValues": {":key": {"S": index_key}},
    }
    while True:
        response = table.client().query(**request)
        for raw in response.get("Items", []):
            item = from_item(raw)
            keys.append((str(item["pk"]), str(item["sk"])))
        if "LastEvaluatedKey" not in response:
            return keys
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _repoint_referees(table: MainTable, subscriber_id: str, pseudonym: str) -> None:
    """Replace this referrer's id with the pseudonym in the referrals and profiles of referees."""
    for pk, sk in _index_keys(table, referrer_index_key(subscriber_id)):
        table.update(
            pk,
            sk,
            "SET referrer_id = :pseudonym REMOVE gsi1pk, gsi1sk",
            values={":pseudonym": pseudonym, ":me": subscriber_id},
            condition="referrer_id = :me",
        )
        table.update(
            pk,
            "PROFILE",
            "SET referred_by = :pseudonym",
            values={":pseudonym": pseudonym, ":me": subscriber_id},
            condition="referred_by = :me",
        )


def _repoint_reassignments(
    table: MainTable, subscriber_id: str, pseudonym: str, refs: dict[str, Any]
) -> None:
    """Re-point the records of ID numbers that passed between this subscriber and another."""
    holder = refs.get("reassigned_from")
    if holder:
        # The previous holder's record of who took the ID number over.
        table.update(
            subscriber_pk(str(holder)),
            "IDENT_REMOVED#id_number",
            "SET taken_by = :pseudonym",
            values={":pseudonym": pseudonym, ":me": subscriber_id},
            condition="taken_by = :me",
        )
    takers: Iterable[str] = refs.get("takers") or ()
    profiles = read_many(table, [(subscriber_pk(taker), "PROFILE") for taker in takers])
    for profile in profiles.values():
        if not profile.get("signup_id"):
            continue
        # The taker's signup records whose ID number it took.
        table.update(
            f"SIGNUP#{profile['signup_id']}",
            "SIGNUP",
            "SET reassigned_from = :pseudonym",
            values={":pseudonym": pseudonym, ":me": subscriber_id},
            condition="reassigned_from = :me",
        )


def _repoint_review_batches(
    table: MainTable, subscriber_id: str, pseudonym: str, batch_ids: Iterable[str]
) -> None:
    """Replace the subscriber's id in the analysts' outbox batches that list their alerts."""
    for record_id in batch_ids:
        pk = f"REVIEWBATCH#{record_id}"
        batch = table.get(pk, "BATCH")
        if batch is None:
            continue
        alerts = [
            {**entry, "subscriber_id": pseudonym}
            if entry.get("subscriber_id") == subscriber_id
            else entry
            for entry in batch.get("alerts") or []
        ]
        if alerts != batch.get("alerts"):
            table.update(
                pk,
                "BATCH",
                "SET alerts = :alerts",
                values={":alerts": alerts},
                condition="attribute_exists(pk)",
            )
