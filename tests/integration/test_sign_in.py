"""Sign-in against moto server (DynamoDB, KMS) and the Twilio emulator, with a clock the tests move.

Sign-in codes share signup's limits, so several tests mix the two on one number or address.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from idsentry.adapters.token_keys import KmsTokenSigner, load_verification_key
from idsentry.errors import (
    NotFoundError,
    RateLimitedError,
    RequestValidationError,
    ServiceUnavailableError,
)
from idsentry.models.jobs import SignInCodeJob
from idsentry.services import notify, signin, signup
from idsentry.services.tokens import AUDIENCE, raw_to_der, verify_access_token
from idsentry.settings.codes import SignInSettings
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_payment_notices import RecordingQueue
from tests.integration.test_signup_service import PEOPLE, Harness, _clear_table

pytestmark = pytest.mark.integration

# A valid mainland number that no test signs up.
STRANGER = "+8615900159009"


class SignInHarness(Harness):
    """Signup, notifier and sign-in wired to the local stack, sharing one clock."""

    def __init__(self, service: LocalService, clock: MovableClock) -> None:
        super().__init__(service, clock)
        assert service.stack is not None
        runtime = service.stack.runtime
        self.kms = runtime.client("kms")
        self.key_arn = runtime.environment["ACCOUNT_TOKEN_KEY_ARN"]
        self.jobs = RecordingQueue()
        self.budget_alarms = 0
        self.sign_in_settings = SignInSettings.from_environ(runtime.environment)
        signer = KmsTokenSigner(self.key_arn, self.kms)
        self.sign_in_deps = signin.SignInDeps(
            settings=self.sign_in_settings,
            table=self.table,
            pepper=lambda: self.pepper,
            queue=self.jobs,  # type: ignore[arg-type]
            signer=lambda: signer,
            clock=clock,
            on_otp_budget_exhausted=self._count_budget_alarm,
        )

    def _count_budget_alarm(self) -> None:
        self.budget_alarms += 1

    def limit(self, **settings: int) -> None:
        """Set the same limits for signup and sign-in."""
        self.deps = replace(self.deps, settings=self.deps.settings.model_copy(update=settings))
        self.sign_in_deps = replace(
            self.sign_in_deps,
            settings=self.sign_in_deps.settings.model_copy(update=settings),
        )

    def subscriber(self, person: str) -> str:
        """Sign a person up, verify them and return the subscriber id."""
        signup_id = self.create(person)
        verified = signup.verify_signup(self.deps, signup_id, self.send_code(signup_id))
        return str(verified["subscriber_id"])

    def request(self, mobile: str, source_ip: str = "127.0.0.1") -> dict[str, Any]:
        return signin.create_sign_in(self.sign_in_deps, mobile, source_ip)

    def job(self, sign_in_id: str) -> SignInCodeJob:
        jobs = [job for job in self.jobs.jobs if job.sign_in_id == sign_in_id]
        assert len(jobs) == 1
        job: SignInCodeJob = jobs[0]
        return job

    def deliver(self, sign_in_id: str) -> tuple[str, str | None]:
        """Run the notifier's job and return its outcome and the code of the SMS it sent, if any."""
        assert self.service.twilio is not None
        before = len(self.service.twilio.messages())
        outcome = notify.process_job(self.notifier, self.job(sign_in_id))
        messages = self.service.twilio.messages()[before:]
        if not messages:
            return outcome, None
        assert len(messages) == 1
        match = re.search(r"\d{6}", messages[0]["body"])
        assert match is not None
        return outcome, match.group(0)

    def verify(self, sign_in_id: str, code: str) -> dict[str, Any]:
        return signin.verify_sign_in(self.sign_in_deps, sign_in_id, code)

    def wait_for_resend(self) -> None:
        self.clock.advance(seconds=self.sign_in_settings.otp_resend_interval_seconds)


@pytest.fixture
def harness(local_service: LocalService) -> Iterator[SignInHarness]:
    yield SignInHarness(local_service, MovableClock())
    _clear_table(local_service)


def _wrong(code: str | None) -> str:
    return "000000" if code != "000000" else "111111"


def _problem(error: RequestValidationError) -> tuple[str, str, str | None]:
    problem = error.problems[0]
    return problem.field, problem.code, problem.params.get("attempts_left")


