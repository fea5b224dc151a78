"""The Twilio webhook function against moto server: signatures, status order, error codes, replies."""

from __future__ import annotations

import base64
import itertools
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from twilio.request_validator import RequestValidator

from idsentry.adapters.table import MainTable
from idsentry.crypto import Pepper
from idsentry.ids import new_id
from idsentry.routes.twilio_routes import EMPTY_TWIML
from idsentry.services.exposures import watch_writes
from infra.local.service import LocalService

pytestmark = pytest.mark.integration

STATUS_PATH = "/v1/webhooks/twilio/status"
INBOUND_PATH = "/v1/webhooks/twilio/inbound"
FUNCTION = "TwilioWebhooksFunction"
SENDER = "+15005550006"


class Webhooks:
    """Builds signed API Gateway events for the Twilio routes and reads the table they change."""

    def __init__(self, service: LocalService) -> None:
        assert service.stack is not None
        self.service = service
        self.runtime = service.stack.runtime
        self.table = MainTable(
            self.runtime.environment["TABLE_NAME"], self.runtime.client("dynamodb")
        )
        self.pepper = Pepper.from_secret(service.pepper)

    def event(
        self,
        path: str,
        params: dict[str, str],
        *,
        query: str = "",
        signed_url: str | None = None,
        base64_body: bool = True,
        signature: str | None = None,
    ) -> dict[str, Any]:
        """Return a payload format 2.0 event as API Gateway delivers Twilio's form POST."""
        url = signed_url or f"{self.service.public_base_url}{path}" + (f"?{query}" if query else "")
        if signature is None:
            validator = RequestValidator(self.service.twilio_auth_token)
            signature = validator.compute_signature(url, params)
        body = urlencode(params)
        route_key = f"POST {path}"
        return {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": {
                "content-type": "application/x-www-form-urlencoded",
                "content-length": str(len(body.encode())),
                "x-twilio-signature": signature,
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "http": {
                    "method": "POST",
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "TwilioProxy/1.1",
                },
                "requestId": secrets.token_urlsafe(10),
                "routeKey": route_key,
                "stage": "$default",
            },
            "body": base64.b64encode(body.encode()).decode() if base64_body else body,
            "isBase64Encoded": base64_body,
        }

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.runtime.invoke(FUNCTION, event)
        return result

    def status(
        self, sid: str, status: str, *, error_code: str | None = None, to: str = "", query: str = ""
    ) -> dict[str, Any]:
        params = {
            "AccountSid": self.service.twilio_account_sid,
            "ApiVersion": "2010-04-01",
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "From": SENDER,
            "To": to or "+14155550100",
        }
        if error_code:
            params["ErrorCode"] = error_code
        return self.invoke(self.event(STATUS_PATH, params, query=query))

    def inbound(self, from_number: str, body: str) -> dict[str, Any]:
        sid = new_sid()
        params = {
            "AccountSid": self.service.twilio_account_sid,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": from_number,
            "MessageSid": sid,
            "MessagingServiceSid": self.service.twilio_messaging_service_sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": SENDER,
        }
        return self.invoke(self.event(INBOUND_PATH, params))

    def add_subscriber(self, mobile: str) -> str:
        """Store a subscriber's mobile identifier and watch items as verification writes them."""
        subscriber_id = new_id("sbr")
        fingerprints = self.pepper.fingerprints("mobile", mobile)
        self.table.put(
            {
                "pk": f"SUB#{subscriber_id}",
                "sk": "IDENT#mobile",
                "kind": "mobile",
                "fingerprints": {fp.version: fp.value for fp in fingerprints},
            }
        )
        self.table.transact(watch_writes("mobile", fingerprints, subscriber_id, sole=False))
        return subscriber_id

    def add_sent_sms(self, subject_id: str, *, linked: bool = True) -> tuple[str, str]:
        """Store the ledger record of an SMS and, when `linked`, its SMS item; return sid and key."""
        sid = new_sid()
        message_key = f"alert:{new_id('alt')}"
        self.table.put(
            {
                "pk": f"NOTIFY#{message_key}",
                "sk": "sms",
                "state": "sent",
                "subject_id": subject_id,
                "provider_id": sid,
            }
        )
        if linked:
            self.table.put(
                {
                    "pk": f"SMS#{sid}",
                    "sk": "SMS",
                    "ledger_pk": f"NOTIFY#{message_key}",
                    "ledger_sk": "sms",
                }
            )
        return sid, message_key

    def sms_state(self, subscriber_id: str) -> str | None:
        item = self.table.get(f"SUB#{subscriber_id}", "PREFS")
        return None if item is None else item.get("sms_state")

    def delivery(self, sid: str) -> dict[str, Any] | None:
        return self.table.get(f"SMS#{sid}", "SMS")


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def webhooks(local_service: LocalService) -> Webhooks:
    return Webhooks(local_service)


