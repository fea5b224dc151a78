"""The delivery ledger under redelivery, concurrency and a crash, and refused numbers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from idsentry.errors import ProviderError
from idsentry.models.jobs import PaymentNoticeJob
from idsentry.services import dunning, notify, signup
from idsentry.services.ledger import (
    STALE_PENDING_SECONDS,
    UNKNOWN_INDEX_KEY,
    DeliveryInFlightError,
    Ledger,
    link_provider_id,
)
from idsentry.services.preferences import load_preferences, set_sms_alerts
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_payment_notices import INVOICE, RecordingQueue
from tests.integration.test_signup_service import Harness, _clear_table
from tests.unit.test_event_samples import EVENTS_DIR, load_sample

pytestmark = pytest.mark.integration

GRACE = 7 * 24 * 3600


class CrashAfterSend(Exception):
    """Stands in for a Lambda that died between the provider's reply and the ledger write."""


class RefusingSms:
    """An SMS sender that fails every send with one Twilio error code."""

    def __init__(self, code: str, transient: bool = False) -> None:
        self.code = code
        self.transient = transient
        self.attempts = 0

    def send(self, *args: Any, **kwargs: Any) -> str:
        self.attempts += 1
        raise ProviderError("twilio", f"code {self.code}", transient=self.transient, code=self.code)

    def status(self, message_id: str) -> str | None:
        return None


@pytest.fixture
def harness(local_service: LocalService) -> Iterator[Harness]:
    yield Harness(local_service, MovableClock())
    _clear_table(local_service)


def _now(harness: Harness) -> int:
    return int(harness.clock().timestamp())


def _ledger(harness: Harness) -> Ledger:
    sms = harness.notifier.sms()
    return Ledger(harness.table, lambda: _now(harness), lambda channel, sid: sms.status(sid))


def _subscriber(harness: Harness, person: str = "wang") -> str:
    signup_id = harness.create(person)
    result = signup.verify_signup(harness.deps, signup_id, harness.send_code(signup_id))
    return str(result["subscriber_id"])


def _payment_job(harness: Harness, subscriber_id: str) -> PaymentNoticeJob:
    queue = RecordingQueue()
    dunning.record_failure(
        harness.table,
        queue,  # type: ignore[arg-type]
        subscriber_id,
        INVOICE,
        _now(harness) + GRACE,
        _now(harness),
    )
    job: PaymentNoticeJob = queue.jobs[0]
    return job


def _sms_count(harness: Harness) -> int:
    assert harness.service.twilio is not None
    return len(harness.service.twilio.messages())


def _send_real_sms(harness: Harness, body: str) -> str:
    return harness.notifier.sms().send("+8613800138000", body, None)


def test_redelivered_key_sends_once(harness: Harness) -> None:
    ledger = _ledger(harness)
    before = _sms_count(harness)

    first = ledger.deliver("test:once", "sms", "sub_x", lambda: _send_real_sms(harness, "one"))
    second = ledger.deliver("test:once", "sms", "sub_x", lambda: _send_real_sms(harness, "one"))

    assert (first.outcome, second.outcome) == ("sent", "skipped")
    assert _sms_count(harness) == before + 1


def test_second_worker_waits_while_first_sends(harness: Harness) -> None:
    # The second worker runs while the first is between its claim and the provider's reply.
    # The claim's atomicity is DynamoDB's conditional write, so a fixed order tests the ledger
    # itself, where racing threads would depend on timing.
    ledger = _ledger(harness)
    sends: list[str] = []
    second: list[str] = []

    def first_send() -> str:
        sends.append("first")
        try:
            ledger.deliver("test:race", "email", "sub_x", lambda: sends.append("second") or "x")
        except DeliveryInFlightError:
            second.append("in_flight")
        return "SMfake"

    first = ledger.deliver("test:race", "email", "sub_x", first_send)
    after = ledger.deliver("test:race", "email", "sub_x", lambda: "SMnever")

    assert first.outcome == "sent"
    assert second == ["in_flight"]
    assert after.outcome == "skipped"
    assert sends == ["first"]


