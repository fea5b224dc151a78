"""Concurrent signups over the local HTTP API: nothing lost, abuse limits and code budget exact.

The stack runs with `trust_forwarded_for`, a LocalService option that makes the local HTTP API
take each request's source address from X-Forwarded-For, so that one machine acts as many
clients. The handlers read only `requestContext.http.sourceIp`, which API Gateway sets from the
connection, and the last test checks that they ignore the forwarding headers.

One module-scoped run fires three bursts, each with one thread per request, released together:


1. mixed: addresses that each send more signups than the per-address limit, one mobile number
   signing up from several addresses, one Idempotency-Key sent several times, and signups with
   a number and an address of their own;
2. flood: more signups with numbers and addresses of their own than the daily code budget has
   left;
3. verify: the code of the number that signed up from several addresses, sent several times.

The queues are drained after the signup bursts, so every accepted signup's code SMS has reached
the Twilio emulator before the checks. The run records `load.signups_200` for
docs/reliability.md: 40 requests in the mixed burst at the fast size, 200 at the full size.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from idsentry.crypto import Pepper, keyed_hash
from idsentry.services.limits import day_bucket, hour_bucket
from infra.bench.workload import IdentityFactory, SyntheticIdentity, http_event, signup_body
from infra.chaos.results import ScenarioResult, record, sized
from infra.local.service import LocalService
from tests.e2e.conftest import IDENTITIES

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

TABLE = "idsentry-local"
SIGNUP_FUNCTION = "SignupFunction"
CONSENT_VERSIONS = dict.fromkeys(
    ("terms", "sensitive_personal_information", "cross_border_transfer"), "2026-12-01"
)
CONCURRENT = sized(fast=40, full=200)
PER_IP_LIMIT = 3
REQUESTS_PER_LIMITED_IP = PER_IP_LIMIT + 2
# Long enough that no second code to one number is due while a burst runs.
RESEND_INTERVAL_SECONDS = 3600
FLOOD_SIZE = max(10, CONCURRENT // 4)
# Signups of the flood beyond what the code budget has left after the mixed burst.
FLOOD_REJECTIONS = FLOOD_SIZE // 2
# The address counters are per UTC hour and the code budget per UTC day. A burst that crossed
# a boundary would count in two windows, so a run that starts this close to one waits for it.
# The signup bursts take a few seconds at the fast size and about a minute at the full size.
WINDOW_MARGIN_SECONDS = sized(fast=30, full=180)
# 198.18.0.0/15 is reserved for network benchmark tests (RFC 2544).
ADDRESSES = ipaddress.ip_network("198.18.0.0/15").hosts()


@dataclass(frozen=True)
class Attempt:
    """One request of a burst: its group, identity, source address and optional Idempotency-Key."""

    group: str
    identity: SyntheticIdentity
    source_ip: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What one request got back. Status 0 is a request that got no response."""

    attempt: Attempt
    status: int
    body: dict[str, Any]
    retry_after: int | None

    @property
    def code(self) -> str | None:
        """The error code of a rejected request."""
        error = self.body.get("error") or {}
        return str(error["code"]) if "code" in error else None

    @property
    def signup_id(self) -> str | None:
        return self.body.get("signup_id")


@dataclass
class LoadRun:
    """The outcomes of every burst and the stack's state after the queues drained."""

    service: LocalService
    budget: int
    same_phone: SyntheticIdentity
    mixed: list[Outcome]
    flood: list[Outcome]
    verifies: list[Outcome] = field(default_factory=list)
    signup_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    code_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    signup_keys: set[str] = field(default_factory=set)
    sms_by_phone: Counter[str] = field(default_factory=Counter)
    subscribers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def signups(self) -> list[Outcome]:
        return self.mixed + self.flood

    def group(self, name: str) -> list[Outcome]:
        return [outcome for outcome in self.signups if outcome.attempt.group == name]

    def accepted(self, outcomes: list[Outcome] | None = None) -> dict[str, Outcome]:
        """Return the accepted signups by id. A replayed response counts once."""
        chosen = self.signups if outcomes is None else outcomes
        return {o.signup_id: o for o in chosen if o.status == 202 and o.signup_id is not None}

    def verified_signup(self) -> str | None:
        accepted = self.accepted(self.group("same_phone"))
        return next(iter(accepted), None)