@pytest.fixture(scope="module")
def numbers() -> Iterator[str]:
    # 555-01XX numbers are reserved for fiction and pass libphonenumber's checks.
    return (f"+141555501{index:02d}" for index in range(100))


@pytest.fixture
def mobile(numbers: Iterator[str]) -> str:
    """A number that no earlier test of this module used."""
    return next(numbers)


# ---------------------------------------------------------------------------- signatures


def test_signed_base64_body_accepted(webhooks: Webhooks) -> None:
    sid = new_sid()

    response = webhooks.status(sid, "sent")

    assert response["statusCode"] == 200
    assert (webhooks.delivery(sid) or {}).get("delivery") == "sent"


def test_signed_plain_body_accepted(webhooks: Webhooks) -> None:
    sid = new_sid()
    event = webhooks.event(
        STATUS_PATH, {"MessageSid": sid, "MessageStatus": "queued"}, base64_body=False
    )

    assert webhooks.invoke(event)["statusCode"] == 200


def test_other_scheme_rejected(webhooks: Webhooks) -> None:
    sid = new_sid()
    https_url = webhooks.service.public_base_url.replace("http://", "https://") + STATUS_PATH
    event = webhooks.event(
        STATUS_PATH, {"MessageSid": sid, "MessageStatus": "sent"}, signed_url=https_url
    )

    response = webhooks.invoke(event)

    assert response["statusCode"] == 403
    assert webhooks.delivery(sid) is None


@pytest.mark.parametrize("sent_query", ["c=sms&m=alert%3Aalt_1", "m=alert:alt_1&c=sms"])
def test_query_bytes_differ_rejected(webhooks: Webhooks, sent_query: str) -> None:
    sid = new_sid()
    params = {"MessageSid": sid, "MessageStatus": "sent"}
    signed_over = f"{webhooks.service.public_base_url}{STATUS_PATH}?m=alert%3Aalt_1&c=sms"
    event = webhooks.event(STATUS_PATH, params, query=sent_query, signed_url=signed_over)

    assert webhooks.invoke(event)["statusCode"] == 403


def test_missing_signature_rejected(webhooks: Webhooks) -> None:
    event = webhooks.event(
        STATUS_PATH, {"MessageSid": new_sid(), "MessageStatus": "sent"}, signature=""
    )

    assert webhooks.invoke(event)["statusCode"] == 403


def test_tampered_body_rejected(webhooks: Webhooks) -> None:
    sid = new_sid()
    event = webhooks.event(STATUS_PATH, {"MessageSid": sid, "MessageStatus": "sent"})
    forged = urlencode({"MessageSid": sid, "MessageStatus": "delivered"})
    event["body"] = base64.b64encode(forged.encode()).decode()

    assert webhooks.invoke(event)["statusCode"] == 403


def test_invalid_message_sid_named(webhooks: Webhooks) -> None:
    response = webhooks.status("SM123", "sent")

    assert response["statusCode"] == 400
    assert '"field":"MessageSid"' in response["body"]


def test_missing_status_named(webhooks: Webhooks) -> None:
    response = webhooks.invoke(webhooks.event(STATUS_PATH, {"MessageSid": new_sid()}))

    assert response["statusCode"] == 400
    assert '"field":"MessageStatus"' in response["body"]


def test_body_not_base64_rejected(webhooks: Webhooks) -> None:
    event = webhooks.event(STATUS_PATH, {"MessageSid": new_sid(), "MessageStatus": "sent"})
    event["body"] = "not base64!"

    assert webhooks.invoke(event)["statusCode"] == 400


# ---------------------------------------------------------------------------- status order


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["queued", "sending", "sent", "delivered"]))
)
def test_any_order_ends_delivered(webhooks: Webhooks, order: tuple[str, ...]) -> None:
    sid = new_sid()

    for status in order:
        assert webhooks.status(sid, status)["statusCode"] == 200

    item = webhooks.delivery(sid) or {}
    assert item.get("delivery") == "delivered"


def test_late_sent_is_stale(webhooks: Webhooks) -> None:
    sid = new_sid()
    webhooks.status(sid, "delivered")
    before = webhooks.delivery(sid)

    response = webhooks.status(sid, "sent")

    assert response["body"] == '{"outcome":"stale"}'
    assert webhooks.delivery(sid) == before