def test_fresh_claim_makes_the_retry_wait(harness: Harness) -> None:
    ledger = _ledger(harness)

    def crash() -> str:
        raise CrashAfterSend

    with pytest.raises(CrashAfterSend):
        ledger.deliver("test:fresh", "sms", "sub_x", crash)

    with pytest.raises(DeliveryInFlightError):
        ledger.deliver("test:fresh", "sms", "sub_x", lambda: "SMnever")


def test_crash_after_send_settles_from_the_callback_id(harness: Harness) -> None:
    ledger = _ledger(harness)
    before = _sms_count(harness)
    sent: list[str] = []

    def send_then_crash() -> str:
        sent.append(_send_real_sms(harness, "crash"))
        raise CrashAfterSend

    with pytest.raises(CrashAfterSend):
        ledger.deliver("test:crash", "sms", "sub_x", send_then_crash)
    # The status callback names the ledger record in its URL and carries the message sid.
    link_provider_id(harness.table, "test:crash", "sms", sent[0], _now(harness))
    harness.clock.advance(seconds=STALE_PENDING_SECONDS + 1)

    retried = ledger.deliver("test:crash", "sms", "sub_x", lambda: _send_real_sms(harness, "crash"))

    record = ledger.record("test:crash", "sms")
    assert retried.outcome == "skipped"
    assert record is not None
    assert (record["state"], record["provider_id"]) == ("sent", sent[0])
    assert _sms_count(harness) == before + 1


def test_crash_without_an_id_is_unknown_and_never_resent(harness: Harness) -> None:
    ledger = _ledger(harness)

    def send_then_crash() -> str:
        _send_real_sms(harness, "lost")
        raise CrashAfterSend

    with pytest.raises(CrashAfterSend):
        ledger.deliver("test:lost", "sms", "sub_x", send_then_crash)
    harness.clock.advance(seconds=STALE_PENDING_SECONDS + 1)
    before = _sms_count(harness)

    retried = ledger.deliver("test:lost", "sms", "sub_x", lambda: _send_real_sms(harness, "lost"))
    again = ledger.deliver("test:lost", "sms", "sub_x", lambda: _send_real_sms(harness, "lost"))

    record = ledger.record("test:lost", "sms")
    assert (retried.outcome, again.outcome) == ("unknown", "skipped")
    assert record is not None and record["state"] == "unknown"
    assert record["gsi1pk"] == UNKNOWN_INDEX_KEY
    assert _sms_count(harness) == before


def test_transient_error_allows_one_later_send(harness: Harness) -> None:
    assert harness.service.twilio is not None
    ledger = _ledger(harness)
    harness.service.twilio.fail_next_creates(1, status=429)
    before = _sms_count(harness)

    with pytest.raises(ProviderError) as raised:
        ledger.deliver("test:busy", "sms", "sub_x", lambda: _send_real_sms(harness, "busy"))
    record = ledger.record("test:busy", "sms")
    retried = ledger.deliver("test:busy", "sms", "sub_x", lambda: _send_real_sms(harness, "busy"))

    assert raised.value.transient
    assert record is not None and record["state"] == "retry"
    assert retried.outcome == "sent"
    assert _sms_count(harness) == before + 1