def _signed_in(harness: SignInHarness, person: str = "wang") -> tuple[str, str, str]:
    """Sign a person up and request a sign-in. Returns subscriber id, sign-in id and code."""
    subscriber_id = harness.subscriber(person)
    harness.wait_for_resend()
    created = harness.request(PEOPLE[person][2])
    outcome, code = harness.deliver(created["sign_in_id"])
    assert outcome == "sent"
    assert code is not None
    return subscriber_id, created["sign_in_id"], code


def test_code_signs_in_to_holder(harness: SignInHarness) -> None:
    subscriber_id, sign_in_id, code = _signed_in(harness)

    result = harness.verify(sign_in_id, code)

    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 900
    key = load_verification_key(harness.key_arn, harness.kms)
    now = int(harness.clock().timestamp())
    claims = verify_access_token(
        result["access_token"],
        key,
        harness.sign_in_settings.public_base_url,
        now,
        max_lifetime=900,
    )
    assert claims.subscriber_id == subscriber_id
    assert claims.expires_at == now + 900


def test_token_signed_by_kms_key(harness: SignInHarness) -> None:
    _, sign_in_id, code = _signed_in(harness)
    token = harness.verify(sign_in_id, code)["access_token"]
    header, claims, signature = token.split(".")

    # KMS itself accepts the signature over the JWS signing input (in DER form).
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    verdict = harness.kms.verify(
        KeyId=harness.key_arn,
        Message=f"{header}.{claims}".encode(),
        MessageType="RAW",
        Signature=raw_to_der(raw),
        SigningAlgorithm="ECDSA_SHA_256",
    )
    assert verdict["SignatureValid"] is True
    payload = base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4))
    assert f'"aud":"{AUDIENCE}"'.encode() in payload


def test_code_single_use(harness: SignInHarness) -> None:
    _, sign_in_id, code = _signed_in(harness)
    harness.verify(sign_in_id, code)

    with pytest.raises(RequestValidationError) as raised:
        harness.verify(sign_in_id, code)

    assert _problem(raised.value)[:2] == ("code", "code.used")


def test_code_expires(harness: SignInHarness) -> None:
    _, sign_in_id, code = _signed_in(harness)
    harness.clock.advance(seconds=600)

    with pytest.raises(RequestValidationError) as raised:
        harness.verify(sign_in_id, code)

    assert _problem(raised.value)[:2] == ("code", "code.expired")


def test_sign_in_expires(harness: SignInHarness) -> None:
    _, sign_in_id, code = _signed_in(harness)
    harness.clock.advance(seconds=signin.SIGN_IN_TTL_SECONDS)

    with pytest.raises(NotFoundError) as raised:
        harness.verify(sign_in_id, code)

    assert raised.value.code == "sign_in.not_found"


def test_unknown_sign_in_not_found(harness: SignInHarness) -> None:
    with pytest.raises(NotFoundError) as raised:
        harness.verify("sin_01M91B4ABG36G2R8D4PV2HM6CG", "123456")

    assert raised.value.code == "sign_in.not_found"


def test_five_wrong_codes_lock(harness: SignInHarness) -> None:
    _, sign_in_id, code = _signed_in(harness)

    left = []
    for _ in range(5):
        with pytest.raises(RequestValidationError) as raised:
            harness.verify(sign_in_id, _wrong(code))
        left.append(_problem(raised.value)[2])

    assert left == ["4", "3", "2", "1", "0"]
    with pytest.raises(RequestValidationError) as raised:
        harness.verify(sign_in_id, code)
    assert _problem(raised.value)[:2] == ("code", "code.locked")


def test_unknown_number_same_response(harness: SignInHarness) -> None:
    harness.subscriber("wang")
    harness.wait_for_resend()

    known = harness.request(PEOPLE["wang"][2])
    unknown = harness.request(STRANGER)

    def shape(result: dict[str, Any]) -> dict[str, Any]:
        return {**result, "sign_in_id": "", "verify": {**result["verify"], "path": ""}}

    assert shape(known) == shape(unknown)
    assert unknown["sign_in_id"].startswith("sin_")
    # Both wrote the same items with the same attributes, and both queued a job.
    for result in (known, unknown):
        items = harness.table.get_partition(signin.sign_in_pk(result["sign_in_id"]))
        assert sorted(items) == ["OTP", "SIGNIN"]
        assert sorted(items["SIGNIN"]) == sorted(
            harness.table.get_partition(signin.sign_in_pk(known["sign_in_id"]))["SIGNIN"]
        )
        assert harness.job(result["sign_in_id"]).kind == "sign_in_code"


