"""The signup service against moto server and the emulators, with a clock the tests move."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.email import SesEmail
from idsentry.adapters.keys import DataKeyStore
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.realname import HttpIdentityVerifier
from idsentry.adapters.sms import TwilioSms
from idsentry.adapters.table import MainTable
from idsentry.crypto import Pepper
from idsentry.errors import (
    NotFoundError,
    ProviderError,
    RequestValidationError,
    ServiceUnavailableError,
)
from idsentry.models.jobs import OtpJob
from idsentry.models.plans import PlansConfig
from idsentry.models.signup import parse_signup
from idsentry.services import limits, notify, signup
from idsentry.services.checkout import CheckoutDeps, start_checkout
from idsentry.services.notify import NotifierDeps
from idsentry.settings.codes import SignupSettings
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock, table_item

pytestmark = pytest.mark.integration

CONSENTS = {
    kind: {"accepted": True, "version": "2026-12-01"}
    for kind in ("terms", "sensitive_personal_information", "cross_border_transfer")
}
PEOPLE = {
    "wang": ("王小明", "110105199003071239", "+8613800138001"),
    "alice": ("Alice Li", "310104198512120023", "+8613900139002"),
    "chen": ("陈静", "320103197506187775", "+8613600136006"),
}


class FlakyTransactions:
    """A DynamoDB client whose next TransactWriteItems calls are cancelled with a conflict."""

    def __init__(self, client: Any, failures: int) -> None:
        self._client = client
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> Any:
        if self.failures:
            self.failures -= 1
            reasons = [{"Code": "None"} for _ in request["TransactItems"]]
            reasons[0] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing"}
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )
        return self._client.transact_write_items(**request)


class RacingTransactions:
    """A DynamoDB client that runs `race` once, just before its next TransactWriteItems call."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.race: Callable[[], None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> Any:
        race, self.race = self.race, None
        if race is not None:
            race()
        return self._client.transact_write_items(**request)


class Harness:
    """Signup and notifier dependencies wired to the local stack, sharing one clock."""

    def __init__(self, service: LocalService, clock: MovableClock, dynamodb: Any = None) -> None:
        assert service.stack is not None and service.realname is not None
        runtime = service.stack.runtime
        environment = runtime.environment
        self.service = service
        self.clock = clock

        self.dynamodb = dynamodb or runtime.client("dynamodb")
        self.pepper = Pepper.from_secret(service.pepper)
        self.table = MainTable(environment["TABLE_NAME"], self.dynamodb)
        self.keys = DataKeyStore(
            environment["KEY_TABLE_NAME"],
            environment["DATA_KEY_ARN"],
            self.dynamodb,
            runtime.client("kms"),
        )
        self.queue_url = environment["NOTIFICATION_QUEUE_URL"]
        self.sqs = runtime.client("sqs")
        self.settings = SignupSettings.from_environ(environment)

        self.deps = signup.SignupDeps(
            settings=self.settings,
            table=self.table,
            keys=self.keys,
            pepper=lambda: self.pepper,
            verifier=lambda: HttpIdentityVerifier(
                service.realname.base_url, service.realname_api_key
            ),  # type: ignore[union-attr]
            publisher=EventPublisher(environment["EVENT_BUS_NAME"], runtime.client("events")),
            queue=JobQueue(self.queue_url, self.sqs),
            clock=clock,
            on_otp_budget_exhausted=lambda: None,
        )

        assert service.twilio is not None
        self.notifier = NotifierDeps(
            table=self.table,
            keys=self.keys,
            pepper=lambda: self.pepper,
            sms=lambda: TwilioSms(
                service.twilio_account_sid,
                service.twilio_auth_token,
                service.twilio_messaging_service_sid,
                base_url=service.twilio.base_url,  # type: ignore[union-attr]
            ),
            email=lambda: SesEmail("no-reply@idsentry.local", runtime.client("sesv2")),
            clock=clock,
            public_base_url=service.public_base_url,
            account_page_url=f"{service.signup_page_url}account/",
        )

    def create(self, person: str, **overrides: Any) -> str:
        name, id_number, mobile = PEOPLE[person]
        body = {
            "name": name,
            "id_number": id_number,
            "mobile": mobile,
            "email": f"{person}@example.com",
            "plan": "monthly",
            "consents": CONSENTS,
            **overrides,
        }
        valid = parse_signup(body, allowed_regions=("CN",), cross_border=True)
        result = signup.create_signup(self.deps, valid, "127.0.0.1", "zh-CN")
        return str(result["signup_id"])

    def send_code(self, signup_id: str) -> str:
        """Run the notifier's job for the signup and return the code from the Twilio emulator."""
        item = self.table.get(f"SIGNUP#{signup_id}", "SIGNUP")
        assert item is not None
        assert self.service.twilio is not None
        before = len(self.service.twilio.messages())
        outcome = notify.process_job(
            self.notifier,
            OtpJob(job_id=f"job_{item['code_id']}", signup_id=signup_id, code_id=item["code_id"]),
        )
        assert outcome == "sent"
        messages = self.service.twilio.messages()
        assert len(messages) == before + 1
        match = re.search(r"\d{6}", messages[-1]["body"])
        assert match is not None
        return match.group(0)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def harness(local_service: LocalService, clock: MovableClock) -> Iterator[Harness]:
    assert local_service.stack is not None
    local_service.stack.runtime.client("dynamodb")
    yield Harness(local_service, clock)
    # Each test owns the people it signs up: clear the main table between tests.
    _clear_table(local_service)


