"""AWS requests per signup, verification and Stripe webhook delivery, counted in process.

The bench process invokes each function through the local runtime on its own thread and
records the calls of every botocore client created meanwhile. Only calls made on that thread
count, so the notifier's pollers, which run in the same process, are left out. "Cold" first
clears the cached clients, secrets and data keys (`clear_cached_dependencies`), as a new
Lambda instance starts without them, but modules stay imported. "Warm" is the next signup and
verification, or the next delivery, in the same instance.

The webhook deliveries carry made-up event ids, which the billing consumer would look up in
the local Stripe server, fail on every receive and leave in the DLQ after the queue's maximum
receive count. So the queue pollers are stopped while the deliveries run, and the bench
receives and deletes their messages (`drain_stripe_events`) before it restarts the pollers.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from infra.bench.child import CallRecorder
from infra.bench.workload import (
    IdentityFactory,
    new_stripe_event_id,
    signup_event,
    stripe_delivery,
    verify_event,
)
from infra.local.service import LocalService

SIGNUP_FUNCTION = "SignupFunction"
STRIPE_WEBHOOK_FUNCTION = "StripeWebhookFunction"
CODE_PATTERN = re.compile(r"\b(\d{6})\b")
SMS_DEADLINE_S = 30.0

# Service limits per request, from the DynamoDB, SQS and EventBridge API references.
BATCH_LIMITS = {
    "dynamodb:BatchGetItem": ("keys", 100),
    "dynamodb:BatchWriteItem": ("items", 25),
    "dynamodb:TransactWriteItems": ("items", 100),
    "dynamodb:TransactGetItems": ("items", 100),
    "sqs:SendMessageBatch": ("entries", 10),
    "events:PutEvents": ("entries", 10),
}


class BenchFailedError(RuntimeError):
    """A bench step did not get the response it needs, so its figures would be wrong."""


@dataclass(frozen=True)
class Minimum:
    """The minimum number of requests of one operation that the design needs per unit of work."""

    cold: int
    warm: int
    reason: str


# The lower bound per operation. An operation missing here has a lower bound of 0.
SIGNUP_MINIMUM = {
    "secretsmanager:GetSecretValue": Minimum(1, 0, "the fingerprint pepper, once per instance"),
    "dynamodb:BatchGetItem": Minimum(
        1, 1, "one read of the IP counter, the OTP budget and the number's send window"
    ),
    "kms:GenerateDataKey": Minimum(1, 1, "a data key for the pending signup"),
    "dynamodb:PutItem": Minimum(
        0, 0, "the wrapped key is an item of the transaction, which spans tables"
    ),
    "dynamodb:TransactWriteItems": Minimum(
        1, 1, "counters, send window and pending signup in one transaction"
    ),
    "sqs:SendMessage": Minimum(1, 1, "the code SMS job"),
}
VERIFY_MINIMUM = {
    "secretsmanager:GetSecretValue": Minimum(
        2, 0, "the pepper and the real-name provider secret, once per instance"
    ),
    "dynamodb:Query": Minimum(1, 1, "the signup and its code, which share a partition key"),
    "dynamodb:GetItem": Minimum(
        1, 0, "the signup's wrapped data key, unless this instance made it"
    ),
    "kms:Decrypt": Minimum(1, 0, "unwrap the signup's data key unless this instance made it"),
    "dynamodb:BatchGetItem": Minimum(1, 1, "the current holder of the ID number, if any"),
    "kms:GenerateDataKey": Minimum(1, 1, "a data key for the new subscriber"),
    "dynamodb:PutItem": Minimum(
        0, 0, "the wrapped key is an item of the transaction, which spans tables"
    ),
    "dynamodb:TransactWriteItems": Minimum(
        1, 1, "code, signup, subscriber, identifiers and ID claim in one transaction"
    ),
    "dynamodb:DeleteItem": Minimum(
        0, 0, "deleting the signup's data key is an item of the transaction"
    ),
    "events:PutEvents": Minimum(1, 1, "Subscriber.Registered"),
    "sqs:SendMessageBatch": Minimum(1, 1, "the e-mail confirmation job"),
    "dynamodb:UpdateItem": Minimum(1, 1, "mark the signup published, so a retry does not resend"),
}
WEBHOOK_MINIMUM = {
    "secretsmanager:GetSecretValue": Minimum(
        1, 0, "the Stripe secret with the webhook signing secret, once per instance"
    ),
    "sqs:SendMessage": Minimum(1, 1, "the event id for the billing consumer"),
}
NOTIFICATION_MINIMUM = {
    "secretsmanager:GetSecretValue": Minimum(
        2,
        0,
        "the pepper (preference links, SMS window key) and the Twilio secret, once per instance",
    ),
    "dynamodb:BatchGetItem": Minimum(
        1,
        1,
        "profile, preferences, identifiers, alert, exposure, breach and the SMS's ledger record "
        "in one read",
    ),
    "dynamodb:GetItem": Minimum(
        2, 2, "the subscriber's wrapped data key and the number's SMS window"
    ),
    "kms:Decrypt": Minimum(1, 1, "unwrap the subscriber's data key, another subscriber's each job"),
    "dynamodb:UpdateItem": Minimum(
        5,
        5,
        "claim and mark sent for each channel, and the day's alert SMS budget; the link from the "
        "message sid to the record is one more, which the sent mark could set as an index key",
    ),
    "dynamodb:PutItem": Minimum(
        1,
        1,
        "the number's SMS window, conditional on its version; the link from SES's message id "
        "is one more, which the sent mark could set as an index key",
    ),
    "sesv2:SendEmail": Minimum(1, 1, "the alert e-mail"),
}
MINIMUMS = {
    "signup": SIGNUP_MINIMUM,
    "verify": VERIFY_MINIMUM,
    "webhook": WEBHOOK_MINIMUM,
    "notification": NOTIFICATION_MINIMUM,
}


@dataclass
class UnitCalls:
    """The AWS calls of one unit of work (signup, verify or webhook), cold and warm."""

    unit: str
    cold: list[dict[str, Any]]
    warm: list[dict[str, Any]]


def operation_name(call: dict[str, Any]) -> str:
    """Return `service:Operation` of a recorded call."""
    return f"{call['service']}:{call['operation']}"


def count_operations(calls: list[dict[str, Any]]) -> Counter[str]:
    """Count the recorded calls per operation."""
    return Counter(operation_name(call) for call in calls)


def batch_sizes(calls: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Return, per batching operation, the number of keys, items or entries of each call."""
    sizes: dict[str, list[int]] = {}
    for call in calls:
        name = operation_name(call)
        if name not in BATCH_LIMITS:
            continue
        summary = call["summary"]
        if "tables" in summary:
            size = sum(summary["tables"].values())
        elif "items" in summary:
            size = len(summary["items"])
        else:
            size = int(summary.get("entries", 0))
        sizes.setdefault(name, []).append(size)
    return sizes


