"""Everything the main table stores about one subscriber, found from the keys their items contain.

Export and deletion read the same records, so what a subscriber can download is what deletion
removes. The subscriber's partition `SUB#{id}` contains most of it. The rest sits in items keyed by
values that partition stores: the signup (`SIGNUP#{signup_id}`), the delivery ledger
(`NOTIFY#{message key}`, whose keys derive from alert ids, invoice ids, the signup's code id
and the fingerprints), the provider pointers (`SMS#{sid}`, `SESMSG#{id}`), deferred SMS jobs
(`DEFER#job_{alert_id}`), watch items, the ID claim and the referral code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from idsentry.adapters.table import MainTable

# Channels of the delivery ledger; each message key has at most one record per channel.
CHANNELS = ("sms", "email")
# Kinds whose IDENT item keeps fingerprints that watch items and claims are keyed by.
WATCHED_KINDS = ("id_number", "mobile", "email", "bank_card")
# BatchGetItem reads at most 100 keys.
_BATCH_KEYS = 100


@dataclass(frozen=True)
class WatchKey:
    """One fingerprint of a subscriber's identifier, as watch items and claims are keyed."""

    kind: str
    version: str
    value: str

    @property
    def watch_pk(self) -> str:
        """Return the key of the watch item of this fingerprint."""
        return f"WATCH#{self.kind}#{self.version}#{self.value}"

    @property
    def index_pk(self) -> str:
        """Return the breach index partition of this fingerprint."""
        return f"{self.kind}#{self.version}#{self.value}"


@dataclass(frozen=True)
class SubscriberRecords:
    """The subscriber's partition by sort key, and their signup's items by sort key."""

    subscriber_id: str
    items: dict[str, dict[str, Any]]
    signup: dict[str, dict[str, Any]]

    @property
    def profile(self) -> dict[str, Any] | None:
        """Return the profile item, or None once it is deleted."""
        return self.items.get("PROFILE")

    def with_prefix(self, prefix: str) -> list[dict[str, Any]]:
        """Return the partition's items whose sort key starts with `prefix`, in key order."""
        return [item for sk, item in sorted(self.items.items()) if sk.startswith(prefix)]


def subscriber_pk(subscriber_id: str) -> str:
    """Return the partition key of a subscriber's items."""
    return f"SUB#{subscriber_id}"


def load_records(table: MainTable, subscriber_id: str) -> SubscriberRecords:
    """Read the subscriber's partition and their signup's partition with consistent queries."""
    items = table.get_partition(subscriber_pk(subscriber_id))
    signup_id = (items.get("PROFILE") or {}).get("signup_id")
    signup = table.get_partition(f"SIGNUP#{signup_id}") if signup_id else {}
    return SubscriberRecords(subscriber_id=subscriber_id, items=items, signup=signup)


def watch_keys(records: SubscriberRecords, kinds: Iterable[str] = WATCHED_KINDS) -> list[WatchKey]:
    """Return the fingerprints of the subscriber's identifiers of `kinds`, under every version.

    An identifier kind may have one item (`IDENT#email`) or one per value
    (`IDENT#bank_card#…`), and each item maps pepper versions to fingerprints.
    """
    wanted = tuple(kinds)
    keys: list[WatchKey] = []
    for item in records.with_prefix("IDENT#"):
        kind = str(item.get("kind") or item["sk"].removeprefix("IDENT#").split("#", 1)[0])
        if kind not in wanted:
            continue
        for version, value in sorted((item.get("fingerprints") or {}).items()):
            keys.append(WatchKey(kind, str(version), str(value)))
    return list(dict.fromkeys(keys))


def message_keys(records: SubscriberRecords, taker_signup_ids: Iterable[str] = ()) -> list[str]:
    """Return the delivery-ledger message keys of every message sent to or about the subscriber.

    `taker_signup_ids` are the signups of the people who took an ID number over from this
    subscriber, because the notice of that takeover is keyed by the taker's signup.
    """
    subscriber_id = records.subscriber_id
    keys: list[str] = []
    code_id = (records.signup.get("SIGNUP") or {}).get("code_id")
    if code_id:
        keys.append(f"code:{code_id}")
    email_fp = (records.profile or {}).get("email_fp")
    if email_fp:
        keys.append(f"email_confirmation:{email_fp}")
    for alert in records.with_prefix("ALERT#"):
        if alert.get("alert_id"):
            keys.append(f"alert:{alert['alert_id']}")
    for dunning in records.with_prefix("DUNNING#"):
        invoice_id = dunning["sk"].removeprefix("DUNNING#")
        attempts = int(dunning.get("attempt_count") or 1)
        keys.extend(f"invoice:{invoice_id}:failed:{attempt}" for attempt in range(1, attempts + 1))
        keys.append(f"invoice:{invoice_id}:reminder")
    mobile = records.items.get("IDENT#mobile") or {}
    for fingerprint in [*(mobile.get("fingerprints") or {}).values(), "unknown"]:
        keys.append(f"mobile_invalid:{subscriber_id}:{fingerprint}")
    keys.extend(f"reassigned:job_reassigned_{signup_id}" for signup_id in taker_signup_ids)
    # Phone reconfirmation records the keys of its e-mails, which contain a confirmation time.
    keys.extend(sorted((records.items.get("PREFS") or {}).get("reconfirm_message_keys") or ()))
    # Sign-in codes and report e-mails are named by items of the account.
    keys.extend(str(item["message_key"]) for item in records.with_prefix("SIGNINMSG#"))
    keys.extend(f"report_ready:{item['report_id']}" for item in records.with_prefix("REPORT#"))
    # NOTE: e-mail kinds added after this list are not found until their keys are added here.
    # Deletion also finds SMS of any kind through Twilio's list of messages to the number.
    return list(dict.fromkeys(keys))


def reassignment_takers(records: SubscriberRecords) -> list[str]:
    """Return the subscribers who took one of this subscriber's identifiers over."""
    takers = {
        str(item["taken_by"])
        for item in records.with_prefix("IDENT_REMOVED#")
        if item.get("taken_by")
    }
    return sorted(takers)


def taker_signup_ids(table: MainTable, records: SubscriberRecords) -> list[str]:
    """Return the signup ids of the subscribers who took an identifier over, where they still exist."""
    takers = reassignment_takers(records)
    if not takers:
        return []
    found = read_many(table, [(subscriber_pk(taker), "PROFILE") for taker in takers])
    return sorted(str(item["signup_id"]) for item in found.values() if item.get("signup_id"))


def read_many(
    table: MainTable, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Read any number of items by key, 100 per BatchGetItem."""
    unique = list(dict.fromkeys(keys))
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(unique), _BATCH_KEYS):
        found.update(table.get_many(unique[start : start + _BATCH_KEYS]))
    return found


def delivery_records(
    table: MainTable, keys: Iterable[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Return the delivery-ledger records of the message keys on both channels, by (key, channel)."""
    wanted = [(f"NOTIFY#{key}", channel) for key in keys for channel in CHANNELS]
    found = read_many(table, wanted)
    return {(pk.removeprefix("NOTIFY#"), sk): item for (pk, sk), item in found.items()}