def _clear_table(service: LocalService) -> None:
    assert service.stack is not None
    client = service.stack.runtime.client("dynamodb")
    for page in client.get_paginator("scan").paginate(TableName="idsentry-local"):
        for item in page["Items"]:
            client.delete_item(TableName="idsentry-local", Key={"pk": item["pk"], "sk": item["sk"]})


def _code_field(error: RequestValidationError) -> str:
    return error.problems[0].code


def test_code_expires_before_ttl_deletes(harness: Harness) -> None:
    signup_id = harness.create("wang")
    code = harness.send_code(signup_id)

    harness.clock.advance(seconds=600)

    assert table_item(harness.service, f"SIGNUP#{signup_id}", "OTP") is not None
    with pytest.raises(RequestValidationError) as raised:
        signup.verify_signup(harness.deps, signup_id, code)
    assert _code_field(raised.value) == "code.expired"


def test_code_valid_just_before_expiry(harness: Harness) -> None:
    signup_id = harness.create("wang")
    code = harness.send_code(signup_id)

    harness.clock.advance(seconds=599)

    result = signup.verify_signup(harness.deps, signup_id, code)
    assert result["status"] == "pending_payment"


def test_code_single_use(harness: Harness) -> None:
    signup_id = harness.create("wang")
    code = harness.send_code(signup_id)
    first = signup.verify_signup(harness.deps, signup_id, code)

    replay = signup.verify_signup(harness.deps, signup_id, code)

    assert replay == first
    otp = table_item(harness.service, f"SIGNUP#{signup_id}", "OTP")
    assert otp is not None and otp["used"] == {"BOOL": True}
    with pytest.raises(NotFoundError):
        signup.verify_signup(harness.deps, signup_id, "000000" if code != "000000" else "111111")


def test_code_burned_after_five_wrong(harness: Harness) -> None:
    signup_id = harness.create("wang")
    code = harness.send_code(signup_id)
    wrong = "000000" if code != "000000" else "111111"

    left = []
    for _ in range(5):
        with pytest.raises(RequestValidationError) as raised:
            signup.verify_signup(harness.deps, signup_id, wrong)
        left.append(raised.value.problems[0].params["attempts_left"])

    assert left == ["4", "3", "2", "1", "0"]
    with pytest.raises(RequestValidationError) as raised:
        signup.verify_signup(harness.deps, signup_id, code)
    assert _code_field(raised.value) == "code.locked"


def test_code_bound_to_its_signup(harness: Harness) -> None:
    first = harness.create("wang")
    second = harness.create("alice")
    code_first = harness.send_code(first)
    code_second = harness.send_code(second)
    if code_first == code_second:
        pytest.skip("both random codes are equal, so binding cannot be observed this run")

    with pytest.raises(RequestValidationError) as raised:
        signup.verify_signup(harness.deps, second, code_first)

    assert _code_field(raised.value) == "code.incorrect"


def test_redelivered_code_job_sends_once(harness: Harness) -> None:
    signup_id = harness.create("wang")
    harness.send_code(signup_id)
    item = harness.table.get(f"SIGNUP#{signup_id}", "SIGNUP")
    assert item is not None
    job = OtpJob(job_id=f"job_{item['code_id']}", signup_id=signup_id, code_id=item["code_id"])

    outcome = notify.process_job(harness.notifier, job)

    assert outcome == "skipped"


