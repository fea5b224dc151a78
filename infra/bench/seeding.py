"""State that a cold-start first request needs, made through the product's own paths.

Subscribers sign up, verify their code, pay at the Stripe shim's Checkout page and open the
e-mail confirmation link, as the demo's subscribers do. The handlers run in the bench process
through the local runtime, and the queue pollers deliver the code SMS, the confirmation
e-mail and the Stripe events, so every step needs the pollers running (`LocalService(
background=True)`). `take_messages` is the exception: it receives a queue's messages itself,
so the pollers must be stopped while it runs.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.bench.request_counts import BenchFailedError
from infra.bench.workload import (
    IdentityFactory,
    SyntheticIdentity,
    http_event,
    signup_event,
    verify_event,
)
from infra.local.provision import check_loopback
from infra.local.service import LocalService

SIGNUP_FUNCTION = "SignupFunction"
SIGN_IN_FUNCTION = "SignInFunction"
CODE_PATTERN = re.compile(r"\b(\d{6})\b")
CONFIRMATION_LINK = re.compile(r"http://127\.0\.0\.1:\d+/v1/email-confirmations/[A-Za-z0-9_.~-]+")
WAIT_DEADLINE_S = 60.0
POLL_INTERVAL_S = 0.05
SQS_MAX_RECEIVE = 10
RESEND_ATTEMPTS = 5


@dataclass(frozen=True)
class Subscriber:
    """A subscriber made by the bench: who they are and their account id."""

    identity: SyntheticIdentity
    subscriber_id: str


def wait_for(description: str, read: Callable[[], Any], deadline_s: float = WAIT_DEADLINE_S) -> Any:
    """Call `read` until it returns a truthy value and return that value.

    Raises BenchFailedError after `deadline_s` seconds, naming the `description` of the event.
    """
    give_up = time.monotonic() + deadline_s
    while True:
        value = read()
        if value:
            return value
        if time.monotonic() > give_up:
            raise BenchFailedError(f"{description} did not happen within {deadline_s:.0f} s")
        time.sleep(POLL_INTERVAL_S)


class Seeder:
    """Make subscribers, sign-ins and queue messages against a started LocalService."""

    def __init__(self, service: LocalService, identities: IdentityFactory | None = None) -> None:
        if service.stack is None:
            raise BenchFailedError("the local service is not started")
        self.service = service
        self.runtime = service.stack.runtime
        self.identities = identities or IdentityFactory()
        self._consents: dict[str, str] | None = None
        self._clients: dict[str, Any] = {}

    def client(self, service_name: str) -> Any:
        """Return a cached client of the bench process for service_name."""
        if service_name not in self._clients:
            self._clients[service_name] = self.runtime.client(service_name)
        return self._clients[service_name]

    @property
    def consents(self) -> dict[str, str]:
        """Return every consent kind at its current version."""
        if self._consents is None:
            from idsentry.consents import CURRENT_VERSIONS

            self._consents = {str(kind): version for kind, version in CURRENT_VERSIONS.items()}
        return self._consents

    def invoke(
        self, function_logical_id: str, event: dict[str, Any], expected_status: int
    ) -> dict[str, Any]:
        """Invoke an HTTP API function in this process; raise unless it returned the status."""
        response: dict[str, Any] = self.runtime.invoke(function_logical_id, event)
        if response.get("statusCode") != expected_status:
            raise BenchFailedError(
                f"{event.get('routeKey')} returned {response.get('statusCode')}, expected "
                f"{expected_status}: {response.get('body')}"
            )
        return response

    def sms_count(self, mobile: str) -> int:
        """Return how many SMS the Twilio emulator has accepted for mobile."""
        assert self.service.twilio is not None
        return sum(1 for message in self.service.twilio.messages() if message["to"] == mobile)

    def wait_for_code(self, mobile: str, sent_before: int) -> str:
        """Return the code of the SMS to mobile after the first `sent_before`, waiting for it."""
        assert self.service.twilio is not None
        twilio = self.service.twilio

        def latest_code() -> str | None:
            messages = [message for message in twilio.messages() if message["to"] == mobile]
            if len(messages) <= sent_before:
                return None
            match = CODE_PATTERN.search(str(messages[sent_before]["body"]))
            if match is None:
                raise BenchFailedError("a code SMS of a bench subscriber has no 6-digit code")
            return match.group(1)

        code: str = wait_for("a code SMS to a bench number", latest_code)
        return code

    def verified_subscriber(self) -> tuple[Subscriber, dict[str, Any]]:
        """Sign a new identity up and verify its code; return it and the verify response body.

        The subscriber is `pending_payment`; the body's `next_step` names the Checkout URL.
        """
        assert self.service.realname is not None
        identity = self.identities.new()
        self.service.realname.add_identity(identity.name, identity.id_number, identity.mobile)

        sent_before = self.sms_count(identity.mobile)
        created = self.invoke(SIGNUP_FUNCTION, signup_event(identity, self.consents), 202)
        signup_id = str(json.loads(created["body"])["signup_id"])
        code = self.wait_for_code(identity.mobile, sent_before)

        verified = self.invoke(SIGNUP_FUNCTION, verify_event(signup_id, code), 200)
        body: dict[str, Any] = json.loads(verified["body"])
        return Subscriber(identity, str(body["subscriber_id"])), body

    def pay(self, verified: dict[str, Any]) -> None:
        """Pay the verified signup's Checkout Session with the test Visa card."""
        next_step = verified.get("next_step") or {}
        if not next_step.get("available") or not next_step.get("checkout_url"):
            raise BenchFailedError("the verified bench signup has no Checkout URL to pay")
        request = urllib.request.Request(  # noqa: S310 (loopback URL checked here)
            check_loopback(str(next_step["checkout_url"])) + "/pay",
            data=b"payment_method=pm_card_visa",
            headers={"Accept": "application/json"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            if response.status != 200:
                raise BenchFailedError(f"paying the Checkout Session returned {response.status}")

    def profile(self, subscriber_id: str) -> dict[str, Any] | None:
        """Return the subscriber's profile item, or None."""
        from idsentry.wiring import main_table

        item: dict[str, Any] | None = main_table().get(f"SUB#{subscriber_id}", "PROFILE")
        return item

    def wait_until_monitored(self, subscriber: Subscriber) -> None:
        """Wait until the billing consumer has applied the payment: active and monitored."""

        def monitored() -> bool:
            profile = self.profile(subscriber.subscriber_id) or {}
            return profile.get("status") == "active" and bool(profile.get("monitored"))

        wait_for("a paid bench subscriber becoming active", monitored)

    def confirm_email(self, subscriber: Subscriber) -> None:
        """Open the link of the subscriber's confirmation e-mail, waiting for the e-mail."""

        def link() -> str | None:
            for email in reversed(self.service.sent_emails()):
                if subscriber.identity.email not in email["to"]:
                    continue
                found = CONFIRMATION_LINK.search(email.get("body") or "")
                if found:
                    return found.group(0)
            return None

        url: str = wait_for("the confirmation e-mail of a bench subscriber", link)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(check_loopback(url), timeout=30) as response:
            if response.status != 200:
                raise BenchFailedError(f"the e-mail confirmation link returned {response.status}")

        def confirmed() -> bool:
            profile = self.profile(subscriber.subscriber_id) or {}
            return bool(profile.get("email_confirmed_at"))

        wait_for("a bench subscriber's e-mail address becoming confirmed", confirmed)

    def paid_subscriber(self) -> Subscriber:
        """Return a new subscriber who has paid (active, monitored) and confirmed the e-mail."""
        subscriber, verified = self.verified_subscriber()
        self.pay(verified)
        self.wait_until_monitored(subscriber)
        self.confirm_email(subscriber)
        return subscriber

    def access_token(self, subscriber: Subscriber) -> str:
        """Sign the subscriber in with a code by SMS and return the access token."""
        mobile = subscriber.identity.mobile
        sent_before = self.sms_count(mobile)
        request = http_event("POST /v1/sign-in", "/v1/sign-in", {"mobile": mobile})
        for _ in range(RESEND_ATTEMPTS):
            created: dict[str, Any] = self.runtime.invoke(SIGN_IN_FUNCTION, request)
            # The bench's resend interval is one second; the signup's code may be younger.
            if created.get("statusCode") != 429:
                break
            time.sleep(1)
        if created.get("statusCode") != 202:
            raise BenchFailedError(
                f"POST /v1/sign-in returned {created.get('statusCode')}, expected 202: "
                f"{created.get('body')}"
            )
        sign_in_id = str(json.loads(created["body"])["sign_in_id"])
        code = self.wait_for_code(mobile, sent_before)
        verified = self.invoke(
            SIGN_IN_FUNCTION,
            http_event(
                "POST /v1/sign-in/{sign_in_id}/verify",
                f"/v1/sign-in/{sign_in_id}/verify",
                {"code": code},
                path_parameters={"sign_in_id": sign_in_id},
            ),
            200,
        )
        return str(json.loads(verified["body"])["access_token"])

    def queue_url(self, function_logical_id: str) -> str:
        """Return the URL of the queue that the template maps to the function."""
        for mapping in self.runtime.mappings:
            if mapping.function_logical_id == function_logical_id:
                return mapping.queue_url
        raise BenchFailedError(f"the template maps no queue to {function_logical_id}")

    def queue_arn(self, function_logical_id: str) -> str:
        """Return the ARN of the queue that the template maps to the function."""
        for mapping in self.runtime.mappings:
            if mapping.function_logical_id == function_logical_id:
                return mapping.event_source_arn
        raise BenchFailedError(f"the template maps no queue to {function_logical_id}")

    def take_messages(
        self, queue_url: str, count: int, deadline_s: float = WAIT_DEADLINE_S
    ) -> list[dict[str, Any]]:
        """Receive and delete `count` messages of the queue and return them, oldest first.

        Call it only while the queue pollers are stopped, or a consumer receives some first.
        Raises BenchFailedError when fewer arrive within `deadline_s` seconds.
        """
        sqs = self.client("sqs")
        received: list[dict[str, Any]] = []
        give_up = time.monotonic() + deadline_s
        while len(received) < count:
            response = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(SQS_MAX_RECEIVE, count - len(received)),
                WaitTimeSeconds=1,
                AttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            for message in messages:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            received.extend(messages)
            if len(received) < count and time.monotonic() > give_up:
                raise BenchFailedError(
                    f"{len(received)} of {count} expected messages reached {queue_url.rsplit('/', 1)[1]} "
                    f"within {deadline_s:.0f} s"
                )
        return sorted(received, key=lambda message: int(message["Attributes"]["SentTimestamp"]))

    def queued(self, queue_url: str) -> int:
        """Return the approximate number of messages in the queue, visible or in flight."""
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(count) for count in attributes.values())
