"""Match a phone number that Twilio reports to the subscribers whose mobile number it is.

Numbers are never stored in clear, so a match goes through fingerprints: the mobile's watch
items (`WATCH#mobile#{version}#{fingerprint}`) name candidate subscribers, and each candidate's
`IDENT#mobile` item confirms that the number is still theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import batched
from typing import Any

import phonenumbers

from idsentry.adapters.table import MainTable
from idsentry.crypto import Fingerprint, Pepper
from idsentry.identifiers import IdentifierError, canonical_mobile
from idsentry.item_keys import watch_pk

# BatchGetItem reads at most 100 keys.
_BATCH_KEYS = 100


def canonical_number(raw: str) -> str | None:
    """Return a number from a Twilio request in signup's canonical E.164 form, or None.

    Any region is accepted here, because the number only looks existing subscribers up.
    """
    try:
        return canonical_mobile(raw, allowed_regions=phonenumbers.SUPPORTED_REGIONS)
    except IdentifierError:
        return None


def holds_mobile(table: MainTable, pepper: Pepper, subscriber_id: str, canonical: str) -> bool:
    """Return whether `canonical` is the subscriber's current mobile number."""
    item = table.get(f"SUB#{subscriber_id}", "IDENT#mobile")
    return _matches(item, pepper.fingerprints("mobile", canonical))


def subscribers_with_mobile(table: MainTable, pepper: Pepper, canonical: str) -> list[str]:
    """Return the ids of the subscribers whose current mobile number is `canonical`.

    A watch item can still name a subscriber who has since changed their number, so every
    candidate is checked against their `IDENT#mobile` item.
    """
    fingerprints = pepper.fingerprints("mobile", canonical)
    watches = table.get_many([(watch_pk("mobile", fp), "WATCH") for fp in fingerprints])
    candidates = sorted(
        {str(subscriber_id) for item in watches.values() for subscriber_id in _ids(item)}
    )

    holders: list[str] = []
    for chunk in batched(candidates, _BATCH_KEYS):
        identifiers = table.get_many(
            [(f"SUB#{subscriber_id}", "IDENT#mobile") for subscriber_id in chunk]
        )
        holders.extend(
            subscriber_id
            for subscriber_id in chunk
            if _matches(identifiers.get((f"SUB#{subscriber_id}", "IDENT#mobile")), fingerprints)
        )
    return holders


def _ids(item: dict[str, Any]) -> Iterable[Any]:
    return item.get("subscriber_ids") or ()


def _matches(item: dict[str, Any] | None, fingerprints: list[Fingerprint]) -> bool:
    stored = (item or {}).get("fingerprints") or {}
    return any(stored.get(fp.version) == fp.value for fp in fingerprints)