def test_cancelled_transaction_writes_nothing(
    local_service: LocalService, clock: MovableClock
) -> None:
    assert local_service.stack is not None
    flaky = FlakyTransactions(local_service.stack.runtime.client("dynamodb"), failures=0)
    harness = Harness(local_service, clock, dynamodb=flaky)
    signup_id = harness.create("chen")
    code = harness.send_code(signup_id)
    flaky.failures = 1

    with pytest.raises(ServiceUnavailableError) as raised:
        signup.verify_signup(harness.deps, signup_id, code)

    assert raised.value.code == "signup.retry"
    pending = harness.table.get(f"SIGNUP#{signup_id}", "SIGNUP")
    assert pending is not None and pending["status"] == "pending"
    otp = harness.table.get(f"SIGNUP#{signup_id}", "OTP")
    assert otp is not None and otp["used"] is False
    claim_fp = harness.pepper.fingerprint("id_number", PEOPLE["chen"][1])
    assert (
        harness.table.get(signup.claim_pk("id_number", claim_fp.version, claim_fp.value), "CLAIM")
        is None
    )

    retried = signup.verify_signup(harness.deps, signup_id, code)
    assert retried["status"] == "pending_payment"
    _clear_table(local_service)


def test_concurrent_verify_same_response(local_service: LocalService, clock: MovableClock) -> None:
    assert local_service.stack is not None
    racing = RacingTransactions(local_service.stack.runtime.client("dynamodb"))
    harness = Harness(local_service, clock, dynamodb=racing)
    other = Harness(local_service, clock)
    signup_id = harness.create("wang")
    code = harness.send_code(signup_id)
    committed_first: dict[str, Any] = {}
    # A second submit of the same code commits between this request's checks and its commit.
    racing.race = lambda: committed_first.update(signup.verify_signup(other.deps, signup_id, code))

    result = signup.verify_signup(harness.deps, signup_id, code)

    assert committed_first["status"] == "pending_payment"
    assert result == committed_first
    profiles = [
        item
        for page in local_service.stack.runtime.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName="idsentry-local")
        for item in page["Items"]
        if item["sk"]["S"] == "PROFILE" and item.get("signup_id", {}).get("S") == signup_id
    ]
    assert len(profiles) == 1
    _clear_table(local_service)


def test_cancelled_signup_transaction_counts_nothing(
    local_service: LocalService, clock: MovableClock
) -> None:
    assert local_service.stack is not None
    flaky = FlakyTransactions(local_service.stack.runtime.client("dynamodb"), failures=1)
    harness = Harness(local_service, clock, dynamodb=flaky)
    mobile = PEOPLE["wang"][2]

    with pytest.raises(ServiceUnavailableError):
        harness.create("wang")

    window_pk = f"SMSWIN#{harness.pepper.fingerprint('mobile', mobile).value}"
    assert harness.table.get(window_pk, "SMSWIN") is None
    signup_id = harness.create("wang")
    assert harness.table.get(f"SIGNUP#{signup_id}", "SIGNUP") is not None
    _clear_table(local_service)


def test_code_budget_spares_notice_sms(harness: Harness) -> None:
    harness.deps = replace(
        harness.deps, settings=harness.settings.model_copy(update={"sms_otp_daily_budget": 1})
    )
    harness.create("wang")

    with pytest.raises(ServiceUnavailableError) as raised:
        harness.create("alice")

    assert raised.value.code == "limit.otp_budget_exhausted"
    # Notices (alerts, payment problems) are decided per number, never by the code budget.
    window = harness.table.get(
        f"SMSWIN#{harness.pepper.fingerprint('mobile', PEOPLE['alice'][2]).value}", "SMSWIN"
    )
    sends = [] if window is None else limits.parse_sends(window["sends"])
    decision = limits.decide_notice_send(
        sends, int(harness.clock().timestamp()), harness.settings.sms_per_number_daily_cap
    )
    assert decision.allowed


def test_events_reach_the_bus(harness: Harness) -> None:
    assert harness.service.stack is not None
    signup_id = harness.create("wang")
    code = harness.send_code(signup_id)
    signup.verify_signup(harness.deps, signup_id, code)

    messages = harness.sqs.receive_message(QueueUrl=harness.queue_url, MaxNumberOfMessages=10)
    kinds = sorted(json.loads(m["Body"])["kind"] for m in messages.get("Messages", []))
    assert "email_confirmation" in kinds


class RecordingHumanCheck:
    """A human check that accepts only the token "human" and records what it saw."""

    def __init__(self) -> None:
        self.tokens: list[str | None] = []

    def verify(self, token: str | None, source_ip: str) -> bool:
        self.tokens.append(token)
        return token == "human"