def test_opted_out_number_gets_email_and_no_more_sms(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    refusing = RefusingSms("21610")
    notifier = replace(harness.notifier, sms=lambda: refusing)
    emails_before = len(harness.service.sent_emails())

    outcome = notify.process_job(notifier, _payment_job(harness, subscriber_id))
    repeated = notify.process_job(notifier, _payment_job(harness, subscriber_id))

    preferences = load_preferences(harness.table, subscriber_id)
    assert outcome == "sent"  # the e-mail went out
    assert repeated == "skipped"
    assert preferences.sms_state == "opted_out"
    assert refusing.attempts == 1
    assert len(harness.service.sent_emails()) == emails_before + 1


@pytest.mark.parametrize("code", ["21211", "21614"])
def test_invalid_number_asks_for_a_new_one_by_email(harness: Harness, code: str) -> None:
    subscriber_id = _subscriber(harness)
    refusing = RefusingSms(code)
    notifier = replace(harness.notifier, sms=lambda: refusing)
    emails_before = len(harness.service.sent_emails())

    notify.process_job(notifier, _payment_job(harness, subscriber_id))

    emails = harness.service.sent_emails()[emails_before:]
    assert load_preferences(harness.table, subscriber_id).sms_state == "invalid"
    assert refusing.attempts == 1
    assert len(emails) == 2  # the payment notice and the request for a new number
    assert any("无法接收短信" in email["subject"] for email in emails)
    assert all("13800138000" not in email["body"] for email in emails)


def test_alert_sms_setting_leaves_payment_sms_on(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    set_sms_alerts(harness.table, subscriber_id, False, "account", _now(harness))
    before = _sms_count(harness)

    outcome = notify.process_job(harness.notifier, _payment_job(harness, subscriber_id))

    assert outcome == "sent"
    assert _sms_count(harness) == before + 1


def test_support_sees_unknown_deliveries(harness: Harness) -> None:
    ledger = _ledger(harness)

    def crash() -> str:
        raise CrashAfterSend

    with pytest.raises(CrashAfterSend):
        ledger.deliver("test:support", "email", "sbr_support", crash)
    harness.clock.advance(seconds=STALE_PENDING_SECONDS + 1)
    ledger.deliver("test:support", "email", "sbr_support", lambda: "never")

    assert harness.service.stack is not None
    sample = load_sample(EVENTS_DIR / "http" / "admin_deliveries_unknown.json")
    response = harness.service.stack.runtime.invoke("AdminApiFunction", sample)

    deliveries = json.loads(response["body"])["deliveries"]
    entry = next(entry for entry in deliveries if entry["message_key"] == "test:support")
    assert response["statusCode"] == 200
    assert (entry["channel"], entry["subject_id"], entry["attempts"]) == ("email", "sbr_support", 1)


class CrashingSms:
    """Sends through the real sender, then dies before the notifier can record the send."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sids: list[str] = []

    def send(self, *args: Any, **kwargs: Any) -> str:
        self.sids.append(self.inner.send(*args, **kwargs))
        raise CrashAfterSend

    def status(self, message_id: str) -> str | None:
        return self.inner.status(message_id)


def test_crashed_notice_sms_is_settled_not_resent(harness: Harness) -> None:
    # chen gets no other payment notice in this module: the emulator filters repeated texts.
    subscriber_id = _subscriber(harness, "chen")
    job = _payment_job(harness, subscriber_id)
    crashing = CrashingSms(harness.notifier.sms())
    with pytest.raises(CrashAfterSend):
        notify.process_job(replace(harness.notifier, sms=lambda: crashing), job)
    message_key = f"invoice:{job.invoice_id}:failed:1"
    link_provider_id(harness.table, message_key, "sms", crashing.sids[0], _now(harness))
    harness.clock.advance(seconds=STALE_PENDING_SECONDS + 1)
    before = _sms_count(harness)

    outcome = notify.process_job(harness.notifier, job)

    record = _ledger(harness).record(message_key, "sms")
    assert outcome == "skipped"
    assert record is not None
    assert (record["state"], record["provider_id"]) == ("sent", crashing.sids[0])
    assert _sms_count(harness) == before


def test_crashed_code_job_keeps_the_sent_code(harness: Harness) -> None:
    from idsentry.models.jobs import OtpJob

    signup_id = harness.create("wang")
    item = harness.table.get(f"SIGNUP#{signup_id}", "SIGNUP")
    assert item is not None
    job = OtpJob(job_id=f"job_{item['code_id']}", signup_id=signup_id, code_id=item["code_id"])
    crashing = CrashingSms(harness.notifier.sms())
    with pytest.raises(CrashAfterSend):
        notify.process_job(replace(harness.notifier, sms=lambda: crashing), job)
    assert harness.service.twilio is not None
    sent_code = re.findall(r"\d{6}", harness.service.twilio.messages()[-1]["body"])[0]
    harness.clock.advance(seconds=STALE_PENDING_SECONDS + 1)
    before = _sms_count(harness)

    notify.process_job(harness.notifier, job)
    result = signup.verify_signup(harness.deps, signup_id, sent_code)

    assert _sms_count(harness) == before
    assert result["subscriber_id"]
