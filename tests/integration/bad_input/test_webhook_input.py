"""Property-based Stripe and Twilio webhook deliveries: never a 500, never a partial write.

Stripe deliveries are signed, unsigned, garbled or signed over garbage. An accepted delivery
queues exactly one job with its event id and writes nothing else, and a rejected one changes
nothing. Twilio status callbacks and inbound messages are form-encoded with odd parameters, and
signed or not. A rejected request changes nothing, and an accepted status callback writes at
most its message's `SMS#` item.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from idsentry.routes.twilio_routes import FormParams
from idsentry.services.stripe_signature import sign
from infra.local.service import LocalService
from tests.hypothesis_profiles import examples
from tests.integration.bad_input import strategies as bad
from tests.integration.bad_input.support import (
    ShortRepr,
    StackProbe,
    Tally,
    check_field_rejection,
    compare,
    http_event,
    response_json,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

STRIPE = "POST /v1/webhooks/stripe"
TWILIO_STATUS = "POST /v1/webhooks/twilio/status"
TWILIO_INBOUND = "POST /v1/webhooks/twilio/inbound"
STATUSES = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "read", "canceled")


@dataclass(repr=False)
class StripeCase(ShortRepr):
    """One drawn Stripe delivery: the body bytes, how it is signed and the event id it carries."""

    body: bytes
    signing: str
    garbled_header: str
    base64: bool


valid_event_ids = st.from_regex(r"\Aevt_[A-Za-z0-9]{24}\Z")
event_ids = st.one_of(
    valid_event_ids,
    valid_event_ids,
    bad.odd_text,
    bad.huge_text.map(lambda text: "evt_" + text),
    bad.json_values,
)


@st.composite
def stripe_bodies(draw: st.DrawFn) -> bytes:
    """An event body: a plausible event with odd ids and modes, or any bytes at all."""
    if draw(st.integers(min_value=0, max_value=2)) == 2:
        return draw(bad.broken_bodies)
    event: dict[str, Any] = {
        "id": draw(event_ids),
        "object": "event",
        "livemode": draw(st.one_of(st.just(False), st.just(False), bad.json_values)),
        "type": draw(st.one_of(st.just("invoice.paid"), bad.odd_text)),
    }
    for name in draw(st.lists(st.sampled_from(["id", "livemode", "object"]), max_size=1)):
        event.pop(name, None)
    return json.dumps(event, indent=draw(st.sampled_from([None, 2]))).encode()


stripe_cases = st.builds(
    StripeCase,
    body=stripe_bodies(),
    signing=st.sampled_from(
        ["valid", "valid", "valid", "missing", "garbled", "stale", "future", "wrong_secret"]
    ),
    garbled_header=st.one_of(
        bad.odd_text,
        st.sampled_from(
            ["t=1,v1=", "v1=deadbeef", "t=abc,v1=00", "t=1,t=2,v1=00", ",,,", "t=１,v1=0"]
        ),
    ),
    base64=st.booleans(),
)


def _stripe_header(case: StripeCase, secret: str) -> str | None:
    now = int(time.time())
    if case.signing == "missing":
        return None
    if case.signing == "garbled":
        return case.garbled_header
    if case.signing == "stale":
        return sign(case.body, secret, now - 3600)
    if case.signing == "future":
        return sign(case.body, secret, now + 3600)
    if case.signing == "wrong_secret":
        return sign(case.body, "whsec_not_this_endpoint", now)
    return sign(case.body, secret, now)


def _queued_event_ids(service: LocalService, queue_url: str) -> list[str]:
    """Receive and delete every job on the Stripe events queue; return their event ids."""
    assert service.stack is not None
    sqs = service.stack.runtime.client("sqs")
    found: list[str] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"])["event_id"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_stripe_deliveries(input_service: LocalService, probe: StackProbe) -> None:
    tally = Tally("input.stripe_webhook", "Stripe webhook: signatures and bodies, signed or not")
    assert input_service.stack is not None
    environment = input_service.stack.runtime.environment
    queue = environment["STRIPE_EVENTS_QUEUE_URL"]
    secret = input_service.stripe_webhook_secret
    _queued_event_ids(input_service, queue)
    probe.clear_tables()
    start = probe.state()
    queued: list[str] = []

    @settings(max_examples=examples(fast=20, full=200))
    @given(case=stripe_cases)
    # A body signed with the endpoint's secret that nests past the JSON decoder's limit.
    @example(case=StripeCase(bad.nested(5_000, "[").encode(), "valid", "", False))
    # A signed event with an id of 300,000 characters.
    @example(
        case=StripeCase(
            json.dumps({"id": "evt_" + "a" * 300_000, "livemode": False}).encode(),
            "valid",
            "",
            False,
        )
    )
    def check(case: StripeCase) -> None:
        headers = {"content-type": "application/json; charset=utf-8"}
        header = _stripe_header(case, secret)
        if header is not None:
            headers["stripe-signature"] = header
        event = http_event(
            STRIPE, "/v1/webhooks/stripe", body=case.body, headers=headers, as_base64=case.base64
        )
        # The function may only send to its queue; the end of the run checks everything else.
        scope = {"tables": [], "queues": [queue], "buckets": []}
        before = probe.state(**scope)
        assert input_service.stack is not None
        response = input_service.stack.runtime.invoke("StripeWebhookFunction", event)
        change = compare(before, probe.state(**scope))
        status = response["statusCode"]
        tally.count(status)
        assert status < 500, response["body"]

        if status >= 400:
            assert status == 400, response["body"]
            tally.extra[f"named_{check_field_rejection(response)}"] += 1
            if not change.empty:
                tally.stray_writes += 1
            assert change.empty, change.describe()
            return

        assert status == 200, response["body"]
        assert case.signing == "valid", response["body"]
        event_id = json.loads(case.body)["id"]
        queued.append(event_id)
        tally.lost += max(1 - change.messages.get(queue, 0), 0)
        tally.duplicated += max(change.messages.get(queue, 0) - 1, 0)
        stray = len(change.added) + len(change.changed) + len(change.removed)
        tally.stray_writes += stray
        assert change.messages == {queue: 1}, change.describe()
        assert stray == 0, change.describe()

    try:
        check()
        end = compare(start, probe.state())
        received = _queued_event_ids(input_service, queue)
        tally.lost += len(set(queued) - set(received))
        tally.duplicated += max(len(received) - len(queued), 0)
        others = {url: n for url, n in end.messages.items() if url != queue}
        tally.stray_writes += len(end.added) + len(end.changed) + len(others) + len(end.objects)
        assert sorted(received) == sorted(queued)
    finally:
        tally.record()
    tally.check_totals()


@dataclass(repr=False)
class TwilioCase(ShortRepr):
    """One drawn Twilio request: route, form pairs or raw body, query and how it is signed."""

    route: str
    pairs: list[tuple[str, str]]
    raw_body: bytes | None
    query: list[tuple[str, str]]
    signing: str
    garbled_header: str


valid_sids = st.from_regex(r"\A(SM|MM)[0-9a-f]{32}\Z")
message_sids = st.one_of(valid_sids, valid_sids, valid_sids, bad.odd_text, bad.huge_text)


@st.composite
def twilio_cases(draw: st.DrawFn) -> TwilioCase:
    """A status callback or an inbound message, with odd parameters and signatures."""
    route = draw(st.sampled_from([TWILIO_STATUS, TWILIO_INBOUND]))
    pairs: list[tuple[str, str]] = [("MessageSid", draw(message_sids))]
    if route == TWILIO_STATUS:
        statuses = st.sampled_from(STATUSES)
        pairs.append(("MessageStatus", draw(st.one_of(statuses, statuses, bad.odd_text))))
        if draw(st.booleans()):
            code = st.sampled_from(["21610", "21211", "30003", "30005", ""])
            pairs.append(("ErrorCode", draw(st.one_of(code, bad.odd_text, bad.huge_text))))
        pairs.append(("To", draw(st.one_of(st.just("+8613800138001"), bad.odd_text))))
    else:
        pairs.append(("From", draw(st.one_of(st.just("+14155550100"), bad.odd_text))))
        keywords = st.sampled_from(["STOP", "stop ", "ＳＴＯＰ", "START", "退订", "HELP"])
        pairs.append(("Body", draw(st.one_of(keywords, bad.odd_text, bad.huge_text))))
    pairs += draw(st.lists(st.tuples(bad.odd_text, bad.odd_text), max_size=3))
    pairs = draw(st.permutations(pairs))
    if draw(st.integers(min_value=0, max_value=3)) == 3:
        pairs.pop(draw(st.integers(min_value=0, max_value=len(pairs) - 1)))

    raw_body = draw(st.one_of(st.none(), st.none(), st.none(), bad.broken_bodies))
    query: list[tuple[str, str]] = []
    if route == TWILIO_STATUS and draw(st.booleans()):
        query = [("m", draw(bad.odd_text)), ("c", draw(st.sampled_from(["sms", "email", ""])))]
    return TwilioCase(
        route=route,
        pairs=pairs,
        raw_body=raw_body,
        query=query,
        signing=draw(
            st.sampled_from(["valid", "valid", "valid", "missing", "garbled", "other_url"])
        ),
        garbled_header=draw(bad.odd_text),
    )


def _form_params(pairs: list[tuple[str, str]]) -> FormParams:
    params = FormParams()
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


def _twilio_signature(token: str, url: str, pairs: list[tuple[str, str]]) -> str:
    from twilio.request_validator import RequestValidator

    return str(RequestValidator(token).compute_signature(url, _form_params(pairs)))


def test_twilio_requests(input_service: LocalService, probe: StackProbe) -> None:
    tally = Tally(
        "input.twilio_webhooks",
        "Twilio status callbacks and inbound SMS: form bodies and signatures",
    )
    assert input_service.stack is not None
    main_table = input_service.stack.runtime.environment["TABLE_NAME"]
    token = input_service.twilio_auth_token
    probe.clear_tables()
    start = probe.state()
    sms_items: set[str] = set()

    @settings(max_examples=examples(fast=20, full=200))
    @given(case=twilio_cases())
    # A signed status callback whose error code is over DynamoDB's 400 KB item limit.
    @example(
        case=TwilioCase(
            route=TWILIO_STATUS,
            pairs=[
                ("MessageSid", "SM" + "0" * 32),
                ("MessageStatus", "failed"),
                ("ErrorCode", "3" * 500_000),
            ],
            raw_body=None,
            query=[],
            signing="valid",
            garbled_header="",
        )
    )
    def check(case: TwilioCase) -> None:
        path = case.route.split(" ", 1)[1]
        raw_query = urlencode(case.query)
        body = case.raw_body if case.raw_body is not None else urlencode(case.pairs).encode()
        url = input_service.public_base_url + path + (f"?{raw_query}" if raw_query else "")
        headers = {"content-type": "application/x-www-form-urlencoded"}
        if case.signing == "valid":
            headers["x-twilio-signature"] = _twilio_signature(token, url, case.pairs)
        elif case.signing == "other_url":
            headers["x-twilio-signature"] = _twilio_signature(token, url + "/x", case.pairs)
        elif case.signing == "garbled":
            headers["x-twilio-signature"] = case.garbled_header
        # API Gateway base64-encodes form bodies.
        event = http_event(
            case.route, path, body=body, headers=headers, raw_query=raw_query, as_base64=True
        )

        scope = {"tables": [main_table], "queues": [], "buckets": []}
        before = probe.state(**scope)
        assert input_service.stack is not None
        response = input_service.stack.runtime.invoke("TwilioWebhooksFunction", event)
        change = compare(before, probe.state(**scope))
        status = response["statusCode"]
        tally.count(status)
        assert status < 500, response["body"]

        if status >= 400:
            assert status in (400, 403), response["body"]
            tally.extra[f"named_{check_field_rejection(response)}"] += 1
            if not change.empty:
                tally.stray_writes += 1
            assert change.empty, change.describe()
            return

        assert status == 200, response["body"]
        assert case.signing == "valid", response["body"]
        touched = {key for (table, key) in [*change.added, *change.changed]}
        sid = dict(case.pairs).get("MessageSid", "")
        allowed = {f"SMS#{sid}|SMS"} if case.route == TWILIO_STATUS else set()
        stray = touched - allowed
        tally.stray_writes += len(stray) + len(change.removed)
        sms_items.update(touched & allowed)
        if case.route == TWILIO_STATUS:
            outcome = response_json(response)["outcome"]
            tally.extra[f"outcome_{outcome}"] += 1
        assert not stray, change.describe()
        assert not change.removed, change.describe()

    try:
        check()
        end = compare(start, probe.state())
        touched = {key for (table, key) in [*end.added, *end.changed]}
        tally.stray_writes += len(touched - sms_items) + len(end.removed)
        tally.stray_writes += len(end.messages) + len(end.objects)
    finally:
        tally.record()
    tally.check_totals()
