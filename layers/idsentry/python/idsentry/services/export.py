"""A subscriber's copy of everything the service stores about them (PIPL article 45), as JSON and HTML.

The export decrypts the subscriber's contact details and identifiers with their data key and
adds the masked forms. It contains every item of their partition, their signup, and the
delivery records of every message sent to them. Fingerprints, code hashes and index keys are
left out, for the reasons `docs/privacy.md` lists. A ZIP archive contains both files and the
file of every report and dossier (see `export_bundle`). The three go to the exports bucket
(SSE-KMS, deleted by a lifecycle rule after a day) and are handed out by presigned URLs valid
for 15 minutes. Creating an export and handing out a new link each write an audit record.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from idsentry.adapters.exports import ExportObjects
from idsentry.adapters.keys import DataKeyStore
from idsentry.adapters.table import MainTable
from idsentry.clock import Clock
from idsentry.crypto import decrypt_field
from idsentry.errors import NotFoundError
from idsentry.identifiers import IdentifierKind, mask
from idsentry.ids import new_id
from idsentry.services.audit import AuditRecord, AuditTrail
from idsentry.services.export_bundle import ExportArchive, copy_files, name_files, stored_files
from idsentry.services.export_html import render_html
from idsentry.services.subscriber_records import (
    SubscriberRecords,
    delivery_records,
    load_records,
    message_keys,
    read_many,
    taker_signup_ids,
)

logger = logging.getLogger(__name__)

FORMAT = "idsentry.subscriber-export"
FORMAT_VERSION = 1
LINK_SECONDS = 15 * 60
# The bucket's lifecycle rule deletes exports after a day. Links are refused after that even
# before the rule has run, because S3 applies lifecycle rules only eventually.
RETENTION_SECONDS = 24 * 3600
EXPORT_ID_PATTERN = re.compile(r"exp_[0-9A-HJKMNP-TV-Z]{26}")
FILES = {
    "json": ("export.json", "application/json"),
    "html": ("export.html", "text/html"),
    "zip": ("export.zip", "application/zip"),
}

# Sections of the export, by the sort-key prefix of the partition's items: (prefix, section,
# whether the section is a list). Items matching no prefix go to "other_records".
SECTIONS: tuple[tuple[str, str, bool], ...] = (
    ("PROFILE", "profile", False),
    ("PREFS", "preferences", False),
    ("IDENT_REMOVED#", "removed_identifiers", True),
    ("IDENT#", "identifiers", True),
    ("EXPOSURE#", "exposures", True),
    ("ALERT#", "alerts", True),
    ("LEDGER#", "payments", True),
    ("PURCHASE#", "purchases", True),
    ("DUNNING#", "failed_payments", True),
    ("REFERRED_BY", "referral", False),
    ("REFCAP#", "referral_credits", True),
    ("EMAILEVENT#", "email_events", True),
    ("REPORT#", "reports", True),
    ("DOSSIER#", "dossiers", True),
    ("DELETION", "deletion", False),
)
# Items that only name another record, which the export shows itself (sign-in code deliveries
# are among the notifications).
POINTER_PREFIXES = ("SIGNINMSG#",)
# Key attributes, which only locate an item.
KEY_ATTRIBUTES = frozenset({"pk", "sk", "gsi1pk", "gsi1sk"})
# Keyed hashes, which reveal nothing without the service's pepper (or, for card
# fingerprints, without Stripe). The values they are computed from are exported.
HASH_ATTRIBUTES = frozenset(
    {"fingerprints", "email_fp", "mobile_fp", "card_fingerprints", "code_hash"}
)
# Ids of other people: other accounts (the referrer, the previous or next holder of an ID
# number) and the analyst who reviewed an alert.
OTHER_PEOPLE_ATTRIBUTES = frozenset(
    {"referrer_id", "referred_by", "taken_by", "reassigned_from", "decided_by"}
)
# Bookkeeping of the service itself: the deletion job's lookup keys and ledger pseudonym, and
# the audit record of a review (the decision and its time are exported).
INTERNAL_ATTRIBUTES = frozenset({"refs", "pseudonym", "audit_record_id"})
LEFT_OUT = KEY_ATTRIBUTES | HASH_ATTRIBUTES | OTHER_PEOPLE_ATTRIBUTES | INTERNAL_ATTRIBUTES
# Delivery-record attributes that an export shows for each message.
DELIVERY_ATTRIBUTES = (
    "state",
    "attempts",
    "claimed_at",
    "updated_at",
    "provider_id",
    "error_code",
    "failure",
)
SMS_STATUS_ATTRIBUTES = ("delivery", "delivery_error", "delivery_updated_at")
ENCRYPTED_SUFFIX = "_enc"
MASKED_PROFILE_FIELDS = {"mobile": IdentifierKind.MOBILE, "email": IdentifierKind.EMAIL}


@dataclass
class ExportDeps:
    """Dependencies of creating an export and handing out its links."""

    table: MainTable
    keys: DataKeyStore
    objects: ExportObjects
    audit: AuditTrail
    clock: Clock
    # The reports bucket, whose report and dossier files the ZIP archive copies.
    report_files: ExportObjects


@dataclass(frozen=True)
class Requester:
    """The requester: the subscriber of the verified access token and API Gateway's request id."""

    subscriber_id: str
    request_id: str


