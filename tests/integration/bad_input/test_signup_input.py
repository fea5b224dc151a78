"""Property-based signup and verification requests: never a 500, never a partial write.

Each example sends one request to the signup function in-process against the local stack and
compares the stored state before and after it. A rejected request changes nothing, except
that a wrong code counts one attempt on its code. An accepted signup adds exactly one pending
signup, its data key, its limit counters and one code job. Every 4xx is in the language the
request asked for, and a 422 names each invalid field.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from idsentry.http import accept_language
from idsentry.i18n import SUPPORTED_LOCALES, negotiate_locale
from infra.local.service import LocalService
from tests.hypothesis_profiles import examples
from tests.integration.bad_input import strategies as bad
from tests.integration.bad_input.support import (
    ShortRepr,
    StackProbe,
    Tally,
    check_subscriber_rejection,
    compare,
    http_event,
    response_json,
    sqs_event,
    take_message,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

CREATE = "POST /v1/signups"
VERIFY = "POST /v1/signups/{signup_id}/verify"
CONSENTS = {
    kind: {"accepted": True, "version": "2026-12-01"}
    for kind in ("terms", "sensitive_personal_information", "cross_border_transfer")
}
REQUIRED = ("name", "id_number", "mobile", "email", "plan", "consents")
OPTIONAL = ("locale", "timezone", "referral_code", "human_check_token")
FIELDS = REQUIRED + OPTIONAL
NAMES = ("王小明", "李雷", "欧阳娜娜", "Alice Li", "阿依古丽·买买提", "O'Neil", "张 三")


@dataclass(repr=False)
class SignupCase(ShortRepr):
    """One drawn request: its body bytes, headers, the field it breaks and the languages."""

    body: bytes
    headers: dict[str, str]
    as_base64: bool
    broken_field: str | None
    body_locale: str | None = None
    notes: list[str] = field(default_factory=list)
    # The 11 digits of the generated mobile number, which the test replaces with fresh ones.
    mobile: str | None = None


@st.composite
def valid_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A signup body that passes validation, with distinct identifiers per example."""
    mobile = draw(st.sampled_from(bad.MOBILE_PREFIXES)) + draw(st.from_regex(r"\A[0-9]{8}\Z"))
    body: dict[str, Any] = {
        "name": draw(st.sampled_from(NAMES)),
        "id_number": draw(bad.id_numbers()),
        "mobile": draw(st.sampled_from(["", "+86", "+86 ", "0086"])) + mobile,
        "email": draw(st.from_regex(r"\A[a-z][a-z0-9]{0,8}(\.[a-z0-9]{1,6})?\Z")) + "@example.com",
        "plan": draw(st.sampled_from(["monthly", "annual"])),
        "consents": CONSENTS,
    }
    if draw(st.booleans()):
        body["locale"] = draw(st.sampled_from(SUPPORTED_LOCALES))
    if draw(st.booleans()):
        body["timezone"] = draw(st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "UTC"]))
    return body


def _wrong_type(name: str) -> st.SearchStrategy[Any]:
    values = bad.json_values.filter(lambda value: not isinstance(value, str))
    if name in OPTIONAL:
        values = values.filter(lambda value: value is not None)
    if name == "consents":
        values = bad.json_values.filter(lambda value: not isinstance(value, dict))
    return values


