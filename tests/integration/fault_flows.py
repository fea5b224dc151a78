"""Flows the fault scenarios run, and the end state each one counts: sent, lost, duplicated.

Each flow seeds its own subscribers with new numbers and addresses, so scenarios that share
one local stack never count each other's messages.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from idsentry.adapters.batch import BatchTable
from idsentry.adapters.keys import DataKeyStore
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.crypto import Pepper, encrypt_field
from idsentry.identifiers import (
    IdentifierKind,
    canonical_email,
    canonical_id_number,
    canonical_mobile,
    mask,
)
from idsentry.item_keys import watch_pk
from infra.bench.notifications import SeededAlert, seed_alerts
from infra.bench.workload import IdentityFactory
from infra.chaos.harness import FaultStack
from infra.local.emulators.stripe import TEST_API_KEY
from infra.local.zones import daytime_zone

# Statuses of a message that reached, or is still on its way to, the handset.
SMS_REACHED = frozenset({"accepted", "queued", "sending", "sent", "delivered"})


@dataclass
class EndState:
    """Counts of one flow's end state against what it should be."""

    expected: int = 0
    found: int = 0
    lost: int = 0
    duplicated: int = 0
    details: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, expected: int, found: int) -> None:
        """Add one item's expected and found copies; a missing copy is lost, an extra one duplicated."""
        self.expected += expected
        self.found += found
        self.lost += max(0, expected - found)
        self.duplicated += max(0, found - expected)
        self.details[name] = self.details.get(name, 0) + found

    def note(self, name: str, value: int = 1) -> None:
        """Add to a detail that is neither lost nor duplicated, such as a ledger state."""
        self.details[name] = self.details.get(name, 0) + value


def main_table(stack: FaultStack) -> MainTable:
    """Return the main table through a client of the test's own, which no fault touches."""
    environment = stack.runtime.environment
    return MainTable(environment["TABLE_NAME"], stack.runtime.client("dynamodb"))


def seed_alert_jobs(stack: FaultStack, count: int) -> list[SeededAlert]:
    """Write `count` subscribers with one confirmed high or critical alert each.

    Their time zone is one where it is mid-afternoon, so quiet hours hold no SMS back.
    """
    now = int(stack.clock.epoch())
    alerts = seed_alerts(stack.service, count, now)
    table = main_table(stack)
    zone = daytime_zone(stack.clock.now())
    for alert in alerts:
        table.update(
            f"SUB#{alert.subscriber_id}",
            "PREFS",
            "SET #zone = :zone",
            values={":zone": zone},
            names={"#zone": "timezone"},
        )
    return alerts


def enqueue_alerts(stack: FaultStack, alerts: Sequence[SeededAlert]) -> None:
    """Put each alert's notification job on the notification queue, as the alert rule does."""
    environment = stack.runtime.environment
    queue = JobQueue(environment["NOTIFICATION_QUEUE_URL"], stack.runtime.client("sqs"))
    queue.send_many([alert.job for alert in alerts])


def alert_end_state(
    stack: FaultStack, alerts: Sequence[SeededAlert], sms_owed: int = 1
) -> EndState:
    """Count each alert's SMS (reached the handset or on its way), e-mail and ledger records.

    Every seeded alert is high or critical, so it is owed one SMS (`sms_owed`) and one e-mail.
    An SMS that Twilio failed (queue overflow, expired validity) did not reach the subscriber,
    so it is not counted as sent; `sms_failed` counts those attempts.
    """
    assert stack.service.twilio is not None
    messages = stack.service.twilio.messages()
    emails = stack.service.sent_emails()
    table = main_table(stack)
    state = EndState()
    for alert in alerts:
        to_number = [message for message in messages if message["to"] == alert.mobile]
        reached = [message for message in to_number if message["status"] in SMS_REACHED]
        state.count("sms", sms_owed, len(reached))
        state.note("sms_failed", len(to_number) - len(reached))
        sent_to = [email for email in emails if email["to"] == [alert.email]]
        state.count("email", 1, len(sent_to))

        ledger = table.get_partition(f"NOTIFY#alert:{alert.alert_id}")
        for channel in ("sms", "email"):
            ledger_state = (ledger.get(channel) or {}).get("state", "missing")
            state.note(f"ledger_{channel}_{ledger_state}")
    return state