def _invoke(
    service: LocalService, function_logical_id: str, event: dict[str, Any], expected_status: int
) -> dict[str, Any]:
    assert service.stack is not None
    response: dict[str, Any] = service.stack.runtime.invoke(function_logical_id, event)
    if response.get("statusCode") != expected_status:
        raise BenchFailedError(
            f"{event['routeKey']} returned {response.get('statusCode')}, expected "
            f"{expected_status}: {response.get('body')}"
        )
    return response


def _wait_for_code(service: LocalService, mobile: str) -> str:
    """Return the one-time code of the first SMS to mobile, waiting for the notifier."""
    assert service.twilio is not None
    give_up = time.monotonic() + SMS_DEADLINE_S
    while time.monotonic() < give_up:
        for message in service.twilio.messages():
            if message["to"] != mobile:
                continue
            match = CODE_PATTERN.search(message["body"])
            if match is None:
                raise BenchFailedError("the code SMS of a bench signup has no 6-digit code")
            return match.group(1)
        time.sleep(0.05)
    raise BenchFailedError(
        f"no code SMS reached the Twilio emulator within {SMS_DEADLINE_S:.0f} s; "
        "are the notifier's pollers running (LocalService(background=True))?"
    )


def _signup_and_verify(
    service: LocalService,
    recorder: CallRecorder,
    factory: IdentityFactory,
    consent_versions: dict[str, str],
    cold: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from infra.local.service import clear_cached_dependencies

    assert service.realname is not None
    identity = factory.new()
    service.realname.add_identity(identity.name, identity.id_number, identity.mobile)

    if cold:
        clear_cached_dependencies()
    with recorder.capture() as signup_calls:
        created = _invoke(service, SIGNUP_FUNCTION, signup_event(identity, consent_versions), 202)
    signup_id = str(_body(created)["signup_id"])
    code = _wait_for_code(service, identity.mobile)

    if cold:
        clear_cached_dependencies()
    with recorder.capture() as verify_calls:
        _invoke(service, SIGNUP_FUNCTION, verify_event(signup_id, code), 200)
    return signup_calls, verify_calls


def _body(response: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response["body"])
    return body


def measure_request_counts(service: LocalService) -> list[UnitCalls]:
    """Run one cold and one warm signup with verification; return each one's AWS calls."""
    from idsentry.consents import CURRENT_VERSIONS

    consent_versions = {str(kind): version for kind, version in CURRENT_VERSIONS.items()}
    factory = IdentityFactory()
    recorder = CallRecorder(thread_id=threading.get_ident())
    recorder.install()
    try:
        cold_signup, cold_verify = _signup_and_verify(
            service, recorder, factory, consent_versions, cold=True
        )
        warm_signup, warm_verify = _signup_and_verify(
            service, recorder, factory, consent_versions, cold=False
        )
    finally:
        recorder.active = False
        recorder.uninstall()

    units = [
        UnitCalls("signup", cold_signup, warm_signup),
        UnitCalls("verify", cold_verify, warm_verify),
    ]
    for unit in units:
        _check_status(unit)
    return units


def _check_status(unit: UnitCalls) -> None:
    for call in unit.cold + unit.warm:
        if call["status"] != 200:
            raise BenchFailedError(
                f"{unit.unit}: {operation_name(call)} returned HTTP {call['status']}"
            )


def stripe_events_queue_url(service: LocalService) -> str:
    """Return the URL of the queue that the webhook function sends event ids to."""
    assert service.stack is not None
    function = service.stack.runtime.functions[STRIPE_WEBHOOK_FUNCTION]
    return function.environment["STRIPE_EVENTS_QUEUE_URL"]


def drain_stripe_events(sqs: Any, queue_url: str) -> list[str]:
    """Receive and delete every visible message of the queue; return their event ids in order.

    Call it only while the queue pollers are stopped, because a running billing consumer
    receives some of the messages first.
    """
    event_ids: list[str] = []
    while True:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        if not messages:
            return event_ids

        for message in messages:
            try:
                event_ids.append(str(json.loads(message["Body"])["event_id"]))
            except (ValueError, KeyError, TypeError):
                event_ids.append("(not a Stripe event job)")
        deleted = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages)
            ],
        )
        if deleted.get("Failed"):
            raise BenchFailedError(
                f"deleting {len(deleted['Failed'])} messages from the Stripe events queue failed"
            )


