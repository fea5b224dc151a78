"""The end state of a demo story run, captured from the local stack once every delivery settled.

`settle()` waits until nothing is in flight: the Stripe shim's webhooks (held ones released), the
Twilio emulator's queues and status callbacks, and every mapped SQS queue including replay
copies still delayed. `capture()` then reads every DynamoDB item of the stack, every SMS the
Twilio emulator accepted, every e-mail SES accepted and the Stripe customers the service links
to. It also keeps the demo's map from generated ids and contact details to story steps, which
infra.chaos.compare uses to compare two runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

# Importing infra.local puts the idsentry layer on sys.path, for `python -m infra.chaos.replay`.
import infra.local  # noqa: F401

# isort: split

from idsentry import identifiers
from infra.local.service import FINANCE_EMAIL

if TYPE_CHECKING:
    from infra.local.demo import Demo

# Twilio statuses of a message that the emulator has not drained yet.
UNDRAINED_SMS_STATUSES = frozenset({"accepted", "queued", "sending"})
# A settled stack stays idle for this many consecutive looks, this far apart.
IDLE_LOOKS = 3
LOOK_INTERVAL_S = 0.3


@dataclass
class EndState:
    """Raw end state of one run. `labels` maps run-specific values to story labels."""

    items: dict[str, list[dict[str, Any]]]
    sms: list[dict[str, Any]]
    emails: list[dict[str, Any]]
    stripe_customers: list[dict[str, Any]]
    labels: dict[str, str] = field(default_factory=dict)


def settle(demo: Demo, timeout_s: float) -> None:
    """Wait until the stack has nothing in flight for IDLE_LOOKS looks in a row.

    Raises TimeoutError naming what was still busy when `timeout_s` ran out.
    """
    deadline = time.monotonic() + timeout_s
    idle_looks = 0
    busy = "-"
    while idle_looks < IDLE_LOOKS:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the local stack did not settle in {timeout_s:.0f} s: {busy}")

        # flush() releases held webhook deliveries and waits until every one was sent.
        demo.stripe_shim.flush(timeout=remaining)
        busy = _busy(demo)
        if busy:
            idle_looks = 0
        else:
            idle_looks += 1
        time.sleep(LOOK_INTERVAL_S)


def _busy(demo: Demo) -> str:
    """Return what is still in flight, or "" when nothing is."""
    undrained = sum(
        1 for message in demo.twilio.messages() if message["status"] in UNDRAINED_SMS_STATUSES
    )
    if undrained:
        return f"{undrained} SMS not drained"
    if not demo.twilio.wait_for_callbacks(timeout=0):
        return "Twilio status callbacks pending"
    runtime = demo.runtime
    copies = runtime.pending_replay_copies()
    if copies:
        return f"{copies} replay copies not received"
    backlogs = {
        mapping.function_logical_id: demo.queue_backlog(mapping.function_logical_id)
        for mapping in runtime.mappings
        if mapping.enabled
    }
    waiting = {name: count for name, count in backlogs.items() if count}
    if waiting:
        return "queued messages " + ", ".join(f"{name} {count}" for name, count in waiting.items())
    return ""


def capture(demo: Demo) -> EndState:
    """Read the end state of the running stack of `demo` (call settle() first)."""
    stack = demo.service.stack
    assert stack is not None
    provisioned = stack.provisioned
    dynamodb = demo.runtime.client("dynamodb")
    deserializer = TypeDeserializer()

    items: dict[str, list[dict[str, Any]]] = {}
    for logical_id in provisioned.logical_ids("AWS::DynamoDB::Table"):
        table_items: list[dict[str, Any]] = []
        paginator = dynamodb.get_paginator("scan")
        for page in paginator.paginate(TableName=provisioned.table_name(logical_id)):
            for raw in page.get("Items", []):
                table_items.append(
                    {name: deserializer.deserialize(value) for name, value in raw.items()}
                )
        items[logical_id] = table_items

    return EndState(
        items=items,
        sms=demo.twilio.messages(),
        emails=demo.service.sent_emails(),
        stripe_customers=_stripe_customers(demo, items),
        labels=story_labels(demo),
    )


def _stripe_customers(demo: Demo, items: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Return each linked Stripe customer's balance and balance transactions."""
    owners = {
        str(item["pk"]).removeprefix("STRIPECUS#"): str(item.get("subscriber_id", "-"))
        for table_items in items.values()
        for item in table_items
        if str(item.get("pk", "")).startswith("STRIPECUS#") and item.get("sk") == "LINK"
    }
    client = demo.stripe_client()
    customers = []
    for customer_id, subscriber_id in sorted(owners.items()):
        customer = client.v1.customers.retrieve(customer_id).to_dict()
        listed = client.v1.customers.balance_transactions.list(customer_id, params={"limit": 100})
        customers.append(
            {
                "id": customer_id,
                "subscriber_id": subscriber_id,
                "balance": customer.get("balance"),
                "currency": customer.get("currency"),
                "balance_transactions": sorted(
                    (
                        {
                            "amount": transaction.get("amount"),
                            "currency": transaction.get("currency"),
                            "type": transaction.get("type"),
                            "description": transaction.get("description"),
                        }
                        for transaction in (entry.to_dict() for entry in listed.data)
                    ),
                    key=lambda entry: (str(entry["amount"]), str(entry["description"])),
                ),
            }
        )
    return customers


def story_labels(demo: Demo) -> dict[str, str]:
    """Map the run's subscriber ids, signup ids, mobiles and e-mail addresses to step ids.

    A signup burst's mobiles get `<step id>[<index>]`. The finance mailbox is `finance`.
    """
    labels: dict[str, str] = {FINANCE_EMAIL: "finance"}
    for step in demo.story.steps:
        body = step.get("body")
        if not isinstance(body, dict):
            continue
        mobiles = step.get("mobiles")
        if isinstance(mobiles, list):
            for index, mobile in enumerate(mobiles):
                labels.setdefault(_canonical_mobile(mobile), f"{step['id']}[{index}]")
        if isinstance(body.get("mobile"), str):
            labels.setdefault(_canonical_mobile(body["mobile"]), step["id"])
        if isinstance(body.get("email"), str):
            labels.setdefault(_canonical_email(body["email"]), step["id"])
    for step_id, record in demo.signups.items():
        labels[record.signup_id] = step_id
        if record.subscriber_id:
            labels[record.subscriber_id] = step_id
    for step_id, code in demo.referral_codes.items():
        if code:
            labels[code] = f"referral code of {step_id}"
    return labels


def _canonical_mobile(raw: str) -> str:
    from infra.local.demo import canonical_mobile

    try:
        return canonical_mobile(raw)
    except ValueError:
        return raw


def _canonical_email(raw: str) -> str:
    try:
        return identifiers.canonical_email(raw)
    except ValueError:
        return raw
