"""A scan of every table, bucket and queue of the local stack for what remains of a person.

Deletion tests and `make demo` give it the values that must be gone (ids, identifiers,
fingerprints, ciphertexts) and read back where any of them still appears.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from idsentry.adapters.dynamo import from_item
from idsentry.adapters.table import MainTable

# The first bytes of a ZIP archive's first local file header.
_ZIP_MAGIC = b"PK\x03\x04"


def personal_needles(
    table: MainTable, subscriber_id: str, signup_id: str, details: dict[str, str]
) -> dict[str, str]:
    """Return every value of a subscriber that must not remain after deletion, by a label.

    `details` holds the canonical name, id_number, mobile and email the person signed up with.
    The fingerprints, ciphertexts and referral code are read from the subscriber's partition,
    so call this before the deletion.
    """
    needles = {
        "subscriber id": subscriber_id,
        "signup id": signup_id,
        "name": details["name"],
        "id number": details["id_number"],
        "mobile": details["mobile"],
        "mobile digits": details["mobile"].removeprefix("+86"),
        "e-mail": details["email"],
    }
    items = table.get_partition(f"SUB#{subscriber_id}")
    for sk, item in items.items():
        for version, value in (item.get("fingerprints") or {}).items():
            needles[f"fingerprint {sk} v{version}"] = str(value)
        for name, value in item.items():
            if isinstance(value, str) and value.startswith("g1:"):
                needles[f"ciphertext {sk}.{name}"] = value
    profile = items["PROFILE"]
    needles["referral code"] = f"REFCODE#{profile['own_referral_code']}"
    needles["e-mail fingerprint"] = str(profile["email_fp"]).split(":", 1)[1]
    return needles


@dataclass
class Finding:
    """One place where a needle was found."""

    store: str
    where: str
    label: str


def scan_everything(
    runtime: Any, needles: dict[str, str], allowed: Iterable[tuple[str, str]] = ()
) -> list[Finding]:
    """Scan every DynamoDB table, S3 object version and queue message for the needles.

    `allowed` lists (store, label) pairs that may match, such as the subscriber id in the
    audit table.
    """
    permitted = set(allowed)
    findings: list[Finding] = []
    dynamodb = runtime.client("dynamodb")
    for table_name in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table_name):
            for raw in page["Items"]:
                item = from_item(raw)
                text = json.dumps(item, default=_plain, ensure_ascii=False)
                where = f"{item.get('pk', item.get('owner_id'))} / {item.get('sk', '')}"
                findings.extend(_search(table_name, where, text, needles, permitted))

    s3 = runtime.client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            for version in page.get("Versions", []):
                body = s3.get_object(
                    Bucket=name, Key=version["Key"], VersionId=version["VersionId"]
                )
                text = version["Key"] + "\n" + _readable(body["Body"].read())
                findings.extend(_search(f"s3:{name}", version["Key"], text, needles, permitted))

    sqs = runtime.client("sqs")
    for url in sqs.list_queues().get("QueueUrls", []):
        for message in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", []):
            findings.extend(
                _search(
                    f"sqs:{url.rsplit('/', 1)[-1]}",
                    message["MessageId"],
                    message["Body"],
                    needles,
                    permitted,
                )
            )
    return findings


def _readable(data: bytes) -> str:
    """Return an object's bytes as text, with each member of a ZIP archive decompressed.

    Deflated members would hide their text from the search, so every member is read.
    """
    text = data.decode("utf-8", errors="replace")
    if not data.startswith(_ZIP_MAGIC):
        return text
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [
            archive.read(member).decode("utf-8", errors="replace") for member in archive.namelist()
        ]
    return "\n".join([text, *members])


def _plain(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raw = getattr(value, "value", value)
    if isinstance(raw, bytes):
        # Binary attributes (wrapped data keys) are searched as text and as hex.
        return raw.decode("latin-1") + raw.hex()
    return repr(value)


def _search(
    store: str, where: str, text: str, needles: dict[str, str], permitted: set[tuple[str, str]]
) -> list[Finding]:
    return [
        Finding(store, where, label)
        for label, needle in needles.items()
        if needle in text and (store, label) not in permitted
    ]