def _next_address() -> str:
    return str(next(ADDRESSES))


def _mixed_attempts(factory: IdentityFactory, size: int) -> list[Attempt]:
    """Return the mixed burst's `size` attempts. The first attempt's identity repeats in its group."""
    repeats = max(4, size // 10)
    limited_ips = max(2, size // 10)
    same_phone = factory.new()
    same_key = factory.new()

    attempts = [Attempt("same_phone", same_phone, _next_address()) for _ in range(repeats)]
    attempts += [
        Attempt("same_key", same_key, _next_address(), idempotency_key="load-same-key")
        for _ in range(repeats)
    ]
    for _ in range(limited_ips):
        address = _next_address()
        attempts += [
            Attempt("limited_ip", factory.new(), address) for _ in range(REQUESTS_PER_LIMITED_IP)
        ]
    while len(attempts) < size:
        attempts.append(Attempt("plain", factory.new(), _next_address()))
    return attempts


def _expected_mixed_accepts(attempts: list[Attempt]) -> int:
    limited_ips = len({a.source_ip for a in attempts if a.group == "limited_ip"})
    plain = sum(1 for a in attempts if a.group == "plain")
    # One signup of the repeated number, one of the repeated key, the limit per address.
    return 1 + 1 + limited_ips * PER_IP_LIMIT + plain


def _fire(calls: list[Callable[[], Outcome]]) -> list[Outcome]:
    """Run every call on a thread of its own, all released at once, and return the results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Outcome]) -> Outcome:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _post(url: str, attempt: Attempt, payload: dict[str, Any]) -> Outcome:
    headers = {"X-Forwarded-For": attempt.source_ip}
    if attempt.idempotency_key is not None:
        headers["Idempotency-Key"] = attempt.idempotency_key
    try:
        response = requests.post(url, json=payload, headers=headers, timeout=300)
    except requests.RequestException:
        return Outcome(attempt, 0, {}, None)
    retry_after = response.headers.get("retry-after")
    return Outcome(
        attempt,
        response.status_code,
        response.json(),
        int(retry_after) if retry_after is not None else None,
    )


def _sign_up_at_once(service: LocalService, attempts: list[Attempt]) -> list[Outcome]:
    url = f"{service.base_url}/v1/signups"

    def call(attempt: Attempt) -> Callable[[], Outcome]:
        body = signup_body(attempt.identity, CONSENT_VERSIONS)
        return lambda: _post(url, attempt, body)

    return _fire([call(attempt) for attempt in attempts])


def _verify_at_once(
    service: LocalService, identity: SyntheticIdentity, signup_id: str, count: int
) -> list[Outcome]:
    """Send the code that the identity's number received `count` times at once."""
    assert service.twilio is not None
    message = next(m for m in service.twilio.messages() if m["to"] == identity.mobile)
    code = re.search(r"\d{6}", message["body"])
    assert code is not None, "the code SMS has no 6-digit code"
    url = f"{service.base_url}/v1/signups/{signup_id}/verify"

    def call() -> Outcome:
        return _post(url, Attempt("verify", identity, _next_address()), {"code": code.group(0)})

    return _fire([call for _ in range(count)])


def _wait_for_fresh_windows() -> None:
    """Sleep past the next UTC hour when it starts within WINDOW_MARGIN_SECONDS."""
    now = datetime.now(UTC)
    left = min(hour_bucket(now)[1], day_bucket(now)[1])
    if left < WINDOW_MARGIN_SECONDS:
        time.sleep(left + 1)


def _scan(service: LocalService, table: str, **request: Any) -> list[dict[str, Any]]:
    assert service.stack is not None
    client = service.stack.runtime.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table, **request):
        items.extend(page["Items"])
    return items


def _collect_state(run: LoadRun) -> None:
    """Read the signups, codes, subscribers, signup data keys and SMS that the run left."""
    service = run.service
    assert service.stack is not None and service.twilio is not None
    for item in _scan(
        service,
        TABLE,
        FilterExpression="begins_with(pk, :prefix)",
        ExpressionAttributeValues={":prefix": {"S": "SIGNUP#"}},
    ):
        signup_id = item["pk"]["S"].removeprefix("SIGNUP#")
        if item["sk"]["S"] == "SIGNUP":
            run.signup_items[signup_id] = item
        elif item["sk"]["S"] == "OTP":
            run.code_items[signup_id] = item
    run.subscribers = _scan(
        service,
        TABLE,
        FilterExpression="begins_with(pk, :prefix) AND sk = :profile",
        ExpressionAttributeValues={":prefix": {"S": "SUB#"}, ":profile": {"S": "PROFILE"}},
    )
    key_table = service.stack.runtime.environment["KEY_TABLE_NAME"]
    run.signup_keys = {
        item["owner_id"]["S"]
        for item in _scan(service, key_table)
        if item["owner_id"]["S"].startswith("sgn_")
    }
    run.sms_by_phone = Counter(message["to"] for message in service.twilio.messages())


def _counter_total(service: LocalService, pk: str) -> int:
    """Return the sum of the `count` attributes in one counter partition (every window)."""
    assert service.stack is not None
    response = service.stack.runtime.client("dynamodb").query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )
    return sum(int(item["count"]["N"]) for item in response["Items"])


