"""Notification faults the reliability suite found: retries and the daily cap, timeouts, overflow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from idsentry.adapters.sms import TwilioSms
from idsentry.errors import ProviderError
from idsentry.models.jobs import PaymentNoticeJob
from idsentry.services import notify
from idsentry.services.delivery import (
    OVERFLOW_RESEND_DELAY_SECONDS,
    StatusCallback,
    resend_overflowed,
)
from idsentry.services.ledger import (
    STALE_PENDING_SECONDS,
    DeliveryInFlightError,
    Ledger,
    link_provider_id,
)
from infra.chaos import faults
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_notification_ledger import _payment_job, _subscriber
from tests.integration.test_signup_service import Harness, _clear_table

pytestmark = pytest.mark.integration

# Short, so that a stalled create costs the test little time.
TIMEOUT_SECONDS = 0.5
STALL_SECONDS = 1.0


@pytest.fixture
def harness(local_service: LocalService) -> Iterator[Harness]:
    # Each test sends to the same number: a fresh emulator repeats no text within its 24 hours.
    assert local_service.twilio is not None
    local_service.twilio.reset()
    # Real time: the Twilio emulator stamps messages with it, and find_sent compares them.
    yield Harness(local_service, MovableClock(datetime.now(UTC)))
    assert local_service.twilio is not None
    local_service.twilio.resume()
    _clear_table(local_service)


class FlakySms:
    """Fails the first `failures` sends with a transient error, then sends through `inner`."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def send(self, *args: Any, **kwargs: Any) -> str:
        if self.failures:
            self.failures -= 1
            raise ProviderError("twilio", "HTTP 500 code 20500", transient=True, code="20500")
        return str(self.inner.send(*args, **kwargs))

    def status(self, message_id: str) -> str | None:
        return self.inner.status(message_id)  # type: ignore[no-any-return]

    def find_sent(self, to: str, body: str, since: int) -> str | None:
        return self.inner.find_sent(to, body, since)  # type: ignore[no-any-return]


