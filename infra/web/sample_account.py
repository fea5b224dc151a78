"""A subscriber with one confirmed alert on the local stack, for account and report pictures and tests.

Everything goes through the stack's own paths: signup over the HTTP API with the code from the
Twilio emulator, a breach file and manifest uploaded to the intake bucket, and the alert that
intake and risk review produce. Only "monitored", which a paid subscription sets through
Stripe, is written to the table directly.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import requests

from idsentry.consents import CURRENT_VERSIONS, ConsentKind
from idsentry.services.preferences import DEFAULT_TIMEZONE, PREFS_SK
from infra.local.service import LocalService
from infra.local.zones import daytime_zone

# Long enough for intake, risk review and the notifier on a busy 2-core machine.
ALERT_DEADLINE_S = 60.0
REQUEST_TIMEOUT_S = 30


@dataclass(frozen=True)
class Person:
    """A person whose identity the real-name emulator accepts (events/demo/identities.json)."""

    name: str
    id_number: str
    mobile: str
    email: str
    # The language of the account's messages and reports: "zh-CN" or "en".
    locale: str = "zh-CN"


@dataclass(frozen=True)
class Breach:
    """The catalogue fields of a synthetic breach that exposed names and ID numbers."""

    name: str
    title: str
    breach_date: str


def breach_manifest(breach: Breach) -> dict[str, Any]:
    """Return the intake manifest of a CSV file with `name` and `id_number` columns."""
    return {
        "breach": {
            "Name": breach.name,
            "Title": breach.title,
            "BreachDate": breach.breach_date,
            "DataClasses": ["Names", "Government issued IDs"],
            "IsVerified": True,
        },
        "encoding": "utf-8",
        "format": "csv",
        "columns": {"name": "name", "id_number": "id_number"},
        "provenance": {
            "source": "Synthetic rows written by the local tools",
            "legal_basis": "Test data, no real people",
            "approved_by": "operator-1",
            "approved_at": "2026-12-04T08:00:00+08:00",
        },
    }


def sms_to(service: LocalService, mobile: str) -> list[dict[str, Any]]:
    """Return the SMS the Twilio emulator received for `mobile`, oldest first."""
    assert service.twilio is not None, "the local service is not started"
    return [message for message in service.twilio.messages() if message["to"] == mobile]


def wait_for_sms(
    service: LocalService, mobile: str, count: int, deadline_s: float = ALERT_DEADLINE_S
) -> list[dict[str, Any]]:
    """Return the SMS to `mobile` once there are `count` of them. Raises TimeoutError after the deadline."""
    give_up = time.monotonic() + deadline_s
    while True:
        messages = sms_to(service, mobile)
        if len(messages) >= count:
            return messages
        if time.monotonic() > give_up:
            raise TimeoutError(f"expected {count} SMS to the test number within {deadline_s} s")
        time.sleep(0.1)


def code_in(message: dict[str, Any]) -> str:
    """Return the 6-digit code of an SMS."""
    match = re.search(r"\d{6}", message["body"])
    if match is None:
        raise ValueError("the SMS has no 6-digit code")
    return match.group(0)


def sign_up(service: LocalService, person: Person, timezone: str | None = None) -> str:
    """Sign `person` up, accepting every current consent, and verify the code from the SMS.

    `timezone` is the account's zone (the service's default, Asia/Shanghai, when None).
    Returns the subscriber id.
    """
    body = {
        "name": person.name,
        "id_number": person.id_number,
        "mobile": person.mobile,
        "email": person.email,
        "locale": person.locale,
        "timezone": timezone,
        "plan": "monthly",
        "consents": {
            kind.value: {"accepted": True, "version": CURRENT_VERSIONS[kind]}
            for kind in ConsentKind
        },
    }
    before = len(sms_to(service, person.mobile))
    created = requests.post(f"{service.base_url}/v1/signups", json=body, timeout=REQUEST_TIMEOUT_S)
    created.raise_for_status()
    message = wait_for_sms(service, person.mobile, before + 1)[-1]
    verified = requests.post(
        f"{service.base_url}/v1/signups/{created.json()['signup_id']}/verify",
        json={"code": code_in(message)},
        timeout=REQUEST_TIMEOUT_S,
    )
    verified.raise_for_status()
    return str(verified.json()["subscriber_id"])


def sign_in(service: LocalService, person: Person) -> str:
    """Sign `person` in over the HTTP API with the code from the SMS. Returns the access token."""
    before = len(sms_to(service, person.mobile))
    started = requests.post(
        f"{service.base_url}/v1/sign-in", json={"mobile": person.mobile}, timeout=REQUEST_TIMEOUT_S
    )
    started.raise_for_status()
    message = wait_for_sms(service, person.mobile, before + 1)[-1]
    verified = requests.post(
        f"{service.base_url}/v1/sign-in/{started.json()['sign_in_id']}/verify",
        json={"code": code_in(message)},
        timeout=REQUEST_TIMEOUT_S,
    )
    verified.raise_for_status()
    return str(verified.json()["access_token"])


def mark_monitored(service: LocalService, subscriber_id: str) -> None:
    """Make the account active and monitored, as a paid subscription does, so breaches alert."""
    assert service.stack is not None, "the local service is not started"
    runtime = service.stack.runtime
    runtime.client("dynamodb").update_item(
        TableName=runtime.environment["TABLE_NAME"],
        Key={"pk": {"S": f"SUB#{subscriber_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET monitored = :true, #status = :active",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":true": {"BOOL": True}, ":active": {"S": "active"}},
    )


def upload_breach(service: LocalService, breach: Breach, people: list[Person]) -> None:
    """Upload a breach file with the names and ID numbers of `people`, then its manifest.

    The manifest's upload starts intake, which matches the rows against subscribers.
    """
    assert service.stack is not None, "the local service is not started"
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["name", "id_number"])
    writer.writerows([person.name, person.id_number] for person in people)

    runtime = service.stack.runtime
    s3 = runtime.client("s3")
    bucket = runtime.environment["INTAKE_BUCKET"]
    prefix = f"incoming/{breach.name}"
    s3.put_object(Bucket=bucket, Key=f"{prefix}/data.csv", Body=rows.getvalue().encode("utf-8"))
    manifest = json.dumps(breach_manifest(breach), ensure_ascii=False).encode("utf-8")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest.json", Body=manifest)


def alerted_subscriber(service: LocalService, person: Person, breach: Breach) -> str:
    """Sign `person` up, monitor them and alert them about `breach`. Returns the subscriber id.

    It returns once the alert SMS has reached the Twilio emulator, so the alert is confirmed and
    its delivery recorded. The account signs up in a zone where it is mid-afternoon, so quiet
    hours do not hold the SMS back at any time of day. Its zone is then set to Asia/Shanghai,
    so the pages and reports show China time.
    """
    subscriber_id = sign_up(service, person, timezone=daytime_zone())
    mark_monitored(service, subscriber_id)
    before = len(sms_to(service, person.mobile))
    upload_breach(service, breach, [person])
    wait_for_sms(service, person.mobile, before + 1)
    set_zone(service, subscriber_id, DEFAULT_TIMEZONE)
    return subscriber_id


def set_zone(service: LocalService, subscriber_id: str, timezone: str) -> None:
    """Set the account's time zone in its preferences item, where `PUT /v1/account/preferences` keeps it."""
    assert service.stack is not None, "the local service is not started"
    runtime = service.stack.runtime
    runtime.client("dynamodb").update_item(
        TableName=runtime.environment["TABLE_NAME"],
        Key={"pk": {"S": f"SUB#{subscriber_id}"}, "sk": {"S": PREFS_SK}},
        UpdateExpression="SET #timezone = :timezone",
        ExpressionAttributeNames={"#timezone": "timezone"},
        ExpressionAttributeValues={":timezone": {"S": timezone}},
    )