def _ip_counter_pk(service: LocalService, source_ip: str) -> str:
    pepper = Pepper.from_secret(service.pepper)
    return f"RATE#ip#{keyed_hash(pepper.derive_key('source-ip'), source_ip)}"


def _signups_of(run: LoadRun, identity: SyntheticIdentity) -> set[str]:
    """Return the ids of the stored signups with the identity's mobile number."""
    pepper = Pepper.from_secret(run.service.pepper)
    fingerprint = str(pepper.fingerprint("mobile", identity.mobile))
    return {
        signup_id
        for signup_id, item in run.signup_items.items()
        if item["mobile_fp"]["S"] == fingerprint
    }


def _lost(run: LoadRun) -> int:
    """Count accepted signups without their signup item, their stored code or a code SMS."""
    lost = 0
    for signup_id, outcome in run.accepted().items():
        signup = run.signup_items.get(signup_id)
        code = run.code_items.get(signup_id)
        complete = (
            signup is not None
            and code is not None
            and code["code_id"]["S"] == signup["code_id"]["S"]
            and run.sms_by_phone[outcome.attempt.identity.mobile] >= 1
        )
        lost += 0 if complete else 1
    return lost


def _duplicated(run: LoadRun) -> int:
    """Count signups, code SMS and subscribers beyond one per number, key and signup."""
    duplicated = 0
    for group in ("same_phone", "same_key"):
        duplicated += max(len(run.accepted(run.group(group))) - 1, 0)
    duplicated += sum(max(count - 1, 0) for count in run.sms_by_phone.values())
    verified = [s for s in run.subscribers if s["signup_id"]["S"] == run.verified_signup()]
    duplicated += max(len(verified) - 1, 0)
    return duplicated