def test_unknown_number_gets_no_sms(harness: SignInHarness) -> None:
    created = harness.request(STRANGER)

    outcome, code = harness.deliver(created["sign_in_id"])

    assert outcome == "skipped"
    assert code is None
    item = harness.table.get(signin.sign_in_pk(created["sign_in_id"]), "SIGNIN")
    assert item is not None and "subscriber_id" not in item


def test_unknown_number_verifies_like_wrong_code(harness: SignInHarness) -> None:
    """Every guess at a number without an account fails exactly like a wrong code."""
    _, known_id, code = _signed_in(harness)
    unknown_id = harness.request(STRANGER)["sign_in_id"]
    harness.deliver(unknown_id)

    outcomes: dict[str, list[tuple[str, str, str | None]]] = {known_id: [], unknown_id: []}
    for sign_in_id, problems in outcomes.items():
        for guess in ("123456", "654321", "000000", "111111", "999999", "222222"):
            if sign_in_id == known_id and guess == code:
                guess = "333333" if code != "333333" else "444444"
            with pytest.raises(RequestValidationError) as raised:
                harness.verify(sign_in_id, guess)
            problems.append(_problem(raised.value))

    assert outcomes[known_id] == outcomes[unknown_id]
    assert outcomes[unknown_id][-1][:2] == ("code", "code.locked")


def test_signup_code_blocks_quick_sign_in(harness: SignInHarness) -> None:
    signup_id = harness.create("wang")
    harness.send_code(signup_id)

    with pytest.raises(RateLimitedError) as raised:
        harness.request(PEOPLE["wang"][2])

    assert raised.value.code == "limit.resend_interval"
    assert 0 < raised.value.retry_after <= harness.sign_in_settings.otp_resend_interval_seconds


def test_sign_in_blocks_quick_signup(harness: SignInHarness) -> None:
    harness.request(PEOPLE["alice"][2])

    with pytest.raises(RateLimitedError) as raised:
        harness.create("alice")

    assert raised.value.code == "limit.resend_interval"


def test_unknown_number_counts_resend_interval(harness: SignInHarness) -> None:
    harness.request(STRANGER)

    with pytest.raises(RateLimitedError) as raised:
        harness.request(STRANGER)

    assert raised.value.code == "limit.resend_interval"


def test_daily_cap_shared_with_signup(harness: SignInHarness) -> None:
    harness.subscriber("wang")
    cap = harness.sign_in_settings.sms_per_number_daily_cap
    for _ in range(cap - 1):
        harness.wait_for_resend()
        harness.request(PEOPLE["wang"][2])
    harness.wait_for_resend()

    with pytest.raises(RateLimitedError) as raised:
        harness.request(PEOPLE["wang"][2])

    assert raised.value.code == "limit.daily_sms_cap"


def test_ip_limit_shared_with_signup(harness: SignInHarness) -> None:
    harness.limit(signups_per_ip_per_hour=3)
    harness.create("wang")
    harness.request(PEOPLE["alice"][2])
    harness.request(STRANGER)

    with pytest.raises(RateLimitedError) as sign_in_error:
        harness.request(PEOPLE["chen"][2])
    with pytest.raises(RateLimitedError) as signup_error:
        harness.create("chen")

    assert sign_in_error.value.code == "limit.ip"
    assert signup_error.value.code == "limit.ip"
    # Another address is not limited.
    assert harness.request(PEOPLE["chen"][2], source_ip="198.51.100.23")["status"] == "code_sent"


def test_code_budget_shared_with_signup(harness: SignInHarness) -> None:
    harness.limit(sms_otp_daily_budget=1)
    harness.create("wang")

    for mobile in (PEOPLE["alice"][2], STRANGER):
        with pytest.raises(ServiceUnavailableError) as raised:
            harness.request(mobile)
        assert raised.value.code == "limit.otp_budget_exhausted"
    assert harness.budget_alarms == 2


def test_rejected_request_writes_nothing(harness: SignInHarness) -> None:
    harness.request(STRANGER)
    before = _sign_in_count(harness)

    with pytest.raises(RateLimitedError):
        harness.request(STRANGER)

    assert _sign_in_count(harness) == before
    assert len(harness.jobs.jobs) == 1