class RecordingQueue:
    """Collects jobs and their delays instead of sending them to SQS."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, int]] = []

    def send(self, job: Any, delay_seconds: int = 0) -> None:
        self.sent.append((job, delay_seconds))


def _sms_to(harness: Harness, number: str, after: int = 0) -> list[dict[str, Any]]:
    """Return the SMS sent to `number`, leaving out the first `after` (such as the signup code)."""
    assert harness.service.twilio is not None
    messages = harness.service.twilio.messages()
    return [message for message in messages[after:] if message["to"] == number]


def _sms_count(harness: Harness) -> int:
    assert harness.service.twilio is not None
    return len(harness.service.twilio.messages())


def _mobile(harness: Harness, subscriber_id: str) -> str:
    profile = harness.table.get(f"SUB#{subscriber_id}", "PROFILE")
    assert profile is not None
    key = harness.keys.get(subscriber_id)
    from idsentry.crypto import decrypt_field

    return decrypt_field(key, subscriber_id, profile["mobile_enc"], purpose="notification")


def _short_timeout_sms(harness: Harness) -> TwilioSms:
    assert harness.service.twilio is not None
    return TwilioSms(
        harness.service.twilio_account_sid,
        harness.service.twilio_auth_token,
        harness.service.twilio_messaging_service_sid,
        base_url=harness.service.twilio.base_url,
        timeout_seconds=TIMEOUT_SECONDS,
    )


def _message_key(job: PaymentNoticeJob) -> str:
    return f"invoice:{job.invoice_id}:failed:1"


def test_retries_take_one_daily_slot(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    job = _payment_job(harness, subscriber_id)
    flaky = FlakySms(harness.notifier.sms(), failures=harness.notifier.sms_daily_cap)
    notifier = replace(harness.notifier, sms=lambda: flaky)

    before = _sms_count(harness)

    for _ in range(harness.notifier.sms_daily_cap):
        with pytest.raises(ProviderError):
            notify.process_job(notifier, job)
    outcome = notify.process_job(notifier, job)

    fingerprint = harness.table.get(f"SUB#{subscriber_id}", "IDENT#mobile")
    assert fingerprint is not None
    window = harness.table.get(f"SMSWIN#{fingerprint['fingerprints']['1']}", "SMSWIN")
    assert window is not None
    notices = [send for send in window["sends"] if send.startswith("notice:")]
    assert outcome == "sent"
    assert len(notices) == 1
    assert len(_sms_to(harness, _mobile(harness, subscriber_id), before)) == 1


@pytest.mark.parametrize("created", [True, False])
def test_timed_out_sms_sent_once(harness: Harness, created: bool) -> None:
    assert harness.service.twilio is not None
    subscriber_id = _subscriber(harness)
    mobile = _mobile(harness, subscriber_id)
    job = _payment_job(harness, subscriber_id)
    slow = _short_timeout_sms(harness)
    notifier = replace(harness.notifier, sms=lambda: slow)
    before = _sms_count(harness)
    harness.service.twilio.stall_next_creates(1, STALL_SECONDS, created=created)

    with pytest.raises(ProviderError) as timed_out:
        notify.process_job(notifier, job)
    with pytest.raises(DeliveryInFlightError):
        notify.process_job(notifier, job)
    harness.clock.advance(seconds=STALE_PENDING_SECONDS + 1)
    outcome = notify.process_job(notifier, job)
    again = notify.process_job(notifier, job)

    record = Ledger(harness.table, lambda: 0).record(_message_key(job), "sms")
    assert timed_out.value.outcome_unknown
    assert (outcome, again) == ("skipped" if created else "sent", "skipped")
    assert record is not None and record["state"] == "sent"
    assert [message["sid"] for message in _sms_to(harness, mobile, before)] == [
        record["provider_id"]
    ]


def test_overflowed_sms_sent_again_once(harness: Harness) -> None:
    twilio = harness.service.twilio
    assert twilio is not None
    subscriber_id = _subscriber(harness)
    mobile = _mobile(harness, subscriber_id)
    job = _payment_job(harness, subscriber_id)
    before = _sms_count(harness)
    # Paused, the emulator sends no callback of its own while the test plays Twilio's.
    twilio.pause()
    twilio.overflow_next_creates(1)
    notify.process_job(harness.notifier, job)
    [first] = _sms_to(harness, mobile, before)
    overflowed = StatusCallback(
        message_sid=first["sid"],
        status="failed",
        error_code="30001",
        to=mobile,
        message_key=_message_key(job),
        channel="sms",
    )
    queue = RecordingQueue()

    queued = resend_overflowed(harness.table, queue, overflowed)  # type: ignore[arg-type]
    [(copy, delay)] = queue.sent
    resent = notify.process_job(harness.notifier, copy)
    repeated = resend_overflowed(harness.table, queue, overflowed)  # type: ignore[arg-type]
    copy_again = notify.process_job(harness.notifier, copy)

    record = Ledger(harness.table, lambda: 0).record(_message_key(job), "sms")
    messages = _sms_to(harness, mobile, before)
    assert queued is True
    assert (copy.resend_sms_of, copy.invoice_id, delay) == (
        first["sid"],
        job.invoice_id,
        OVERFLOW_RESEND_DELAY_SECONDS,
    )
    assert (resent, repeated, copy_again) == ("sent", False, "skipped")
    assert len(messages) == 2
    assert record is not None
    assert (record["state"], record["provider_id"]) == ("sent", messages[-1]["sid"])


def test_overflow_of_other_message_not_resent(harness: Harness) -> None:
    queue = RecordingQueue()
    unknown = StatusCallback(message_sid="SM" + "0" * 32, status="failed", error_code="30001")
    expired = StatusCallback(message_sid="SM" + "1" * 32, status="failed", error_code="30036")

    assert resend_overflowed(harness.table, queue, unknown) is False  # type: ignore[arg-type]
    assert resend_overflowed(harness.table, queue, expired) is False  # type: ignore[arg-type]
    assert queue.sent == []


def test_refused_email_outcome_survives_throttling(harness: Harness) -> None:
    ledger = Ledger(harness.table, lambda: int(harness.clock().timestamp()), sleep=lambda _: None)

    def refuse() -> str:
        raise ProviderError("ses", "TooManyRequestsException", transient=True)

    def marks_retry(params: faults.Params) -> bool:
        # The claim names `retry` in its condition; the outcome write sets the state to it.
        values = params.get("ExpressionAttributeValues") or {}
        return "#state = :pending" not in params["UpdateExpression"] and {"S": "retry"} in (
            values.values()
        )

    # DynamoDB throttles the write that records the refusal, right after SES refused.
    with (
        faults.dynamodb_throttling(harness.dynamodb, "UpdateItem", 1, match=marks_retry) as fault,
        pytest.raises(ProviderError),
    ):
        ledger.deliver("test:throttled", "email", "sbr_throttled", refuse)
    record = ledger.record("test:throttled", "email")
    retried = ledger.deliver("test:throttled", "email", "sbr_throttled", lambda: "ses-message")

    assert fault.injected == 1
    assert record is not None and record["state"] == "retry"
    assert retried.outcome == "sent"


class CallbackFirstSms:
    """Sends through `inner`, then plays Twilio's 30001 callback before the notifier records it."""

    def __init__(self, inner: Any, harness: Harness, message_key: str, queue: Any) -> None:
        self.inner = inner
        self.harness = harness
        self.message_key = message_key
        self.queue = queue

    def send(self, to: str, *args: Any, **kwargs: Any) -> str:
        sid = str(self.inner.send(to, *args, **kwargs))
        now = int(self.harness.clock().timestamp())
        link_provider_id(self.harness.table, self.message_key, "sms", sid, now)
        callback = StatusCallback(sid, "failed", "30001", to, self.message_key, "sms")
        resend_overflowed(self.harness.table, self.queue, callback)
        return sid

    def status(self, message_id: str) -> str | None:
        return self.inner.status(message_id)  # type: ignore[no-any-return]


def test_overflow_reported_before_the_send_is_recorded(harness: Harness) -> None:
    twilio = harness.service.twilio
    assert twilio is not None
    subscriber_id = _subscriber(harness)
    mobile = _mobile(harness, subscriber_id)
    job = _payment_job(harness, subscriber_id)
    queue = RecordingQueue()
    early = CallbackFirstSms(harness.notifier.sms(), harness, _message_key(job), queue)
    before = _sms_count(harness)
    twilio.pause()
    twilio.overflow_next_creates(1)

    first = notify.process_job(replace(harness.notifier, sms=lambda: early), job)
    [(copy, _)] = queue.sent
    resent = notify.process_job(harness.notifier, copy)

    assert (first, resent) == ("sent", "sent")
    assert len(_sms_to(harness, mobile, before)) == 2