def object_key(subscriber_id: str, export_id: str, file: str) -> str:
    """Return the bucket key of one file of an export."""
    return f"{export_prefix(subscriber_id)}{export_id}/{FILES[file][0]}"


def export_prefix(subscriber_id: str) -> str:
    """Return the bucket prefix under which every export of the subscriber is stored."""
    return f"exports/{subscriber_id}/"


def create_export(deps: ExportDeps, requester: Requester) -> dict[str, Any]:
    """Build the subscriber's export, store its files and return short-lived links to them.

    The archive is written first and the JSON file last, because a link is handed out only
    for an export whose JSON file exists.
    """
    subscriber_id = requester.subscriber_id
    records = load_records(deps.table, subscriber_id)
    if records.profile is None:
        raise NotFoundError("account.not_found")
    moment = deps.clock()
    export_id = new_id("exp")

    # The audit record comes first: a decryption that is not recorded must not happen.
    _audit(deps, requester, "account.export", export_id, moment)
    document = build_export(
        records,
        deps.keys.get(subscriber_id),
        _deliveries(deps.table, records),
        export_id,
        moment,
    )

    archive_key = object_key(subscriber_id, export_id, "zip")
    with (
        deps.objects.open_upload(archive_key, "application/zip") as upload,
        ExportArchive(upload, moment) as archive,
    ):
        copied = copy_files(archive, deps.report_files, stored_files(records))
        name_files(document, copied)
        document_json = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True)
        page = render_html(document)
        archive.add(FILES["json"][0], document_json.encode("utf-8"))
        archive.add(FILES["html"][0], page.encode("utf-8"))

    deps.objects.put(
        object_key(subscriber_id, export_id, "html"),
        page.encode("utf-8"),
        "text/html; charset=utf-8",
    )
    deps.objects.put(
        object_key(subscriber_id, export_id, "json"),
        document_json.encode("utf-8"),
        "application/json; charset=utf-8",
    )
    logger.info("export created", extra={"subscriber_id": subscriber_id, "export_id": export_id})
    return _links(deps, subscriber_id, export_id, moment, moment)


def export_links(deps: ExportDeps, requester: Requester, export_id: str) -> dict[str, Any]:
    """Return new links to one of the subscriber's exports while it is less than a day old."""
    subscriber_id = requester.subscriber_id
    if not EXPORT_ID_PATTERN.fullmatch(export_id):
        raise NotFoundError("export.not_found")
    moment = deps.clock()
    found = deps.objects.find(object_key(subscriber_id, export_id, "json"))
    if found is None or moment - found.last_modified >= timedelta(seconds=RETENTION_SECONDS):
        raise NotFoundError("export.not_found")

    _audit(deps, requester, "account.export_link", export_id, moment)
    return _links(deps, subscriber_id, export_id, found.last_modified, moment)


def _links(
    deps: ExportDeps, subscriber_id: str, export_id: str, created: datetime, now: datetime
) -> dict[str, Any]:
    links = {
        file: deps.objects.presigned_url(
            object_key(subscriber_id, export_id, file), LINK_SECONDS, f"idsentry-{name}"
        )
        for file, (name, _) in FILES.items()
    }
    return {
        "export_id": export_id,
        "created_at": _iso(created),
        "expires_at": _iso(created + timedelta(seconds=RETENTION_SECONDS)),
        "links": links,
        "links_expire_at": _iso(now + timedelta(seconds=LINK_SECONDS)),
    }


def _audit(
    deps: ExportDeps, requester: Requester, action: Any, export_id: str, moment: datetime
) -> None:
    deps.audit.write(
        AuditRecord(
            action=action,
            actor=f"subscriber:{requester.subscriber_id}",
            request_id=requester.request_id,
            subject=f"SUBSCRIBER#{requester.subscriber_id}",
            at=moment,
            reason=f"export {export_id} requested by the subscriber",
            outcome="exported" if action == "account.export" else "link_issued",
        )
    )