def ledger_states(state: EndState, channel: str) -> dict[str, int]:
    """Return the ledger states an end state counted for one channel."""
    prefix = f"ledger_{channel}_"
    return {
        name.removeprefix(prefix): value
        for name, value in state.details.items()
        if name.startswith(prefix)
    }


def summary(state: EndState, **extra: Any) -> dict[str, int | str]:
    """Return the details a scenario records: the end state's counts and any extra figures."""
    return {**state.details, **extra}


# ---------------------------------------------------------------------------- breach intake

WATCHED_KINDS = ("id_number", "mobile", "email")
BREACH_COLUMNS = {"身份证号": "id_number", "手机号": "mobile", "邮箱": "email"}
BREACH_PROVENANCE = {
    "source": "Made-up rows written by the fault scenarios; no real people",
    "legal_basis": "PIPL art. 13(7): processing publicly disclosed data within a reasonable scope",
    "approved_by": "operator-1",
    "approved_at": "2026-12-04T08:00:00+08:00",
}


@dataclass(frozen=True)
class Watcher:
    """A monitored subscriber whose ID number, mobile number and e-mail address are watched."""

    subscriber_id: str
    identifiers: dict[str, str]

    @property
    def mobile(self) -> str:
        return self.identifiers["mobile"]

    @property
    def email(self) -> str:
        return self.identifiers["email"]


def seed_watchers(stack: FaultStack, count: int) -> list[Watcher]:
    """Write `count` active, monitored subscribers with watch items, as verification leaves them."""
    environment = stack.runtime.environment
    dynamodb = stack.runtime.client("dynamodb")
    pepper = Pepper.from_secret(stack.service.pepper)
    keys = DataKeyStore(
        environment["KEY_TABLE_NAME"],
        environment["DATA_KEY_ARN"],
        dynamodb=dynamodb,
        kms=stack.runtime.client("kms"),
    )
    factory = IdentityFactory()
    run = uuid.uuid4().hex[:8]
    now = int(stack.clock.epoch())
    zone = daytime_zone(stack.clock.now())

    items: list[dict[str, Any]] = []
    watchers = []
    for index in range(count):
        identity = factory.new()
        subscriber_id = f"sbr_fault{run}{index:06d}"
        identifiers = {
            "id_number": canonical_id_number(identity.id_number),
            "mobile": canonical_mobile("+86199" + identity.mobile.removeprefix("+86138")),
            "email": canonical_email(f"fault-{run}-{index}@example.com"),
        }
        data_key, key_write = keys.prepare(subscriber_id)
        dynamodb.put_item(TableName=environment["KEY_TABLE_NAME"], Item=key_write.body["Item"])
        keys.forget(subscriber_id)
        items.extend(_watcher_items(subscriber_id, data_key, identifiers, pepper, zone, now))
        watchers.append(Watcher(subscriber_id, identifiers))
    BatchTable(environment["TABLE_NAME"], dynamodb).put_many(items)
    return watchers


