"""First requests of the HTTP API functions: signup, sign-in, the account routes and webhooks."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode, urlsplit

from infra.bench.first_requests.base import (
    ColdStartContext,
    FirstRequest,
    SignIn,
    authorizer_event,
    expect_status,
    fresh_http_event,
    require,
    response_body,
    sign_in,
    signed_in_event,
)
from infra.bench.request_counts import (
    check_one_message_per_delivery,
    drain_stripe_events,
    stripe_events_queue_url,
)
from infra.bench.workload import (
    http_event,
    new_stripe_event_id,
    signup_event,
    stripe_delivery,
)

# Twilio's API version in status callbacks, as the Twilio emulator sends it.
TWILIO_API_VERSION = "2010-04-01"


class SignupRequest(FirstRequest):
    unit = "signup"
    logical_id = "SignupFunction"
    title = "Signup (`POST /v1/signups`)"
    request = "one `POST /v1/signups` event with a new mobile number"
    outcome = "return 202"
    session_baseline = True
    detailed = True

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        return signup_event(context.seeder.identities.new(), context.seeder.consents)

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        expect_status(self.unit, result, 202)


class SignInRequest(FirstRequest):
    unit = "sign_in"
    logical_id = "SignInFunction"
    title = "Sign-in (`POST /v1/sign-in`)"
    request = (
        "one `POST /v1/sign-in` event with a new mobile number. The function stores the "
        "sign-in, counts it against the code limits and queues the code job whether or not an "
        "account has the number, so a new number does the same work as a subscriber's"
    )
    outcome = "return 202"

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        mobile = context.seeder.identities.new().mobile
        return http_event("POST /v1/sign-in", "/v1/sign-in", {"mobile": mobile})

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        expect_status(self.unit, result, 202)
        require(
            response_body(result).get("status") == "code_sent",
            "the sign-in child's response has no status code_sent",
        )


class _SignedInRequest(FirstRequest):
    """A request on behalf of the shared subscriber, signed in just before the runs."""

    signed_in: SignIn | None = None

    def seed(self, context: ColdStartContext, count: int) -> None:
        # Access tokens live 15 minutes, so each function signs in again before its runs.
        self.signed_in = sign_in(context, context.shared_subscriber())

    def current(self) -> SignIn:
        require(self.signed_in is not None, f"{self.unit}: the subscriber is not signed in")
        assert self.signed_in is not None
        return self.signed_in


class AccountAuthorizerRequest(_SignedInRequest):
    unit = "account_authorizer"
    logical_id = "AccountAuthorizerFunction"
    title = "Account authorizer (Lambda REQUEST authorizer)"
    request = (
        "the authorizer request of `GET /v1/account` with the access token that the bench's "
        "subscriber got from `POST /v1/sign-in/{sign_in_id}/verify` just before the runs"
    )
    outcome = "allow the request with the subscriber's id in the context"

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        return authorizer_event(self.current().token)

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        response = result.get("response") or {}
        expected = self.current().subscriber.subscriber_id
        require(
            response.get("isAuthorized") is True
            and (response.get("context") or {}).get("subscriber_id") == expected,
            f"the account authorizer child did not allow the bench token: {response}",
        )


class AccountRequest(_SignedInRequest):
    unit = "account"
    logical_id = "AccountFunction"
    title = "Account (`GET /v1/account`)"
    request = (
        "one `GET /v1/account` event of the bench's paid subscriber, with the context that the "
        "account authorizer returned for a token from sign-in"
    )
    outcome = "return 200 with the subscriber's status `active`"

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        return signed_in_event("http/account.json", self.current())

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        expect_status(self.unit, result, 200)
        require(
            response_body(result).get("status") == "active",
            f"the account child did not show an active subscriber: {response_body(result)}",
        )


class AdminReviewsRequest(FirstRequest):
    unit = "admin_api"
    logical_id = "AdminApiFunction"
    title = "Admin API (`GET /v1/admin/reviews`)"
    request = (
        "the sample `GET /v1/admin/reviews?limit=50` of an analyst (IAM authorization, the "
        "AnalystRole), which reads the review queue and writes a `review.view` audit record"
    )
    outcome = "return 200"

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        return fresh_http_event("http/admin_reviews.json")

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        expect_status(self.unit, result, 200)


class TwilioStatusRequest(FirstRequest):
    unit = "twilio_webhooks"
    logical_id = "TwilioWebhooksFunction"
    title = "Twilio webhooks (`POST /v1/webhooks/twilio/status`)"
    request = (
        "one signed status callback `delivered` for the code SMS of a new signup. The bench "
        "pauses the Twilio emulator's queue while the signups' SMS are sent, so no callback of "
        "the emulator's own comes first, and builds each callback as the emulator does: the "
        "same form fields, the URL that the notifier gave Twilio, and the `X-Twilio-Signature` "
        "over both"
    )
    outcome = 'return 200 with the outcome "recorded"'
    must_not_load = ("stripe",)

    def __init__(self) -> None:
        self.callbacks: list[tuple[str, dict[str, str]]] = []

    def seed(self, context: ColdStartContext, count: int) -> None:
        from idsentry.services.notify import status_callback_url
        from idsentry.services.signup import signup_pk
        from idsentry.wiring import main_table

        service = context.service
        assert service.twilio is not None
        seeder = context.seeder
        service.twilio.pause()
        sent: list[tuple[str, str]] = []
        for _ in range(count):
            identity = seeder.identities.new()
            context.held_sms_numbers.add(identity.mobile)
            created = seeder.invoke("SignupFunction", signup_event(identity, seeder.consents), 202)
            signup_id = str(json.loads(created["body"])["signup_id"])
            signup = main_table().get(signup_pk(signup_id), "SIGNUP") or {}
            require(bool(signup.get("code_id")), "a bench signup stored no code id")
            sent.append((identity.mobile, str(signup["code_id"])))

        self.callbacks = []
        for mobile, code_id in sent:
            found = _wait_for_message(context, mobile)
            url = status_callback_url(service.public_base_url, f"code:{code_id}")
            params = {
                "AccountSid": service.twilio_account_sid,
                "ApiVersion": TWILIO_API_VERSION,
                "MessageSid": str(found["sid"]),
                "MessageStatus": "delivered",
                "SmsSid": str(found["sid"]),
                "SmsStatus": "delivered",
                "To": mobile,
                "MessagingServiceSid": service.twilio_messaging_service_sid,
            }
            if found.get("from"):
                params["From"] = str(found["from"])
            self.callbacks.append((url, params))

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        url, params = self.callbacks[index]
        return twilio_status_event(url, params, context.service.twilio_auth_token)

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        expect_status(self.unit, result, 200)
        require(
            response_body(result).get("outcome") == "recorded",
            f"the Twilio webhook child did not record the status: {response_body(result)}",
        )

    def cleanup(self, context: ColdStartContext) -> None:
        assert context.service.twilio is not None
        context.service.twilio.resume()
        context.held_sms_numbers.clear()


def _wait_for_message(context: ColdStartContext, mobile: str) -> dict[str, Any]:
    from infra.bench.seeding import wait_for

    assert context.service.twilio is not None
    twilio = context.service.twilio

    def message() -> dict[str, Any] | None:
        return next((item for item in twilio.messages() if item["to"] == mobile), None)

    found: dict[str, Any] = wait_for("the code SMS of a bench signup", message)
    return found


def twilio_status_event(url: str, params: dict[str, str], auth_token: str) -> dict[str, Any]:
    """Return the HTTP API event of a Twilio status callback to url, signed with auth_token."""
    from infra.local.emulators.twilio import compute_signature

    parts = urlsplit(url)
    body = urlencode(params).encode("ascii")
    event = fresh_http_event("http/twilio_status_callback.json")
    event["rawPath"] = parts.path
    event["rawQueryString"] = parts.query
    event["queryStringParameters"] = dict(
        pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair
    )
    event["headers"]["content-length"] = str(len(body))
    event["headers"]["x-twilio-signature"] = compute_signature(auth_token, url, params)
    event["headers"]["host"] = parts.netloc
    event["requestContext"]["http"]["path"] = parts.path
    event["requestContext"]["domainName"] = parts.hostname
    event["body"] = base64.b64encode(body).decode("ascii")
    event["isBase64Encoded"] = True
    return event


class StripeWebhookRequest(FirstRequest):
    unit = "webhook"
    logical_id = "StripeWebhookFunction"
    title = "Stripe webhook (`POST /v1/webhooks/stripe`)"
    request = (
        "one `POST /v1/webhooks/stripe` delivery of the sample `invoice.paid` event with a "
        "new `evt_bench…` id, signed with the local service's signing secret just before "
        "its process starts"
    )
    outcome = "return 200"
    detailed = True
    note = (
        "Each delivery's message goes to the Stripe events queue that the template defines, "
        "with its settings, because the child keeps `STRIPE_EVENTS_QUEUE_URL` from the "
        "template. The billing consumer would look up each made-up event id in the local "
        "Stripe server, fail on every receive and leave the message in the DLQ after the "
        "queue's maximum receive count. So the pollers stay paused until the bench has "
        "received and deleted those messages, and the bench checks that the queue held "
        "exactly one message per delivery, with that delivery's event id. A bench-only queue, "
        "set in the child's environment, would serve the cold-start runs too, but not the "
        "in-process request count below: all functions share the bench process's "
        "environment, so one function's queue URL cannot be changed there alone."
    )

    def __init__(self) -> None:
        self.event_ids: list[str] = []

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        event_id = new_stripe_event_id()
        self.event_ids.append(event_id)
        return stripe_delivery(event_id, context.service.stripe_webhook_secret)

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        expect_status(self.unit, result, 200)

    def cleanup(self, context: ColdStartContext) -> None:
        received = drain_stripe_events(
            context.client("sqs"), stripe_events_queue_url(context.service)
        )
        delivered, self.event_ids = self.event_ids, []
        check_one_message_per_delivery(delivered, received)


__all__ = [
    "AccountAuthorizerRequest",
    "AccountRequest",
    "AdminReviewsRequest",
    "SignInRequest",
    "SignupRequest",
    "StripeWebhookRequest",
    "TwilioStatusRequest",
]