@st.composite
def signup_cases(draw: st.DrawFn) -> SignupCase:
    """A valid body, or one broken in one way, with odd headers and encodings."""
    body = draw(valid_bodies())
    mobile_digits = body["mobile"][-11:]
    kind = draw(
        st.sampled_from(
            [
                "valid",
                "valid",
                "valid",
                "drop",
                "extra",
                "wrong_type",
                "odd_value",
                "huge",
                "affix",
                "consents",
                "broken_body",
            ]
        )
    )
    broken: str | None = None
    raw: bytes | None = None

    if kind == "drop":
        broken = draw(st.sampled_from(REQUIRED))
        del body[broken]
    elif kind == "extra":
        broken = draw(st.from_regex(r"\A[a-z_]{1,12}\Z").filter(lambda key: key not in FIELDS))
        body[broken] = draw(bad.json_values)
    elif kind == "wrong_type":
        broken = draw(st.sampled_from(FIELDS))
        body[broken] = draw(_wrong_type(broken))
    elif kind == "odd_value":
        broken = draw(st.sampled_from(FIELDS))
        body[broken] = draw(bad.odd_text)
    elif kind == "huge":
        broken = draw(st.sampled_from(FIELDS))
        body[broken] = draw(bad.huge_text)
    elif kind == "affix":
        broken = draw(st.sampled_from(["name", "id_number", "mobile", "email"]))
        injection = draw(bad.injections)
        body[broken] = draw(st.sampled_from([injection + body[broken], body[broken] + injection]))
    elif kind == "consents":
        broken = "consents"
        consent = draw(st.sampled_from(sorted(CONSENTS)))
        body["consents"] = {
            **CONSENTS,
            consent: draw(
                st.one_of(
                    bad.json_values,
                    st.fixed_dictionaries(
                        {"accepted": st.sampled_from([False, True]), "version": bad.odd_text}
                    ),
                )
            ),
        }
    elif kind == "broken_body":
        raw = draw(bad.broken_bodies)

    if raw is None:
        raw = json.dumps(body, ensure_ascii=draw(st.booleans())).encode()
    body_locale = None
    if kind != "broken_body" and body.get("locale") in SUPPORTED_LOCALES:
        body_locale = str(body["locale"])

    headers: dict[str, str] = {}
    content_type = draw(bad.content_types)
    if content_type is not None:
        headers["content-type"] = content_type
    if draw(st.booleans()):
        headers["accept-language"] = draw(bad.accept_languages)
    if draw(st.integers(min_value=0, max_value=3)) == 3:
        # Mostly fresh keys, so that a reused key stays the exception.
        keys = st.one_of(st.uuids().map(str), st.uuids().map(str), bad.idempotency_keys)
        headers["idempotency-key"] = draw(keys)
    return SignupCase(
        body=raw,
        headers=headers,
        as_base64=draw(st.booleans()),
        broken_field=broken if kind != "valid" else None,
        body_locale=body_locale,
        notes=[kind],
        mobile=mobile_digits,
    )


def _invoke(service: LocalService, event: dict[str, Any]) -> dict[str, Any]:
    assert service.stack is not None
    response: dict[str, Any] = service.stack.runtime.invoke("SignupFunction", event)
    return response


def _header_locale(headers: dict[str, str]) -> str:
    return negotiate_locale(accept_language(headers))


def _key_is_valid(key: str | None) -> bool:
    return key is None or (0 < len(key) <= 255 and all(33 <= ord(ch) <= 126 for ch in key))


@pytest.fixture(scope="module")
def environment(input_service: LocalService) -> dict[str, str]:
    assert input_service.stack is not None
    return input_service.stack.runtime.environment


def test_signup_requests(
    input_service: LocalService, probe: StackProbe, environment: dict[str, str]
) -> None:
    tally = Tally("input.signup_create", "POST /v1/signups: mutated bodies, headers and encodings")
    main_table = environment["TABLE_NAME"]
    key_table = environment["KEY_TABLE_NAME"]
    code_queue = environment["NOTIFICATION_QUEUE_URL"]
    created: set[str] = set()
    numbers = itertools.count(1)
    probe.clear_tables()
    start = probe.state()

    @settings(max_examples=examples(fast=25, full=300))
    @given(case=signup_cases())
    # Nested 5,000 levels deep, past the JSON decoder's recursion limit.
    @example(
        case=SignupCase(
            body=bad.nested(5_000, "[").encode(),
            headers={},
            as_base64=False,
            broken_field=None,
        )
    )
    # A body in English with an unknown referral code: the service rejects it after parsing.
    @example(
        case=SignupCase(
            body=json.dumps(
                {
                    "name": "Alice Li",
                    "id_number": "310104198512120023",
                    "mobile": "+8613900139002",
                    "email": "alice@example.com",
                    "plan": "monthly",
                    "consents": CONSENTS,
                    "locale": "en",
                    "referral_code": "NOSUCHCODE1",
                }
            ).encode(),
            headers={},
            as_base64=False,
            broken_field="referral_code",
            body_locale="en",
        )
    )
    # The same body with an invalid Idempotency-Key, which is checked before the body.
    @example(
        case=SignupCase(
            body=json.dumps({"name": "Alice Li", "locale": "en"}).encode(),
            headers={"idempotency-key": "not valid"},
            as_base64=False,
            broken_field=None,
            body_locale="en",
        )
    )
    def check(case: SignupCase) -> None:
        # Hypothesis repeats small values such as "00000000" often, which would test the
        # resend interval and the per-address limit more than the signup. Each example gets
        # its own number and address instead.
        number = next(numbers)
        body = case.body
        if case.mobile is not None:
            fresh = f"{case.mobile[:3]}{number:08d}"
            body = body.replace(case.mobile.encode(), fresh.encode())
        event = http_event(
            CREATE,
            "/v1/signups",
            body=body,
            headers=case.headers,
            source_ip=f"198.51.{number // 250 % 256}.{number % 250 + 1}",
            as_base64=case.as_base64,
        )
        scope = {"tables": [main_table, key_table], "queues": [code_queue], "buckets": []}
        before = probe.state(**scope)
        response = _invoke(input_service, event)
        change = compare(before, probe.state(**scope))
        status = response["statusCode"]
        tally.count(status)
        assert status < 500, response["body"]

        key = case.headers.get("idempotency-key")
        locale = case.body_locale or _header_locale(case.headers)

        if status >= 400:
            fields = check_subscriber_rejection(response, locale)
            if key is not None and fields == ["Idempotency-Key"]:
                # An invalid key, or one that an earlier example used with another body.
                tally.extra["key_rejected"] += 1
            elif status == 422 and case.broken_field and _key_is_valid(key):
                tally.extra["broken_field_named"] += 1
                assert any(
                    name == case.broken_field or name.startswith(case.broken_field + ".")
                    for name in fields
                ), (case.broken_field, fields)
            if not change.empty:
                tally.stray_writes += 1
            assert change.empty, change.describe()
            return

        assert status == 202, response["body"]
        signup_id = str(response_json(response)["signup_id"])
        if signup_id in created:
            # The same Idempotency-Key and body again: the stored response, and nothing new.
            tally.extra["replayed"] += 1
            assert change.empty, change.describe()
            return
        created.add(signup_id)
        _check_created(tally, change, signup_id, main_table, key_table, code_queue)

    try:
        check()
        # Queues and buckets that no single example captured: only the code jobs are new.
        end = compare(start, probe.state())
        unexplained = {url: n for url, n in end.messages.items() if url != code_queue}
        other_tables = [
            key
            for key in [*end.added, *end.changed, *end.removed]
            if key[0] not in (main_table, key_table)
        ]
        tally.stray_writes += len(unexplained) + len(end.objects) + len(other_tables)
        assert not other_tables, end.describe()
        assert end.messages.get(code_queue, 0) == len(created), end.messages
    finally:
        tally.extra["signups_created"] = len(created)
        tally.record()
    tally.check_totals()