def _watcher_items(
    subscriber_id: str,
    data_key: bytes,
    identifiers: dict[str, str],
    pepper: Pepper,
    zone: str,
    now: int,
) -> list[dict[str, Any]]:
    pk = f"SUB#{subscriber_id}"
    items: list[dict[str, Any]] = [
        {
            "pk": pk,
            "sk": "PROFILE",
            "subscriber_id": subscriber_id,
            "status": "active",
            "plan": "monthly",
            "locale": "zh-CN",
            "monitored": True,
            "mobile_enc": encrypt_field(data_key, subscriber_id, identifiers["mobile"]),
            "email_enc": encrypt_field(data_key, subscriber_id, identifiers["email"]),
            "email_fp": str(pepper.fingerprint("email", identifiers["email"])),
            "email_confirmed_at": now,
            "created_at": now,
        },
        {"pk": pk, "sk": "PREFS", "timezone": zone, "created_at": now},
    ]
    for kind, value in identifiers.items():
        fingerprints = pepper.fingerprints(kind, value)
        items.append(
            {
                "pk": pk,
                "sk": f"IDENT#{kind}",
                "kind": kind,
                "fingerprints": {fp.version: fp.value for fp in fingerprints},
                "value_enc": encrypt_field(data_key, subscriber_id, value),
                "masked": mask(IdentifierKind(kind), value),
                "confirmed": True,
                "added_at": now,
            }
        )
        items.extend(
            {"pk": watch_pk(kind, fp), "sk": "WATCH", "subscriber_ids": {subscriber_id}}
            for fp in fingerprints
        )
    return items


@dataclass(frozen=True)
class BreachUpload:
    """A breach file uploaded to the intake bucket: its name and the rows it holds."""

    name: str
    rows: list[dict[str, str]]


def upload_breach(stack: FaultStack, watchers: Sequence[Watcher], noise: int) -> BreachUpload:
    """Upload a verified breach listing every watcher and `noise` strangers, with its manifest."""
    name = f"FaultShop{uuid.uuid4().hex[:10]}"
    factory = IdentityFactory()

    rows = [dict(watcher.identifiers) for watcher in watchers]
    for index in range(noise):
        stranger = factory.new()
        rows.append(
            {
                "id_number": canonical_id_number(stranger.id_number),
                "mobile": canonical_mobile(stranger.mobile),
                "email": canonical_email(f"stranger-{name.lower()}-{index}@example.com"),
            }
        )

    lines = ["身份证号,手机号,邮箱"] + [
        f"{row['id_number']},{row['mobile']},{row['email']}" for row in rows
    ]
    manifest = {
        "breach": {
            "Name": name,
            "Title": "Fault Shop",
            "Domain": "shop.example.com",
            "BreachDate": "2026-10-01",
            "DataClasses": ["Government issued IDs", "Phone numbers", "Email addresses"],
            "IsVerified": True,
        },
        "encoding": "gb18030",
        "format": "csv",
        "columns": BREACH_COLUMNS,
        "provenance": BREACH_PROVENANCE,
    }

    s3 = stack.runtime.client("s3")
    bucket = stack.runtime.environment["INTAKE_BUCKET"]
    prefix = f"incoming/{name}"
    s3.put_object(
        Bucket=bucket, Key=f"{prefix}/data.csv", Body=("\n".join(lines) + "\n").encode("gb18030")
    )
    s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest.json", Body=json.dumps(manifest).encode())
    return BreachUpload(name, rows)


def breach_end_state(
    stack: FaultStack, upload: BreachUpload, watchers: Sequence[Watcher]
) -> EndState:
    """Count the breach's index entries, and each watcher's exposure, alert, SMS and e-mail."""
    from idsentry.alert_templates import SMS_SEVERITIES

    assert stack.service.twilio is not None
    table = main_table(stack)
    messages = stack.service.twilio.messages()
    emails = stack.service.sent_emails()
    state = EndState()

    index = stack.runtime.client("dynamodb")
    entries = 0
    for page in index.get_paginator("scan").paginate(
        TableName=stack.runtime.environment["BREACH_INDEX_TABLE"],
        FilterExpression="sk = :breach",
        ExpressionAttributeValues={":breach": {"S": upload.name}},
    ):
        entries += len(page["Items"])
    distinct = {(kind, row[kind]) for row in upload.rows for kind in WATCHED_KINDS}
    state.count("index_entries", len(distinct), entries)

    for watcher in watchers:
        items = table.get_partition(f"SUB#{watcher.subscriber_id}")
        exposure = items.get(f"EXPOSURE#{upload.name}")
        alert = items.get(f"ALERT#{upload.name}")
        state.count("exposures", 1, int(exposure is not None and exposure.get("announced") is True))
        state.count("alerts", 1, int(alert is not None and alert.get("status") == "confirmed"))
        sms_owed = int(alert is not None and alert.get("severity") in SMS_SEVERITIES)
        reached = [
            message
            for message in messages
            if message["to"] == watcher.mobile and message["status"] in SMS_REACHED
        ]
        state.count("sms", sms_owed, len(reached))
        state.count("email", 1, len([e for e in emails if e["to"] == [watcher.email]]))
        if alert is not None:
            ledger = table.get_partition(f"NOTIFY#alert:{alert['alert_id']}")
            for channel in ("sms", "email"):
                ledger_state = (ledger.get(channel) or {}).get("state", "missing")
                state.note(f"ledger_{channel}_{ledger_state}")
    return state