def _record(run: LoadRun) -> None:
    outcomes = run.signups + run.verifies
    statuses = Counter(outcome.status for outcome in outcomes)
    record(
        ScenarioResult(
            scenario="load.signups_200",
            area="load",
            title=f"{CONCURRENT} concurrent signups, a flood past the code budget, "
            "one code verified concurrently",
            inputs_tried=len(outcomes),
            lost=_lost(run),
            duplicated=_duplicated(run),
            details={
                "concurrent": CONCURRENT,
                "accepted": len(run.accepted()),
                "limited": statuses[429] + statuses[503],
                "in_progress": statuses[409],
                "sms_sent": sum(run.sms_by_phone.values()),
                "budget": run.budget,
                "subscribers": len(run.subscribers),
                "errors": statuses[0] + statuses[500],
            },
        )
    )


@pytest.fixture(scope="module")
def load_run() -> Iterator[LoadRun]:
    """Run the three bursts once against a stack of their own and record the scenario."""
    factory = IdentityFactory()
    mixed_attempts = _mixed_attempts(factory, CONCURRENT)
    same_phone = mixed_attempts[0].identity
    budget = _expected_mixed_accepts(mixed_attempts) + FLOOD_SIZE - FLOOD_REJECTIONS
    parameters = {
        "SignupsPerIpPerHour": PER_IP_LIMIT,
        "SmsOtpDailyBudget": budget,
        "OtpResendIntervalSeconds": RESEND_INTERVAL_SECONDS,
    }

    with LocalService(
        port=0,
        parameters=parameters,
        identities_path=IDENTITIES,
        background=False,
        trust_forwarded_for=True,
        # Fast enough that the emulator's sending queue never delays a code.
        sms_segments_per_second=1000.0,
    ) as service:
        assert service.stack is not None and service.realname is not None
        service.realname.add_identity(same_phone.name, same_phone.id_number, same_phone.mobile)
        _wait_for_fresh_windows()

        mixed = _sign_up_at_once(service, mixed_attempts)
        flood_attempts = [
            Attempt("flood", factory.new(), _next_address()) for _ in range(FLOOD_SIZE)
        ]
        flood = _sign_up_at_once(service, flood_attempts)
        service.stack.runtime.run_until_idle(deadline_s=600)
        run = LoadRun(service, budget, same_phone, mixed, flood)

        signup_id = run.verified_signup()
        if signup_id is not None:
            run.verifies = _verify_at_once(service, same_phone, signup_id, max(4, CONCURRENT // 10))
            service.stack.runtime.run_until_idle(deadline_s=600)
        _collect_state(run)
        _record(run)
        yield run


def test_accepted_signups_complete(load_run: LoadRun) -> None:
    assert load_run.accepted()
    assert _lost(load_run) == 0


def test_no_server_errors(load_run: LoadRun) -> None:
    statuses = Counter(o.status for o in load_run.signups + load_run.verifies)

    assert statuses[0] == 0, "a request got no response"
    assert statuses[500] == 0


def test_limit_per_ip_exact(load_run: LoadRun) -> None:
    by_ip: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in load_run.group("limited_ip"):
        by_ip[outcome.attempt.source_ip].append(outcome)

    assert by_ip
    for source_ip, outcomes in by_ip.items():
        statuses = Counter((o.status, o.code) for o in outcomes)
        counted = _counter_total(load_run.service, _ip_counter_pk(load_run.service, source_ip))
        assert statuses == {(202, None): PER_IP_LIMIT, (429, "limit.ip"): 2}
        assert counted == PER_IP_LIMIT


def test_plain_signups_accepted(load_run: LoadRun) -> None:
    statuses = Counter(o.status for o in load_run.group("plain"))

    assert statuses == {202: len(load_run.group("plain"))}


def test_rejections_carry_retry_after(load_run: LoadRun) -> None:
    limited = [o for o in load_run.signups if o.status in (429, 503)]

    assert limited
    assert all(o.retry_after is not None and o.retry_after > 0 for o in limited)


def test_code_budget_exact(load_run: LoadRun) -> None:
    flood = Counter((o.status, o.code) for o in load_run.flood)

    assert flood == {
        (202, None): FLOOD_SIZE - FLOOD_REJECTIONS,
        (503, "limit.otp_budget_exhausted"): FLOOD_REJECTIONS,
    }
    assert len(load_run.accepted()) == load_run.budget
    assert sum(load_run.sms_by_phone.values()) == load_run.budget
    assert _counter_total(load_run.service, "BUDGET#otp-sms") == load_run.budget


def test_one_signup_per_phone(load_run: LoadRun) -> None:
    outcomes = load_run.group("same_phone")
    statuses = Counter((o.status, o.code) for o in outcomes)

    assert statuses == {(202, None): 1, (429, "limit.resend_interval"): len(outcomes) - 1}
    assert len(_signups_of(load_run, load_run.same_phone)) == 1
    assert load_run.sms_by_phone[load_run.same_phone.mobile] == 1


def test_one_signup_per_key(load_run: LoadRun) -> None:
    outcomes = load_run.group("same_key")
    accepted = load_run.accepted(outcomes)
    others = {(o.status, o.code) for o in outcomes if o.status != 202}

    assert len(accepted) == 1
    assert others <= {(409, "idempotency.in_progress")}
    assert _signups_of(load_run, outcomes[0].attempt.identity) == set(accepted)


def test_one_subscriber_per_signup(load_run: LoadRun) -> None:
    signup_id = load_run.verified_signup()
    subscribers = [s for s in load_run.subscribers if s["signup_id"]["S"] == signup_id]
    statuses = [o.status for o in load_run.verifies]

    assert len(subscribers) == 1
    assert len(load_run.subscribers) == 1
    # Every concurrent submit of the right code gets the response of the one that committed.
    assert statuses == [200] * len(load_run.verifies)
    assert {o.body["subscriber_id"] for o in load_run.verifies} == {
        subscribers[0]["subscriber_id"]["S"]
    }
    assert len({o.body["next_step"]["checkout_url"] for o in load_run.verifies}) == 1


def test_rejections_write_nothing(load_run: LoadRun) -> None:
    accepted = set(load_run.accepted())

    assert set(load_run.signup_items) == accepted
    assert set(load_run.code_items) == accepted
    # Verification deletes the signup's data key along with its ciphertext.
    assert load_run.signup_keys == accepted - {load_run.verified_signup()}


def _invoke_signup(service: LocalService, source_ip: str, forwarded_ip: str) -> dict[str, Any]:
    """Invoke the signup handler with an event whose forwarding headers name another address."""
    assert service.stack is not None
    body = signup_body(IdentityFactory().new(), CONSENT_VERSIONS)
    event = http_event("POST /v1/signups", "/v1/signups", body)
    event["headers"].update(
        {
            "x-forwarded-for": forwarded_ip,
            "forwarded": f"for={forwarded_ip}",
            "x-real-ip": forwarded_ip,
            "true-client-ip": forwarded_ip,
        }
    )
    event["requestContext"]["http"]["sourceIp"] = source_ip
    response: dict[str, Any] = service.stack.runtime.invoke(SIGNUP_FUNCTION, event)
    return response


def test_handler_ignores_forwarded_headers(load_run: LoadRun) -> None:
    # After the run, each limited address has used its limit and the code budget is spent, so
    # the per-address check rejects a limited address (429) and a fresh one reaches the 503.
    service = load_run.service
    limited_ip = load_run.group("limited_ip")[0].attempt.source_ip
    fresh_ip = _next_address()

    from_limited = _invoke_signup(service, limited_ip, forwarded_ip=fresh_ip)
    from_fresh = _invoke_signup(service, fresh_ip, forwarded_ip=limited_ip)

    assert from_limited["statusCode"] == 429
    assert '"limit.ip"' in from_limited["body"]
    assert from_fresh["statusCode"] == 503
    assert '"limit.otp_budget_exhausted"' in from_fresh["body"]
    assert _counter_total(service, _ip_counter_pk(service, limited_ip)) == PER_IP_LIMIT
    assert _counter_total(service, _ip_counter_pk(service, fresh_ip)) == 0