def test_repeated_callback_is_noop(webhooks: Webhooks) -> None:
    sid = new_sid()
    first = webhooks.status(sid, "delivered")
    stored = webhooks.delivery(sid)

    repeated = webhooks.status(sid, "delivered")

    assert first["body"] == '{"outcome":"recorded"}'
    assert repeated["body"] == '{"outcome":"stale"}'
    assert webhooks.delivery(sid) == stored


def test_read_after_delivered_recorded(webhooks: Webhooks) -> None:
    sid = new_sid()
    webhooks.status(sid, "read")
    webhooks.status(sid, "delivered")

    assert (webhooks.delivery(sid) or {}).get("delivery") == "read"


def test_read_after_failure_stale(webhooks: Webhooks) -> None:
    sid = new_sid()
    webhooks.status(sid, "undelivered", error_code="30003")

    response = webhooks.status(sid, "read")

    assert response["body"] == '{"outcome":"stale"}'
    assert (webhooks.delivery(sid) or {}).get("delivery") == "undelivered"


@pytest.mark.parametrize("final", ["failed", "undelivered", "canceled"])
def test_failure_not_replaced_by_delivered(webhooks: Webhooks, final: str) -> None:
    sid = new_sid()
    webhooks.status(sid, final, error_code="30008")

    webhooks.status(sid, "delivered")

    assert (webhooks.delivery(sid) or {}).get("delivery") == final


def test_unknown_status_ignored(webhooks: Webhooks) -> None:
    sid = new_sid()

    response = webhooks.status(sid, "partially_delivered")

    assert response["body"] == '{"outcome":"ignored"}'
    assert webhooks.delivery(sid) is None


# ---------------------------------------------------------------------------- error codes


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("21610", "opted_out"),
        ("21211", "invalid"),
        ("21614", "invalid"),
        ("30005", "invalid"),
        ("30006", "invalid"),
    ],
)
def test_failed_code_marks_number(webhooks: Webhooks, mobile: str, code: str, state: str) -> None:
    subscriber_id = webhooks.add_subscriber(mobile)
    sid, _ = webhooks.add_sent_sms(subscriber_id)

    webhooks.status(sid, "failed", error_code=code, to=mobile)

    assert webhooks.sms_state(subscriber_id) == state


@pytest.mark.parametrize("code", ["30001", "30003", "30004", "30007", "30036"])
def test_message_code_recorded_only(webhooks: Webhooks, mobile: str, code: str) -> None:
    subscriber_id = webhooks.add_subscriber(mobile)
    sid, _ = webhooks.add_sent_sms(subscriber_id)

    webhooks.status(sid, "undelivered", error_code=code, to=mobile)

    assert webhooks.sms_state(subscriber_id) is None
    assert (webhooks.delivery(sid) or {}).get("delivery_error") == code


def test_failed_code_for_signup_ignored(webhooks: Webhooks, mobile: str) -> None:
    signup_id = new_id("sgn")
    sid, _ = webhooks.add_sent_sms(signup_id)

    response = webhooks.status(sid, "failed", error_code="21610", to=mobile)

    assert response["body"] == '{"outcome":"recorded"}'
    assert webhooks.table.get(f"SUB#{signup_id}", "PREFS") is None


def test_failed_code_for_previous_number_ignored(webhooks: Webhooks, mobile: str) -> None:
    subscriber_id = webhooks.add_subscriber(mobile)
    sid, _ = webhooks.add_sent_sms(subscriber_id)

    webhooks.status(sid, "failed", error_code="21211", to="+14155559999")

    assert webhooks.sms_state(subscriber_id) is None


def test_failed_code_found_through_query(webhooks: Webhooks, mobile: str) -> None:
    # The callback arrived before the notifier linked the SMS item to its ledger record.
    subscriber_id = webhooks.add_subscriber(mobile)
    sid, message_key = webhooks.add_sent_sms(subscriber_id, linked=False)
    query = f"m={quote(message_key, safe='')}&c=sms"

    webhooks.status(sid, "failed", error_code="21610", to=mobile, query=query)

    assert webhooks.sms_state(subscriber_id) == "opted_out"


def test_query_links_pending_record(webhooks: Webhooks) -> None:
    message_key = f"alert:{new_id('alt')}"
    webhooks.table.put(
        {
            "pk": f"NOTIFY#{message_key}",
            "sk": "sms",
            "state": "pending",
            "subject_id": new_id("sbr"),
        }
    )
    sid = new_sid()

    webhooks.status(sid, "sent", query=f"m={quote(message_key, safe='')}&c=sms")

    record = webhooks.table.get(f"NOTIFY#{message_key}", "sms") or {}
    assert record.get("provider_id") == sid
    assert record.get("state") == "pending"