def _check_created(
    tally: Tally,
    change: Any,
    signup_id: str,
    main_table: str,
    key_table: str,
    code_queue: str,
) -> None:
    """Count what an accepted signup wrote against what it should have written."""
    signups = [key for key in change.added_in(main_table) if key.startswith("SIGNUP#")]
    keys = change.added_in(key_table)
    jobs = change.messages.get(code_queue, 0)
    expected_signup = f"SIGNUP#{signup_id}|SIGNUP"

    tally.lost += (expected_signup not in signups) + (len(keys) < 1) + (jobs < 1)
    tally.duplicated += max(len(signups) - 1, 0) + max(len(keys) - 1, 0) + max(jobs - 1, 0)

    allowed = ("SIGNUP#", "RATE#ip#", "BUDGET#otp-sms|", "SMSWIN#", "IDEMP#")
    touched = [key for (table, key) in [*change.added, *change.changed] if table == main_table]
    stray = [key for key in touched if not key.startswith(allowed)]
    stray += [key for (table, key) in change.added if table not in (main_table, key_table)]
    stray += [str(key) for key in change.removed]
    tally.stray_writes += len(stray)
    assert not stray, change.describe()
    assert expected_signup in signups, change.describe()
    assert len(signups) == 1, change.describe()
    assert len(keys) == 1, change.describe()
    assert jobs == 1, change.describe()


@dataclass(repr=False)
class VerifyCase(ShortRepr):
    """One drawn verification: the signup id in the path, the body and the headers."""

    signup_id: str
    body: bytes
    headers: dict[str, str]
    broken_field: str | None


