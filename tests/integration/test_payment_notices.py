"""Payment-failed notices and reminders against moto server and the Twilio emulator."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from idsentry.models.jobs import PaymentNoticeJob
from idsentry.services import dunning, notify, signup
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_signup_service import Harness, _clear_table

pytestmark = pytest.mark.integration

INVOICE = {"id": "in_renewal_1", "amount_due": 1800, "currency": "cny", "attempt_count": 1}
GRACE = 7 * 24 * 3600


class RecordingQueue:
    """Collects jobs instead of sending them to SQS."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def send(self, job: BaseModel) -> None:
        self.jobs.append(job)

    def send_many(self, jobs: Sequence[BaseModel]) -> None:
        self.jobs.extend(jobs)


@pytest.fixture
def harness(local_service: LocalService) -> Iterator[Harness]:
    yield Harness(local_service, MovableClock())
    _clear_table(local_service)


def _subscriber(harness: Harness, person: str = "wang") -> str:
    signup_id = harness.create(person)
    result = signup.verify_signup(harness.deps, signup_id, harness.send_code(signup_id))
    return str(result["subscriber_id"])


def _fail(harness: Harness, subscriber_id: str, queue: RecordingQueue, **invoice: Any) -> None:
    now = int(harness.clock().timestamp())
    dunning.record_failure(
        harness.table,
        queue,
        subscriber_id,
        {**INVOICE, **invoice},
        now + GRACE,
        now,  # type: ignore[arg-type]
    )


def _outbox(harness: Harness) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    assert harness.service.twilio is not None
    return harness.service.sent_emails(), harness.service.twilio.messages()


def test_failure_notice_by_email_and_sms(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    queue = RecordingQueue()
    _fail(harness, subscriber_id, queue)
    emails_before, sms_before = (len(items) for items in _outbox(harness))

    outcome = notify.process_job(harness.notifier, queue.jobs[0])

    emails, messages = _outbox(harness)
    assert outcome == "sent"
    assert [job.notice for job in queue.jobs] == ["failed"]
    assert len(emails) == emails_before + 1
    assert len(messages) == sms_before + 1
    assert "¥18.00" in emails[-1]["body"]
    assert "/v1/billing/" in emails[-1]["body"]
    assert "¥18.00" in messages[-1]["body"]
    assert "http" not in messages[-1]["body"]


def test_redelivered_notice_sent_once(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    queue = RecordingQueue()
    _fail(harness, subscriber_id, queue)
    notify.process_job(harness.notifier, queue.jobs[0])
    emails_before, sms_before = (len(items) for items in _outbox(harness))

    outcome = notify.process_job(harness.notifier, queue.jobs[0])

    assert outcome == "skipped"
    assert tuple(len(items) for items in _outbox(harness)) == (emails_before, sms_before)


def test_paid_invoice_gets_no_notice(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    queue = RecordingQueue()
    _fail(harness, subscriber_id, queue)
    dunning.resolve(harness.table, subscriber_id, INVOICE["id"], 1)  # type: ignore[arg-type]
    before = tuple(len(items) for items in _outbox(harness))

    outcome = notify.process_job(harness.notifier, queue.jobs[0])
    _fail(harness, subscriber_id, queue, attempt_count=2)

    assert outcome == "skipped"
    assert tuple(len(items) for items in _outbox(harness)) == before
    assert len(queue.jobs) == 1  # a late failure event of a paid invoice queues nothing


def test_reminder_due_once(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    queue = RecordingQueue()
    _fail(harness, subscriber_id, queue)
    now = int(harness.clock().timestamp())

    early = dunning.send_due_reminders(harness.table, queue, now + 3600)  # type: ignore[arg-type]
    due = dunning.send_due_reminders(harness.table, queue, now + dunning.REMINDER_AFTER_SECONDS)  # type: ignore[arg-type]
    again = dunning.send_due_reminders(
        harness.table, queue, now + 2 * dunning.REMINDER_AFTER_SECONDS
    )  # type: ignore[arg-type]

    assert (early, due, again) == (0, 1, 0)
    reminder = queue.jobs[-1]
    assert isinstance(reminder, PaymentNoticeJob) and reminder.notice == "reminder"
    assert notify.process_job(harness.notifier, reminder) == "sent"


def test_paid_invoice_gets_no_reminder(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    queue = RecordingQueue()
    _fail(harness, subscriber_id, queue)
    now = int(harness.clock().timestamp())
    dunning.resolve(harness.table, subscriber_id, INVOICE["id"], now)  # type: ignore[arg-type]

    due = dunning.send_due_reminders(harness.table, queue, now + dunning.REMINDER_AFTER_SECONDS)  # type: ignore[arg-type]

    assert due == 0


def test_full_sms_window_sends_email_only(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    mobile = harness.table.get(f"SUB#{subscriber_id}", "IDENT#mobile")
    assert mobile is not None
    now = int(harness.clock().timestamp())
    # Three notices in the last day: the fourth slot is kept for codes.
    harness.table.put(
        {
            "pk": f"SMSWIN#{mobile['fingerprints'][harness.pepper.current]}",
            "sk": "SMSWIN",
            "sends": [f"notice:{now - 60 * minutes}" for minutes in (1, 2, 3)],
            "version": 7,
        }
    )
    queue = RecordingQueue()
    _fail(harness, subscriber_id, queue)
    emails_before, sms_before = (len(items) for items in _outbox(harness))

    outcome = notify.process_job(harness.notifier, queue.jobs[0])

    emails, messages = _outbox(harness)
    assert outcome == "sent"
    assert (len(emails), len(messages)) == (emails_before + 1, sms_before)


def test_english_subscriber_gets_english(harness: Harness) -> None:
    subscriber_id = _subscriber(harness, "alice")
    harness.table.update(
        f"SUB#{subscriber_id}", "PROFILE", "SET locale = :en", values={":en": "en"}
    )
    queue = RecordingQueue()
    _fail(harness, subscriber_id, queue, currency="usd", amount_due=299)

    notify.process_job(harness.notifier, queue.jobs[0])

    emails, messages = _outbox(harness)
    assert emails[-1]["subject"] == "Your renewal payment failed - IDSentry"
    assert "$2.99" in messages[-1]["body"]
