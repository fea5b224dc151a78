"""Withdrawing the separate consent to sensitive personal information (PIPL articles 15 and 29).

The ID number and bank card numbers are the sensitive identifiers the service watches. When
the subscriber withdraws that consent, the profile records when, the service stops watching
those identifiers (their watch items, the ID claim and, where nobody else watches them, their
breach-index entries go) and deletes their identifier items with the encrypted values. The
account, the mobile number, the e-mail address and the history of alerts stay. Withdrawal
does not affect what was processed before it (PIPL article 15).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from idsentry.adapters.table import MainTable
from idsentry.clock import Clock, epoch
from idsentry.consents import ConsentKind
from idsentry.errors import NotFoundError
from idsentry.services.deletion_references import unwatch
from idsentry.services.subscriber_records import load_records, subscriber_pk, watch_keys

logger = logging.getLogger(__name__)

SENSITIVE_KINDS = ("id_number", "bank_card")


def withdraw_sensitive_consent(
    table: MainTable, breach_index: MainTable, subscriber_id: str, clock: Clock
) -> dict[str, Any]:
    """Record the withdrawal and remove the sensitive identifiers; repeating it changes nothing.

    The withdrawal is recorded first and the identifier items are deleted last, so a retry
    after a crash still finds the fingerprints it has to stop watching.
    """
    records = load_records(table, subscriber_id)
    profile = records.profile
    if profile is None:
        raise NotFoundError("account.not_found")
    kind = ConsentKind.SENSITIVE_PERSONAL_INFORMATION.value
    consent = dict((profile.get("consents") or {}).get(kind) or {})
    withdrawn_at = int(consent.get("withdrawn_at") or epoch(clock()))

    consent["withdrawn_at"] = withdrawn_at
    if isinstance(profile.get("consents"), dict):
        expression, values = "SET consents.#kind = :consent", {":consent": consent}
    else:
        expression, values = "SET consents = :consents", {":consents": {kind: consent}}
    table.update(
        subscriber_pk(subscriber_id),
        "PROFILE",
        expression,
        values=values,
        names={"#kind": kind} if "#kind" in expression else None,
        condition="attribute_exists(pk)",
    )

    keys = watch_keys(records, SENSITIVE_KINDS)
    for key in keys:
        unwatch(table, breach_index, key, subscriber_id)
        if key.kind == "id_number":
            table.delete(
                f"CLAIM#id_number#{key.version}#{key.value}",
                "CLAIM",
                condition="subscriber_id = :me",
                values={":me": subscriber_id},
            )
    removed = []
    for item in records.with_prefix("IDENT#"):
        item_kind = str(item.get("kind") or item["sk"].removeprefix("IDENT#").split("#", 1)[0])
        if item_kind in SENSITIVE_KINDS:
            table.delete(subscriber_pk(subscriber_id), item["sk"])
            removed.append(item_kind)

    logger.info(
        "sensitive consent withdrawn",
        extra={"subscriber_id": subscriber_id, "identifiers_removed": len(removed)},
    )
    return {
        "consent": kind,
        "withdrawn_at": datetime.fromtimestamp(withdrawn_at, UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "identifiers_removed": sorted(set(removed)),
        "still_watched": sorted(
            {
                str(item.get("kind") or item["sk"].removeprefix("IDENT#"))
                for item in records.with_prefix("IDENT#")
                # Watch items exist for confirmed identifiers only (e-mail after its link).
                if str(item.get("kind")) not in SENSITIVE_KINDS and item.get("confirmed")
            }
        ),
    }
