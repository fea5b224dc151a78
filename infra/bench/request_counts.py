"""AWS requests per signup and per verification, counted in process against the local service.

The bench process invokes the signup function through the local runtime on its own thread and
records the calls of every botocore client created meanwhile. Only calls made on that thread
count, so the notifier's pollers, which run in the same process, are left out. "Cold" first
clears the cached clients, secrets and data keys (`clear_cached_dependencies`), as a new
Lambda instance starts without them, but modules stay imported. "Warm" is the next signup and
verification in the same instance.
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
from infra.bench.workload import IdentityFactory, signup_event, verify_event
from infra.local.service import LocalService

SIGNUP_FUNCTION = "SignupFunction"
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
MINIMUMS = {"signup": SIGNUP_MINIMUM, "verify": VERIFY_MINIMUM}


@dataclass
class UnitCalls:
    """The AWS calls of one unit of work (signup or verify), cold and warm."""

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


def _invoke(service: LocalService, event: dict[str, Any], expected_status: int) -> dict[str, Any]:
    assert service.stack is not None
    response: dict[str, Any] = service.stack.runtime.invoke(SIGNUP_FUNCTION, event)
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
        created = _invoke(service, signup_event(identity, consent_versions), 202)
    signup_id = str(_body(created)["signup_id"])
    code = _wait_for_code(service, identity.mobile)

    if cold:
        clear_cached_dependencies()
    with recorder.capture() as verify_calls:
        _invoke(service, verify_event(signup_id, code), 200)
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
        for call in unit.cold + unit.warm:
            if call["status"] != 200:
                raise BenchFailedError(
                    f"{unit.unit}: {operation_name(call)} returned HTTP {call['status']}"
                )
    return units