def test_repeated_failure_after_start_stale(webhooks: Webhooks, mobile: str) -> None:
    subscriber_id = webhooks.add_subscriber(mobile)
    sid, _ = webhooks.add_sent_sms(subscriber_id)
    webhooks.status(sid, "failed", error_code="21610", to=mobile)
    webhooks.inbound(mobile, "START")

    repeated = webhooks.status(sid, "failed", error_code="21610", to=mobile)

    assert repeated["body"] == '{"outcome":"stale"}'
    assert webhooks.sms_state(subscriber_id) == "ok"


# ---------------------------------------------------------------------------- inbound replies


@pytest.mark.parametrize(
    "word", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "TD", "退订", " stop "]
)
def test_opt_out_word(webhooks: Webhooks, mobile: str, word: str) -> None:
    subscriber_id = webhooks.add_subscriber(mobile)

    response = webhooks.inbound(mobile, word)

    assert response["statusCode"] == 200
    assert webhooks.sms_state(subscriber_id) == "opted_out"


def test_reply_is_empty_twiml(webhooks: Webhooks, mobile: str) -> None:
    response = webhooks.inbound(mobile, "STOP")

    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("text/xml")
    assert response["body"] == EMPTY_TWIML


def test_opt_out_every_holder(webhooks: Webhooks, mobile: str) -> None:
    first = webhooks.add_subscriber(mobile)
    second = webhooks.add_subscriber(mobile)

    webhooks.inbound(mobile, "STOP")

    assert webhooks.sms_state(first) == "opted_out"
    assert webhooks.sms_state(second) == "opted_out"


def test_start_opts_back_in(webhooks: Webhooks, mobile: str) -> None:
    subscriber_id = webhooks.add_subscriber(mobile)
    webhooks.inbound(mobile, "STOP")

    webhooks.inbound(mobile, "start")

    assert webhooks.sms_state(subscriber_id) == "ok"


def test_start_keeps_invalid(webhooks: Webhooks, mobile: str) -> None:
    subscriber_id = webhooks.add_subscriber(mobile)
    sid, _ = webhooks.add_sent_sms(subscriber_id)
    webhooks.status(sid, "failed", error_code="30005", to=mobile)

    webhooks.inbound(mobile, "START")

    assert webhooks.sms_state(subscriber_id) == "invalid"


def test_start_without_opt_out_writes_nothing(webhooks: Webhooks, mobile: str) -> None:
    subscriber_id = webhooks.add_subscriber(mobile)

    webhooks.inbound(mobile, "YES")

    assert webhooks.table.get(f"SUB#{subscriber_id}", "PREFS") is None


def test_unknown_word_ignored(webhooks: Webhooks, mobile: str) -> None:
    subscriber_id = webhooks.add_subscriber(mobile)

    response = webhooks.inbound(mobile, "please stop")

    assert response["body"] == EMPTY_TWIML
    assert webhooks.table.get(f"SUB#{subscriber_id}", "PREFS") is None


def test_number_without_subscriber(webhooks: Webhooks, mobile: str) -> None:
    response = webhooks.inbound(mobile, "STOP")

    assert response["statusCode"] == 200
    assert response["body"] == EMPTY_TWIML


def test_previous_holder_not_opted_out(webhooks: Webhooks, mobile: str) -> None:
    subscriber_id = webhooks.add_subscriber(mobile)
    # The subscriber moved to another number; the old watch item still names them.
    other = webhooks.pepper.fingerprints("mobile", "+14155559998")
    webhooks.table.put(
        {
            "pk": f"SUB#{subscriber_id}",
            "sk": "IDENT#mobile",
            "kind": "mobile",
            "fingerprints": {fp.version: fp.value for fp in other},
        }
    )

    webhooks.inbound(mobile, "STOP")

    assert webhooks.sms_state(subscriber_id) is None


def test_inbound_signature_checked(webhooks: Webhooks, mobile: str) -> None:
    subscriber_id = webhooks.add_subscriber(mobile)
    params = {"MessageSid": new_sid(), "From": mobile, "Body": "STOP"}
    event = webhooks.event(INBOUND_PATH, params, signature="bm90IGEgc2lnbmF0dXJl")

    response = webhooks.invoke(event)

    assert response["statusCode"] == 403
    assert webhooks.sms_state(subscriber_id) is None
