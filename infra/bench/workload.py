"""Synthetic requests for the bench: signups, Stripe deliveries and their HTTP API (2.0) events."""

from __future__ import annotations

import copy
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.local.stack import REPOSITORY_ROOT

SAMPLE_EVENT = REPOSITORY_ROOT / "events" / "http" / "signup_default_stage.json"
STRIPE_SAMPLE_EVENT = REPOSITORY_ROOT / "events" / "http" / "stripe_webhook.json"
SIGNUP_ROUTE = "POST /v1/signups"
VERIFY_ROUTE = "POST /v1/signups/{signup_id}/verify"
STRIPE_WEBHOOK_ROUTE = "POST /v1/webhooks/stripe"
# GB 11643-1999: weights of the first 17 digits and the check character for each sum mod 11.
CHECK_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"
# Beijing Chaoyang district; any listed region code would do.
_REGION_CODE = "110105"
# 203.0.113.0/24 is TEST-NET-3 (RFC 5737), reserved for documentation and tests.
_SOURCE_IP = "203.0.113.10"


@dataclass(frozen=True)
class SyntheticIdentity:
    """A made-up person whose identifiers pass the signup validation."""

    name: str
    id_number: str
    mobile: str
    email: str


def _check_character(first_17_digits: str) -> str:
    total = sum(
        int(digit) * weight for digit, weight in zip(first_17_digits, CHECK_WEIGHTS, strict=True)
    )
    return CHECK_CHARACTERS[total % 11]


class IdentityFactory:
    """Make identities with a new mobile number and ID number each time.

    The numbers start at a random offset, so two bench runs against one moto state are
    unlikely to reuse a number, and never repeat within one factory.
    """

    def __init__(self) -> None:
        self._next = secrets.randbelow(10**7)

    def new(self) -> SyntheticIdentity:
        """Return the next identity: a +86 138 mobile and an ID number born in the 1990s."""
        serial = self._next
        self._next = (self._next + 1) % 10**8

        birth = f"199{serial % 10}{1 + serial % 12:02d}{1 + serial % 28:02d}"
        first_17 = f"{_REGION_CODE}{birth}{serial % 1000:03d}"
        return SyntheticIdentity(
            name="测试用户",
            id_number=first_17 + _check_character(first_17),
            mobile=f"+86138{serial:08d}",
            email=f"bench{serial}@example.com",
        )


def signup_body(identity: SyntheticIdentity, consent_versions: dict[str, str]) -> dict[str, Any]:
    """Return a valid POST /v1/signups body that accepts every consent at its version."""
    return {
        "name": identity.name,
        "id_number": identity.id_number,
        "mobile": identity.mobile,
        "email": identity.email,
        "plan": "monthly",
        "consents": {
            kind: {"accepted": True, "version": version}
            for kind, version in consent_versions.items()
        },
    }


def http_event(
    route_key: str,
    path: str,
    body: dict[str, Any],
    path_parameters: dict[str, str] | None = None,
    sample: Path = SAMPLE_EVENT,
) -> dict[str, Any]:
    """Return an API Gateway payload 2.0 event for route_key, built from the sample event."""
    event: dict[str, Any] = copy.deepcopy(json.loads(sample.read_text(encoding="utf-8")))
    now = datetime.now(UTC)
    text = json.dumps(body, ensure_ascii=False)

    event["routeKey"] = route_key
    event["rawPath"] = path
    event["headers"]["content-length"] = str(len(text.encode("utf-8")))
    event["headers"]["x-forwarded-for"] = _SOURCE_IP
    context = event["requestContext"]
    context["http"]["path"] = path
    context["http"]["sourceIp"] = _SOURCE_IP
    context["requestId"] = uuid.uuid4().hex[:16]
    context["routeKey"] = route_key
    context["time"] = now.strftime("%d/%b/%Y:%H:%M:%S +0000")
    context["timeEpoch"] = int(now.timestamp() * 1000)
    event["body"] = text
    event["isBase64Encoded"] = False
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    else:
        event.pop("pathParameters", None)
    return event


def signup_event(identity: SyntheticIdentity, consent_versions: dict[str, str]) -> dict[str, Any]:
    """Return the POST /v1/signups event of identity."""
    return http_event(SIGNUP_ROUTE, "/v1/signups", signup_body(identity, consent_versions))


def verify_event(signup_id: str, code: str) -> dict[str, Any]:
    """Return the POST /v1/signups/{signup_id}/verify event with code."""
    return http_event(
        VERIFY_ROUTE,
        f"/v1/signups/{signup_id}/verify",
        {"code": code},
        path_parameters={"signup_id": signup_id},
    )


def new_stripe_event_id() -> str:
    """Return a new Stripe event id for one bench delivery: `evt_bench` and 24 hex digits."""
    return "evt_bench" + secrets.token_hex(12)


def stripe_delivery(event_id: str, signing_secret: str) -> dict[str, Any]:
    """Return a POST /v1/webhooks/stripe event for the sample `invoice.paid` event, signed now.

    The delivery carries event_id and a Stripe-Signature header over the exact body, timestamped
    with the current time. The function rejects a timestamp more than 300 s away, so build the
    event just before it is served.
    """
    from idsentry.services.stripe_signature import sign

    sample = json.loads(STRIPE_SAMPLE_EVENT.read_text(encoding="utf-8"))
    body: dict[str, Any] = json.loads(sample["body"])
    timestamp = int(time.time())
    body["id"] = event_id
    body["created"] = timestamp

    event = http_event(
        STRIPE_WEBHOOK_ROUTE, "/v1/webhooks/stripe", body, sample=STRIPE_SAMPLE_EVENT
    )
    event["headers"]["stripe-signature"] = sign(
        event["body"].encode("utf-8"), signing_secret, timestamp
    )
    return event