@st.composite
def verify_cases(draw: st.DrawFn, pending_id: str) -> VerifyCase:
    """A verification of the pending signup or of an unknown id, with a wrong or broken body."""
    signup_id = draw(
        st.one_of(
            st.just(pending_id),
            st.just(pending_id),
            st.from_regex(r"\Asgn_[0-9a-z]{26}\Z"),
            bad.odd_text.filter(bool),
            bad.huge_text,
        )
    )
    body_kind = draw(st.sampled_from(["code", "odd_code", "wrong_type", "drop", "extra", "broken"]))
    broken: str | None = "code"
    if body_kind == "code":
        # Six digits, in ASCII or full-width: the right format, almost never the right code.
        digits = draw(st.from_regex(r"\A[0-9]{6}\Z"))
        if draw(st.booleans()):
            digits = "".join(chr(ord(digit) + 0xFEE0) for digit in digits)
        raw = json.dumps({"code": digits}).encode()
        broken = None
    elif body_kind == "odd_code":
        raw = json.dumps({"code": draw(st.one_of(bad.odd_text, bad.huge_text))}).encode()
    elif body_kind == "wrong_type":
        value = draw(bad.json_values.filter(lambda value: not isinstance(value, str)))
        raw = json.dumps({"code": value}).encode()
    elif body_kind == "drop":
        raw = b"{}"
    elif body_kind == "extra":
        broken = draw(st.from_regex(r"\A[a-z_]{1,12}\Z").filter(lambda key: key != "code"))
        raw = json.dumps({"code": "123456", broken: draw(bad.json_values)}).encode()
    else:
        raw = draw(bad.broken_bodies)
        broken = None

    headers: dict[str, str] = {}
    content_type = draw(bad.content_types)
    if content_type is not None:
        headers["content-type"] = content_type
    if draw(st.booleans()):
        headers["accept-language"] = draw(bad.accept_languages)
    if draw(st.integers(min_value=0, max_value=3)) == 3:
        headers["idempotency-key"] = draw(bad.idempotency_keys)
    return VerifyCase(signup_id=signup_id, body=raw, headers=headers, broken_field=broken)


def _pending_signup(service: LocalService) -> str:
    """Create one signup through the handler and deliver its code, as a verify target."""
    body = {
        "name": "王小明",
        "id_number": "110105199003071239",
        "mobile": "+8613800138001",
        "email": "wang@example.com",
        "plan": "monthly",
        "consents": CONSENTS,
    }
    event = http_event(CREATE, "/v1/signups", body=json.dumps(body).encode(), source_ip="192.0.2.7")
    response = _invoke(service, event)
    assert response["statusCode"] == 202, response["body"]
    signup_id = str(response_json(response)["signup_id"])

    assert service.stack is not None
    queue = service.stack.runtime.environment["NOTIFICATION_QUEUE_URL"]
    message = take_message(
        service, queue, lambda body: json.loads(body).get("signup_id") == signup_id
    )
    result = service.stack.runtime.invoke("NotifierFunction", sqs_event(service, queue, message))
    assert result["batchItemFailures"] == []
    # Its status callbacks write the SMS item, so they finish before the first snapshot.
    assert service.twilio is not None
    service.twilio.drain_all()
    assert service.twilio.wait_for_callbacks(timeout=60)
    return signup_id


def test_verify_requests(
    input_service: LocalService, probe: StackProbe, environment: dict[str, str]
) -> None:
    tally = Tally(
        "input.signup_verify",
        "POST /v1/signups/{id}/verify: odd ids, codes, bodies and headers",
    )
    main_table = environment["TABLE_NAME"]
    probe.clear_tables()
    pending_id = _pending_signup(input_service)
    start = probe.state()
    scope = {"tables": [main_table, environment["KEY_TABLE_NAME"]], "queues": [], "buckets": []}

    @settings(max_examples=examples(fast=15, full=150))
    @given(case=verify_cases(pending_id))
    def check(case: VerifyCase) -> None:
        event = http_event(
            VERIFY,
            f"/v1/signups/{case.signup_id}/verify",
            body=case.body,
            headers=case.headers,
            path_parameters={"signup_id": case.signup_id},
        )
        before = probe.state(**scope)
        response = _invoke(input_service, event)
        change = compare(before, probe.state(**scope))
        status = response["statusCode"]
        tally.count(status)
        assert status < 500, response["body"]
        assert 400 <= status < 500, response["body"]

        fields = check_subscriber_rejection(response, _header_locale(case.headers))
        key = case.headers.get("idempotency-key")
        if status == 422 and case.broken_field and _key_is_valid(key):
            tally.extra["broken_field_named"] += 1
            assert case.broken_field in fields, (case.broken_field, fields)

        # A wrong code counts one attempt on the pending signup's code, and nothing else.
        attempt = {(main_table, f"SIGNUP#{pending_id}|OTP")}
        counted = set(change.changed) <= attempt and not (change.added or change.removed)
        if response_json(response)["error"]["code"] == "request.invalid" and "code" in fields:
            tally.extra["attempts_counted"] += bool(change.changed)
            if not counted:
                tally.stray_writes += 1
            assert counted, change.describe()
        else:
            if not change.empty:
                tally.stray_writes += 1
            assert change.empty, change.describe()

    try:
        check()
        end = compare(start, probe.state())
        stray = [key for key in [*end.added, *end.changed] if key[1] != f"SIGNUP#{pending_id}|OTP"]
        tally.stray_writes += len(stray) + len(end.removed) + len(end.messages) + len(end.objects)
    finally:
        tally.record()
    tally.check_totals()
