"""The Stripe webhook function against moto: only verified deliveries reach the queue."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from idsentry.services.stripe_signature import sign
from infra.local.service import LocalService

pytestmark = pytest.mark.integration

ROUTE = "POST /v1/webhooks/stripe"


def _event(body: bytes, headers: dict[str, str], *, encode: bool = False) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": ROUTE,
        "rawPath": "/v1/webhooks/stripe",
        "rawQueryString": "",
        "headers": {"content-type": "application/json; charset=utf-8", **headers},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {
                "method": "POST",
                "path": "/v1/webhooks/stripe",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "Stripe/1.0",
            },
            "requestId": "req-1",
            "routeKey": ROUTE,
            "stage": "$default",
            "time": "04/Dec/2026:20:00:00 +0000",
            "timeEpoch": 1796414400000,
        },
        "body": base64.b64encode(body).decode() if encode else body.decode(),
        "isBase64Encoded": encode,
    }


def _payload(event_id: str, livemode: bool = False) -> bytes:
    # Stripe pretty-prints its payloads; the signature covers these exact bytes.
    return json.dumps(
        {"id": event_id, "object": "event", "livemode": livemode, "type": "invoice.paid"}, indent=2
    ).encode()


def _drain(service: LocalService) -> list[dict[str, Any]]:
    assert service.stack is not None
    sqs = service.stack.runtime.client("sqs")
    url = service.stack.runtime.environment["STRIPE_EVENTS_QUEUE_URL"]
    bodies = []
    while True:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = response.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _invoke(service: LocalService, event: dict[str, Any]) -> dict[str, Any]:
    assert service.stack is not None
    result: dict[str, Any] = service.stack.runtime.invoke("StripeWebhookFunction", event)
    return result


@pytest.fixture
def drained(local_service: LocalService) -> LocalService:
    _drain(local_service)
    return local_service


def test_signed_delivery_enqueues_event_id(drained: LocalService) -> None:
    body = _payload("evt_signed_1")
    header = sign(body, drained.stripe_webhook_secret, int(time.time()))

    response = _invoke(drained, _event(body, {"stripe-signature": header}))

    assert response["statusCode"] == 200
    assert _drain(drained) == [
        {"schema_version": 1, "kind": "stripe_event", "event_id": "evt_signed_1"}
    ]


def test_base64_body_accepted(drained: LocalService) -> None:
    body = _payload("evt_base64_1")
    header = sign(body, drained.stripe_webhook_secret, int(time.time()))

    response = _invoke(drained, _event(body, {"stripe-signature": header}, encode=True))

    assert response["statusCode"] == 200
    assert [job["event_id"] for job in _drain(drained)] == ["evt_base64_1"]


def test_duplicate_delivery_enqueues_twice(drained: LocalService) -> None:
    body = _payload("evt_twice_1")
    header = sign(body, drained.stripe_webhook_secret, int(time.time()))

    first = _invoke(drained, _event(body, {"stripe-signature": header}))
    second = _invoke(drained, _event(body, {"stripe-signature": header}))

    assert first["statusCode"] == second["statusCode"] == 200
    assert [job["event_id"] for job in _drain(drained)] == ["evt_twice_1", "evt_twice_1"]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("reserialised", "signature.mismatch"),
        ("stale", "signature.timestamp_out_of_range"),
        ("future", "signature.timestamp_out_of_range"),
        ("missing", "signature.missing"),
        ("malformed", "signature.malformed"),
        ("wrong_secret", "signature.mismatch"),
        ("live_event", "event.wrong_mode_or_id"),
        ("not_an_event", "event.malformed"),
    ],
)
def test_rejected_delivery_writes_nothing(drained: LocalService, case: str, code: str) -> None:
    now = int(time.time())
    secret = drained.stripe_webhook_secret
    body = _payload("evt_rejected_1")
    headers = {"stripe-signature": sign(body, secret, now)}
    if case == "reserialised":
        body = json.dumps(json.loads(body)).encode()
    elif case == "stale":
        headers["stripe-signature"] = sign(body, secret, now - 301)
    elif case == "future":
        headers["stripe-signature"] = sign(body, secret, now + 301)
    elif case == "missing":
        headers = {}
    elif case == "malformed":
        headers["stripe-signature"] = "v1=deadbeef"
    elif case == "wrong_secret":
        headers["stripe-signature"] = sign(body, "whsec_someone_else", now)
    elif case == "live_event":
        body = _payload("evt_live_1", livemode=True)
        headers["stripe-signature"] = sign(body, secret, now)
    elif case == "not_an_event":
        body = b'{"object": "event"}'
        headers["stripe-signature"] = sign(body, secret, now)

    response = _invoke(drained, _event(body, headers))

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == code
    assert _drain(drained) == []
