"""What the cold-start bench needs to know about one function's first request.

A `FirstRequest` names the function, builds a new event for each run, checks what the run
returned and changed, and cleans up after the runs. The bench calls its hooks in this order:

1. `seed(context, count)` with the queue pollers running, to make the state the requests
   need (subscribers, sign-ins) through the product's own paths;
2. `collect(context, count)` with the pollers stopped, to take the messages that seeding
   queued, before a consumer receives them;
3. for each of the `count` runs: `before_run(context, index)`, `event(context, index)` just
   before the child process starts, then `check(context, result, index)` after it;
4. `cleanup(context)` with the pollers still stopped.

After the cleanup the bench empties every mapped queue, so the jobs and events that the
measured runs queued are never processed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.bench.request_counts import BenchFailedError
from infra.bench.seeding import Seeder, Subscriber
from infra.local.service import LocalService
from infra.local.stack import REPOSITORY_ROOT

EVENTS = REPOSITORY_ROOT / "events"
SQS_SAMPLE_EVENT = EVENTS / "sqs" / "notification_otp.json"
# SDKs whose modules a function's process must not load unless the function calls the provider.
STRIPE_AND_TWILIO = ("stripe", "twilio")
ACCOUNT_AUTHORIZER_FUNCTION = "AccountAuthorizerFunction"


@dataclass
class ColdStartContext:
    """The started service, the seeder and what several first requests share."""

    service: LocalService
    seeder: Seeder
    workdir: Path
    # Numbers whose SMS wait in the paused Twilio emulator on purpose, so the bench does not
    # wait for them to be delivered.
    held_sms_numbers: set[str] = field(default_factory=set)
    # Objects that several first requests make once and share, such as the breach file.
    shared: dict[str, Any] = field(default_factory=dict)
    _subscriber: Subscriber | None = None

    @property
    def runtime(self) -> Any:
        assert self.service.stack is not None
        return self.service.stack.runtime

    def client(self, service_name: str) -> Any:
        return self.seeder.client(service_name)

    def shared_subscriber(self) -> Subscriber:
        """Return the bench's one paid subscriber with a confirmed e-mail, made on first use."""
        if self._subscriber is None:
            self._subscriber = self.seeder.paid_subscriber()
        return self._subscriber


class FirstRequest:
    """One function's first request in the cold-start bench; subclasses fill in the hooks.

    `unit` names the function in the page and `title` heads its row or section. `request`
    completes "The process imports app.py and serves ...", and `outcome` completes "Every run
    must ...". `note` adds what the page should say about the measurement, for example why a
    run finds nothing to do. `must_not_load` names the SDKs whose modules the process must not
    have loaded after its request. `detailed` functions get a subsection of their own.
    """

    unit: str = ""
    logical_id: str = ""
    title: str = ""
    request: str = ""
    outcome: str = ""
    note: str = ""
    must_not_load: tuple[str, ...] = STRIPE_AND_TWILIO
    session_baseline: bool = False
    detailed: bool = False

    def seed(self, context: ColdStartContext, count: int) -> None:
        """Make the state for `count` runs; the pollers run."""

    def collect(self, context: ColdStartContext, count: int) -> None:
        """Take queued messages for `count` runs; the pollers are stopped."""

    def before_run(self, context: ColdStartContext, index: int) -> None:
        """Prepare run `index` (0 is the run that compiles the bytecode)."""

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        """Return the event of run `index`."""
        raise NotImplementedError(f"{type(self).__name__} builds no event")

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        """Raise BenchFailedError unless run `index` returned and changed what it should."""

    def baseline_extras(self, context: ColdStartContext) -> dict[str, Any]:
        """Return more fields for the same-work spec (the notifier's SMS, for example)."""
        return {}

    def replayed_provider_calls(self, recorded: dict[str, Any]) -> list[dict[str, Any]]:
        """Return the provider requests that the same-work process sends again."""
        calls: list[dict[str, Any]] = recorded["provider_calls"]
        return calls

    def cleanup(self, context: ColdStartContext) -> None:
        """Undo what only the runs need; the pollers are still stopped."""