def check_one_message_per_delivery(delivered: list[str], received: list[str]) -> None:
    """Raise BenchFailedError unless the queue held exactly one message per delivered event id."""
    if sorted(received) == sorted(delivered):
        return
    unknown = len([event_id for event_id in received if event_id not in delivered])
    raise BenchFailedError(
        f"the Stripe events queue contained {len(received)} messages ({unknown} with an event "
        f"id the bench did not send), expected one per delivery ({len(delivered)})"
    )


def _deliver(
    service: LocalService, recorder: CallRecorder, delivered: list[str]
) -> list[dict[str, Any]]:
    event_id = new_stripe_event_id()
    delivered.append(event_id)
    event = stripe_delivery(event_id, service.stripe_webhook_secret)
    with recorder.capture() as calls:
        _invoke(service, STRIPE_WEBHOOK_FUNCTION, event, 200)
    return calls


def measure_webhook_counts(service: LocalService) -> UnitCalls:
    """Serve one cold and one warm Stripe delivery with the pollers stopped; return the calls.

    Raises BenchFailedError unless each delivery returned 200 and left exactly one message,
    with its event id, on the Stripe events queue. The messages are deleted before the
    pollers restart, and the queue is purged after a failed delivery too.
    """
    from infra.local.service import clear_cached_dependencies

    assert service.stack is not None
    runtime = service.stack.runtime
    queue_url = stripe_events_queue_url(service)
    sqs = runtime.client("sqs")
    recorder = CallRecorder(thread_id=threading.get_ident())
    delivered: list[str] = []

    runtime.stop()
    recorder.install()
    try:
        clear_cached_dependencies()
        cold = _deliver(service, recorder, delivered)
        warm = _deliver(service, recorder, delivered)
        received = drain_stripe_events(sqs, queue_url)
    except BaseException:
        sqs.purge_queue(QueueUrl=queue_url)
        raise
    finally:
        recorder.active = False
        recorder.uninstall()
        runtime.start()

    check_one_message_per_delivery(delivered, received)
    unit = UnitCalls("webhook", cold, warm)
    _check_status(unit)
    return unit