# ---------------------------------------------------------------------------- billing


@dataclass(frozen=True)
class Purchase:
    """A subscriber's open Checkout Session for the monthly plan."""

    subscriber_id: str
    customer_id: str
    session_id: str


def open_purchases(stack: FaultStack, count: int) -> list[Purchase]:
    """Create `count` subscribers waiting for payment, each with a customer and a session."""
    import stripe

    shim = stack.service.stripe_shim
    assert shim is not None
    client = stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": shim.base_url}, max_network_retries=0
    )
    price = client.v1.prices.list(params={"lookup_keys": ["idsentry_monthly_cny"]}).data[0]
    table = main_table(stack)
    run = uuid.uuid4().hex[:8]
    purchases = []
    for index in range(count):
        subscriber_id = f"sbr_pay{run}{index:06d}"
        table.put(
            {
                "pk": f"SUB#{subscriber_id}",
                "sk": "PROFILE",
                "subscriber_id": subscriber_id,
                "status": "pending_payment",
            }
        )
        customer = client.v1.customers.create(params={"metadata": {"subscriber_id": subscriber_id}})
        table.put({"pk": f"STRIPECUS#{customer.id}", "sk": "LINK", "subscriber_id": subscriber_id})
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "customer": customer.id,
                "client_reference_id": subscriber_id,
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": "http://127.0.0.1/paid",
                "cancel_url": "http://127.0.0.1/cancelled",
                "subscription_data": {"metadata": {"subscriber_id": subscriber_id}},
            }
        )
        purchases.append(Purchase(subscriber_id, customer.id, session.id))
    return purchases


def pay(stack: FaultStack, purchases: Sequence[Purchase]) -> int:
    """Pay every session with a test card; return how many webhook deliveries came before."""
    shim = stack.service.stripe_shim
    assert shim is not None
    shim.flush()
    before = len(shim.deliveries())
    for purchase in purchases:
        shim.pay_checkout_session(purchase.session_id)
    return before


def billing_end_state(
    stack: FaultStack, purchases: Sequence[Purchase], deliveries_before: int
) -> EndState:
    """Count each subscriber's entitlement and ledger rows, and every delivered event's marker."""
    shim = stack.service.stripe_shim
    assert shim is not None
    table = main_table(stack)
    state = EndState()
    for purchase in purchases:
        items = table.get_partition(f"SUB#{purchase.subscriber_id}")
        profile = items.get("PROFILE") or {}
        entitled = profile.get("status") == "active" and profile.get("monitored") is True
        state.count("entitlements", 1, int(entitled))
        paid = [sk for sk in items if sk.startswith("LEDGER#") and "#invoice_paid#" in sk]
        state.count("ledger_rows", 1, len(paid))

    event_ids = {delivery.event_id for delivery in shim.deliveries()[deliveries_before:]}
    applied = sum(
        1 for event_id in event_ids if table.get(f"STRIPE_EVENT#{event_id}", "APPLIED") is not None
    )
    state.count("events_applied", len(event_ids), applied)
    return state