def test_human_check_runs_before_limits(harness: Harness) -> None:
    check = RecordingHumanCheck()
    harness.deps = replace(harness.deps, human_check=check)
    mobile = PEOPLE["wang"][2]

    with pytest.raises(signup.HumanCheckFailedError):
        harness.create("wang", human_check_token="robot")

    window_pk = f"SMSWIN#{harness.pepper.fingerprint('mobile', mobile).value}"
    assert harness.table.get(window_pk, "SMSWIN") is None
    assert harness.create("wang", human_check_token="human")
    assert check.tokens == ["robot", "human"]


class FakeCheckout:
    """Stripe's checkout writes in memory, keyed by idempotency key as Stripe does."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}

    def price_id(self, lookup_key: str) -> str:
        return f"price_{lookup_key}"

    def create_customer(self, params: dict[str, Any], idempotency_key: str) -> str:
        self.customers.setdefault(idempotency_key, {"id": f"cus_{len(self.customers)}", **params})
        return str(self.customers[idempotency_key]["id"])

    def create_checkout_session(
        self, params: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            raise ProviderError("stripe", "APIConnectionError", transient=True)
        session = {
            "id": f"cs_{len(self.sessions)}",
            "url": f"https://checkout.test/{len(self.sessions)}",
            **params,
        }
        return self.sessions.setdefault(idempotency_key, session)


def _with_checkout(harness: Harness, fake: FakeCheckout) -> None:
    plans = PlansConfig.model_validate(
        {
            "plans": {
                "monthly": {"mode": "subscription", "prices": {"cny": "idsentry_monthly_cny"}},
                "annual": {"mode": "subscription", "prices": {"cny": "idsentry_annual_cny"}},
            }
        }
    )
    deps = CheckoutDeps(
        table=harness.table,
        stripe=fake,
        plans=plans,
        success_url="http://127.0.0.1/v1/checkout/success",
        cancel_url="http://127.0.0.1/v1/checkout/cancel",
    )
    harness.deps = replace(
        harness.deps,
        checkout=lambda subscriber, signup_id, plan, locale: start_checkout(
            deps, subscriber, signup_id, plan, locale
        ),
    )


def test_verify_returns_checkout_url(harness: Harness) -> None:
    fake = FakeCheckout()
    _with_checkout(harness, fake)
    signup_id = harness.create("wang")
    code = harness.send_code(signup_id)

    result = signup.verify_signup(harness.deps, signup_id, code)

    assert result["next_step"] == {
        "type": "payment",
        "available": True,
        "checkout_url": "https://checkout.test/0",
    }
    session = fake.sessions[f"checkout-{signup_id}"]
    assert session["client_reference_id"] == result["subscriber_id"]
    assert session["subscription_data"]["metadata"]["subscriber_id"] == result["subscriber_id"]
    assert session["line_items"] == [{"price": "price_idsentry_monthly_cny", "quantity": 1}]
    assert session["locale"] == "zh"
    profile = harness.table.get(f"SUB#{result['subscriber_id']}", "PROFILE")
    assert profile is not None and profile["checkout_session_id"] == "cs_0"
    link = harness.table.get(f"STRIPECUS#{profile['stripe_customer_id']}", "LINK")
    assert link is not None and link["subscriber_id"] == result["subscriber_id"]


def test_checkout_outage_retried_with_code(harness: Harness) -> None:
    fake = FakeCheckout(failures=1)
    _with_checkout(harness, fake)
    signup_id = harness.create("wang")
    code = harness.send_code(signup_id)

    with pytest.raises(ServiceUnavailableError) as raised:
        signup.verify_signup(harness.deps, signup_id, code)
    retried = signup.verify_signup(harness.deps, signup_id, code)
    replayed = signup.verify_signup(harness.deps, signup_id, code)

    assert raised.value.code == "payment.retry"
    assert retried["next_step"]["checkout_url"] == replayed["next_step"]["checkout_url"]
    assert len(fake.customers) == 1
    assert len(fake.sessions) == 1


def test_verification_keeps_the_time_zone_for_quiet_hours(harness: Harness) -> None:
    from idsentry.services.preferences import DEFAULT_TIMEZONE, load_preferences

    abroad = harness.create("wang", timezone="Europe/London")
    at_home = harness.create("chen")

    subscriber_ids = [
        str(
            signup.verify_signup(harness.deps, signup_id, harness.send_code(signup_id))[
                "subscriber_id"
            ]
        )
        for signup_id in (abroad, at_home)
    ]

    zones = [load_preferences(harness.table, sid).timezone for sid in subscriber_ids]
    assert zones == ["Europe/London", DEFAULT_TIMEZONE]