def _sign_in_count(harness: SignInHarness) -> int:
    assert harness.service.stack is not None
    client = harness.service.stack.runtime.client("dynamodb")
    pages = client.get_paginator("scan").paginate(TableName="idsentry-local")
    return sum(
        1 for page in pages for item in page["Items"] if item["pk"]["S"].startswith("SIGNIN#")
    )


def test_redelivered_job_sends_once(harness: SignInHarness) -> None:
    _, sign_in_id, code = _signed_in(harness)

    outcome, second = harness.deliver(sign_in_id)

    assert outcome == "skipped"
    assert second is None
    assert harness.verify(sign_in_id, code)["token_type"] == "Bearer"


def test_signing_failure_keeps_code(harness: SignInHarness) -> None:
    _, sign_in_id, code = _signed_in(harness)
    working = harness.sign_in_deps.signer()

    class FailingSigner:
        key_id = working.key_id

        def sign(self, message: bytes) -> bytes:
            raise ClientError(
                {"Error": {"Code": "KMSInternalException", "Message": "unavailable"}}, "Sign"
            )

    harness.sign_in_deps = replace(harness.sign_in_deps, signer=lambda: FailingSigner())
    with pytest.raises(ClientError):
        harness.verify(sign_in_id, code)

    harness.sign_in_deps = replace(harness.sign_in_deps, signer=lambda: working)
    assert harness.verify(sign_in_id, code)["token_type"] == "Bearer"


def test_deleted_account_not_signed_in(harness: SignInHarness) -> None:
    subscriber_id, sign_in_id, code = _signed_in(harness)
    harness.table.delete(f"SUB#{subscriber_id}", "PROFILE")

    with pytest.raises(NotFoundError) as raised:
        harness.verify(sign_in_id, code)

    assert raised.value.code == "sign_in.not_found"


# ---------------------------------------------------------------------------- account holder


def _account(
    harness: SignInHarness, subscriber_id: str, mobile: str, added_at: int, profile: bool = True
) -> None:
    """Write the items that verification writes for a subscriber's mobile number."""
    fingerprints = {fp.version: fp.value for fp in harness.pepper.fingerprints("mobile", mobile)}
    pk = f"SUB#{subscriber_id}"
    if profile:
        harness.table.put({"pk": pk, "sk": "PROFILE", "subscriber_id": subscriber_id})
    harness.table.put(
        {
            "pk": pk,
            "sk": "IDENT#mobile",
            "kind": "mobile",
            "fingerprints": fingerprints,
            "added_at": added_at,
        }
    )
    for fp in harness.pepper.fingerprints("mobile", mobile):
        harness.table.update(
            f"WATCH#mobile#{fp.version}#{fp.value}",
            "WATCH",
            "ADD subscriber_ids :ids",
            values={":ids": {subscriber_id}},
        )


OLD = "sbr_01M91B4ABG36G2R8D4PV2HM6C1"
NEW = "sbr_01M91B4ABG36G2R8D4PV2HM6C2"
MOVED = "sbr_01M91B4ABG36G2R8D4PV2HM6C3"


def test_holder_is_latest_verifier(harness: SignInHarness) -> None:
    mobile = PEOPLE["wang"][2]
    _account(harness, OLD, mobile, added_at=1_000)
    _account(harness, NEW, mobile, added_at=2_000)

    holder = signin.account_holder(harness.table, harness.pepper.fingerprint("mobile", mobile))

    assert holder == NEW


def test_holder_skips_deleted_account(harness: SignInHarness) -> None:
    mobile = PEOPLE["wang"][2]
    _account(harness, OLD, mobile, added_at=1_000)
    _account(harness, NEW, mobile, added_at=2_000, profile=False)

    holder = signin.account_holder(harness.table, harness.pepper.fingerprint("mobile", mobile))

    assert holder == OLD


def test_holder_skips_changed_number(harness: SignInHarness) -> None:
    mobile = PEOPLE["wang"][2]
    _account(harness, OLD, mobile, added_at=1_000)
    _account(harness, MOVED, mobile, added_at=3_000)
    # MOVED changed their number since: the watch item still names them.
    _account(harness, MOVED, PEOPLE["alice"][2], added_at=4_000)

    holder = signin.account_holder(harness.table, harness.pepper.fingerprint("mobile", mobile))

    assert holder == OLD


def test_no_holder_for_unwatched_number(harness: SignInHarness) -> None:
    fingerprint = harness.pepper.fingerprint("mobile", STRANGER)

    assert signin.account_holder(harness.table, fingerprint) is None