def expect_status(unit: str, result: dict[str, Any], status: int) -> None:
    """Raise BenchFailedError unless an HTTP API function's run returned `status`."""
    if result["status"] != status:
        body = (result.get("response") or {}).get("body")
        raise BenchFailedError(
            f"the {unit} child got HTTP {result['status']}, expected {status}: {body}; its "
            "output:\n" + result.get("stderr", "")[-4000:]
        )


def expect_no_failed_record(unit: str, result: dict[str, Any]) -> None:
    """Raise BenchFailedError unless an SQS function's run reported no failed record."""
    failures = result["batch_item_failures"]
    if failures != 0:
        raise BenchFailedError(
            f"the {unit} child reported {failures} failed records, expected none; its "
            "output:\n" + result.get("stderr", "")[-4000:]
        )


def response_body(result: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON body of an HTTP API function's response."""
    body: dict[str, Any] = json.loads((result.get("response") or {}).get("body") or "{}")
    return body


def load_sample(relative: str) -> dict[str, Any]:
    """Return a copy of a sample event from events/."""
    sample: dict[str, Any] = json.loads((EVENTS / relative).read_text(encoding="utf-8"))
    return copy.deepcopy(sample)


def fresh_http_event(relative: str) -> dict[str, Any]:
    """Return a sample HTTP API (payload 2.0) event with a new request id and the current time."""
    event = load_sample(relative)
    now = datetime.now(UTC)
    context = event["requestContext"]
    context["requestId"] = uuid.uuid4().hex[:16]
    context["time"] = now.strftime("%d/%b/%Y:%H:%M:%S +0000")
    context["timeEpoch"] = int(now.timestamp() * 1000)
    return event


@dataclass(frozen=True)
class SignIn:
    """A signed-in subscriber: the access token and the context the authorizer returned for it."""

    subscriber: Subscriber
    token: str
    context: dict[str, Any]


def authorizer_event(token: str) -> dict[str, Any]:
    """Return the sample authorizer request with the bearer token and a new request id."""
    event = fresh_http_event("authorizer/account_request.json")
    event["headers"]["authorization"] = f"Bearer {token}"
    event["identitySource"] = [f"Bearer {token}"]
    return event


def sign_in(context: ColdStartContext, subscriber: Subscriber) -> SignIn:
    """Sign the subscriber in and run the account authorizer on the token, in this process."""
    token = context.seeder.access_token(subscriber)
    allowed = context.runtime.invoke(ACCOUNT_AUTHORIZER_FUNCTION, authorizer_event(token))
    require(
        allowed.get("isAuthorized") is True,
        f"the account authorizer denied a new bench token: {allowed}",
    )
    return SignIn(subscriber, token, dict(allowed["context"]))


def signed_in_event(relative: str, signed_in: SignIn) -> dict[str, Any]:
    """Return an account route's sample event as API Gateway passes it after the authorizer."""
    event = fresh_http_event(relative)
    event["headers"]["authorization"] = f"Bearer {signed_in.token}"
    event["requestContext"]["authorizer"] = {"lambda": dict(signed_in.context)}
    return event


def sqs_event(body: str, source_arn: str) -> dict[str, Any]:
    """Return an SQS event with one record carrying body, in the shape of the sample event."""
    event = load_sample(SQS_SAMPLE_EVENT.relative_to(EVENTS).as_posix())
    record = event["Records"][0]
    now_ms = str(int(time.time() * 1000))
    record.update(
        {
            "messageId": str(uuid.uuid4()),
            "body": body,
            "md5OfBody": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
            "eventSourceARN": source_arn,
        }
    )
    record["attributes"].update(
        {"SentTimestamp": now_ms, "ApproximateFirstReceiveTimestamp": now_ms}
    )
    return {"Records": [record]}


def message_event(message: dict[str, Any], source_arn: str) -> dict[str, Any]:
    """Return the SQS event that Lambda builds from one received message."""
    event = sqs_event(message["Body"], source_arn)
    record = event["Records"][0]
    record["messageId"] = message["MessageId"]
    record["md5OfBody"] = message["MD5OfBody"]
    attributes = message.get("Attributes", {})
    for name in ("SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"):
        if name in attributes:
            record["attributes"][name] = attributes[name]
    return event


def require(condition: bool, message: str) -> None:
    """Raise BenchFailedError with `message` unless condition holds."""
    if not condition:
        raise BenchFailedError(message)