def _deliveries(
    table: MainTable, records: SubscriberRecords
) -> dict[tuple[str, str], dict[str, Any]]:
    """Return every delivery record of the subscriber, with the SMS status from its pointer item."""
    found = delivery_records(table, message_keys(records, taker_signup_ids(table, records)))
    pointers = read_many(
        table,
        [
            (f"SMS#{record['provider_id']}", "SMS")
            for (_, channel), record in found.items()
            if channel == "sms" and record.get("provider_id")
        ],
    )
    for (_, channel), record in found.items():
        pointer = pointers.get((f"SMS#{record.get('provider_id')}", "SMS"))
        if channel == "sms" and pointer is not None:
            record.update(
                {name: pointer[name] for name in SMS_STATUS_ATTRIBUTES if name in pointer}
            )
    return found


def build_export(
    records: SubscriberRecords,
    data_key: bytes,
    deliveries: dict[tuple[str, str], dict[str, Any]],
    export_id: str,
    moment: datetime,
) -> dict[str, Any]:
    """Return the export document: every section of the subscriber's data, decrypted."""
    subscriber_id = records.subscriber_id

    def decrypt(ciphertext: str) -> str:
        return decrypt_field(data_key, subscriber_id, ciphertext, purpose="export")

    document: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "export_id": export_id,
        "generated_at": _iso(moment),
        "subscriber_id": subscriber_id,
        "times": "Unix epoch seconds (UTC) unless a field ends in _iso",
    }
    other: list[dict[str, Any]] = []
    for sk, item in sorted(records.items.items()):
        if sk.startswith(POINTER_PREFIXES):
            continue
        section = _section_of(sk)
        if section is None:
            other.append({"record": sk.split("#", 1)[0], **_plain(item, decrypt)})
            continue
        name, is_list = section
        value = _plain(item, decrypt)
        if name == "profile":
            _add_masked(value)
        if is_list:
            document.setdefault(name, []).append(value)
        else:
            document[name] = value
    if other:
        document["other_records"] = other

    signup = records.signup.get("SIGNUP")
    if signup is not None:
        # The signup's own data key is deleted at verification, so any ciphertext left on it
        # is unreadable and left out.
        document["signup"] = _plain(signup, None)
    for alert in document.get("alerts", []):
        alert["deliveries"] = _alert_deliveries(deliveries, alert.get("alert_id"))
    document["notifications"] = [
        {"message_key": key, "channel": channel, **_delivery(record)}
        for (key, channel), record in sorted(deliveries.items())
    ]
    return document


def _section_of(sk: str) -> tuple[str, bool] | None:
    for prefix, name, is_list in SECTIONS:
        if sk == prefix or (prefix.endswith("#") and sk.startswith(prefix)):
            return name, is_list
    return None


def _plain(item: dict[str, Any], decrypt: Callable[[str], str] | None) -> dict[str, Any]:
    """Return an item's attributes for the export: ciphertext decrypted, keys and hashes left out."""
    out: dict[str, Any] = {}
    for name, value in sorted(item.items()):
        if name in LEFT_OUT:
            continue
        if name.endswith(ENCRYPTED_SUFFIX):
            if decrypt is not None:
                out[name.removesuffix(ENCRYPTED_SUFFIX)] = decrypt(str(value))
            continue
        out[name] = _json_value(value)
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(_json_value(element) for element in value)
    if isinstance(value, list):
        return [_json_value(element) for element in value]
    if isinstance(value, dict):
        return {str(key): _json_value(element) for key, element in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value


def _add_masked(profile: dict[str, Any]) -> None:
    for field, kind in MASKED_PROFILE_FIELDS.items():
        if isinstance(profile.get(field), str):
            profile[f"{field}_masked"] = mask(kind, profile[field])


def _delivery(record: dict[str, Any]) -> dict[str, Any]:
    return {
        name: _json_value(record[name])
        for name in (*DELIVERY_ATTRIBUTES, *SMS_STATUS_ATTRIBUTES)
        if name in record
    }


def _alert_deliveries(
    deliveries: dict[tuple[str, str], dict[str, Any]], alert_id: Any
) -> list[dict[str, Any]]:
    return [
        {"channel": channel, **_delivery(record)}
        for (key, channel), record in sorted(deliveries.items())
        if key == f"alert:{alert_id}"
    ]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
