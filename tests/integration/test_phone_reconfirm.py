"""Phone reconfirmation against moto server, SES and the Twilio emulator, with a moved clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from idsentry.models.jobs import PhoneReconfirmJob
from idsentry.services import notify, phone_reconfirm
from idsentry.services.preferences import load_preferences, set_sms_state
from idsentry.services.subscriber_records import load_records, message_keys
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_payment_notices import RecordingQueue, _fail
from tests.integration.test_sign_in import SignInHarness
from tests.integration.test_signup_service import PEOPLE, _clear_table

pytestmark = pytest.mark.integration

MONTHS = 6


@pytest.fixture
def harness(local_service: LocalService) -> Iterator[SignInHarness]:
    yield SignInHarness(local_service, MovableClock())
    _clear_table(local_service)


def entitled(harness: SignInHarness, person: str = "wang") -> str:
    """Sign a person up and mark the account monitored, as an active subscription does."""
    subscriber_id = harness.subscriber(person)
    harness.table.update(
        f"SUB#{subscriber_id}",
        "PROFILE",
        "SET gsi1pk = :entitled, gsi1sk = :subscriber, monitored = :true, #status = :active",
        values={
            ":entitled": "ENTITLED",
            ":subscriber": subscriber_id,
            ":true": True,
            ":active": "active",
        },
        names={"#status": "status"},
    )
    return subscriber_id


def run(harness: SignInHarness, page_size: int = 1000) -> tuple[dict[str, Any], RecordingQueue]:
    queue = RecordingQueue()
    summary = phone_reconfirm.plan_reconfirmations(
        harness.table,
        queue,
        harness.clock(),
        MONTHS,
        page_size,  # type: ignore[arg-type]
    )
    return summary, queue


def sms_state(harness: SignInHarness, subscriber_id: str) -> str:
    return load_preferences(harness.table, subscriber_id).sms_state


def sign_in(harness: SignInHarness, person: str = "wang") -> None:
    created = harness.request(PEOPLE[person][2])
    outcome, code = harness.deliver(created["sign_in_id"])
    assert outcome == "sent"
    assert code is not None
    harness.verify(created["sign_in_id"], code)


def emails(harness: SignInHarness) -> list[dict[str, Any]]:
    return harness.service.sent_emails()


def test_signup_records_confirmation(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)

    profile = harness.table.get(f"SUB#{subscriber_id}", "PROFILE")

    assert profile is not None
    assert profile["mobile_confirmed_at"] == int(harness.clock().timestamp())


def test_recent_number_not_due(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)
    harness.clock.advance(days=181)  # 2027-06-03: one day short of six calendar months

    summary, queue = run(harness)

    assert summary["checked"] == 1
    assert summary["due"] == 0
    assert queue.jobs == []
    assert sms_state(harness, subscriber_id) == "ok"


def test_old_number_due(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)
    confirmed_at = int(harness.clock().timestamp())
    harness.clock.advance(days=183)

    summary, queue = run(harness)

    assert (summary["due"], summary["unconfirmed"]) == (1, 1)
    assert queue.jobs == [
        PhoneReconfirmJob(
            job_id=f"phone_reconfirm_{subscriber_id}_{confirmed_at}",
            subscriber_id=subscriber_id,
            confirmed_at=confirmed_at,
        )
    ]
    prefs = harness.table.get(f"SUB#{subscriber_id}", "PREFS")
    assert prefs is not None
    assert prefs["sms_state"] == "unconfirmed"
    assert prefs["sms_state_reason"] == "reconfirm_due"
    assert load_preferences(harness.table, subscriber_id).may_sms(alert=False) is False


def test_email_sent_once(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)
    harness.clock.advance(days=183)
    _, queue = run(harness)
    before = len(emails(harness))

    first = notify.process_job(harness.notifier, queue.jobs[0])
    again = notify.process_job(harness.notifier, queue.jobs[0])
    harness.clock.advance(days=1)
    next_day, next_queue = run(harness)

    sent = emails(harness)[before:]
    assert (first, again) == ("sent", "skipped")
    assert len(sent) == 1
    assert "138****8001" in sent[0]["body"]
    assert PEOPLE["wang"][2].removeprefix("+86") not in sent[0]["body"]
    assert "6 个月" in sent[0]["body"]
    assert f'href="{harness.service.signup_page_url}account/"' in sent[0]["body"]
    assert next_day["due"] == 0
    assert next_queue.jobs == []
    assert sms_state(harness, subscriber_id) == "unconfirmed"


def test_same_day_rerun_does_nothing(harness: SignInHarness) -> None:
    entitled(harness)
    harness.clock.advance(days=183)
    run(harness)

    summary, queue = run(harness)

    assert summary["already_finished"] is True
    assert queue.jobs == []


def test_unconfirmed_number_gets_no_sms(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)
    harness.clock.advance(days=183)
    run(harness)
    notices = RecordingQueue()
    _fail(harness, subscriber_id, notices)  # type: ignore[arg-type]
    assert harness.service.twilio is not None
    sms_before = len(harness.service.twilio.messages())
    emails_before = len(emails(harness))

    outcome = notify.process_job(harness.notifier, notices.jobs[0])

    assert outcome == "sent"
    assert len(emails(harness)) == emails_before + 1
    assert len(harness.service.twilio.messages()) == sms_before


def test_sign_in_clears_unconfirmed(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)
    harness.clock.advance(days=183)
    _, queue = run(harness)
    harness.wait_for_resend()
    before = len(emails(harness))

    sign_in(harness)
    outcome = notify.process_job(harness.notifier, queue.jobs[0])

    profile = harness.table.get(f"SUB#{subscriber_id}", "PROFILE")
    assert profile is not None
    assert profile["mobile_confirmed_at"] == int(harness.clock().timestamp())
    assert sms_state(harness, subscriber_id) == "ok"
    # The e-mail asking to confirm is moot once the sign-in confirmed the number.
    assert outcome == "skipped"
    assert len(emails(harness)) == before
    harness.clock.advance(days=30)
    assert run(harness)[0]["due"] == 0


def test_sign_in_records_confirmation(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)
    harness.clock.advance(days=100)
    harness.wait_for_resend()

    sign_in(harness)

    profile = harness.table.get(f"SUB#{subscriber_id}", "PROFILE")
    assert profile is not None
    assert profile["mobile_confirmed_at"] == int(harness.clock().timestamp())
    harness.clock.advance(days=100)
    assert run(harness)[0]["due"] == 0


def test_sign_in_keeps_opt_out(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)
    set_sms_state(harness.table, subscriber_id, "opted_out", "21610", 1)
    harness.wait_for_resend()

    sign_in(harness)

    assert sms_state(harness, subscriber_id) == "opted_out"


def test_opted_out_number_not_marked(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)
    set_sms_state(harness.table, subscriber_id, "opted_out", "21610", 1)
    harness.clock.advance(days=183)

    summary, queue = run(harness)

    assert summary["due"] == 0
    assert queue.jobs == []
    assert sms_state(harness, subscriber_id) == "opted_out"


def test_profile_before_confirmation_field(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)
    harness.table.update(f"SUB#{subscriber_id}", "PROFILE", "REMOVE mobile_confirmed_at")
    created_at = int(harness.table.get(f"SUB#{subscriber_id}", "PROFILE")["created_at"])  # type: ignore[index]
    harness.clock.advance(days=183)

    summary, queue = run(harness)

    assert summary["unconfirmed"] == 1
    assert queue.jobs[0].confirmed_at == created_at
    assert sms_state(harness, subscriber_id) == "unconfirmed"


def test_sign_in_between_read_and_mark(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)
    profile = harness.table.get(f"SUB#{subscriber_id}", "PROFILE")
    assert profile is not None
    stale = phone_reconfirm.DueSubscriber(subscriber_id, int(profile["mobile_confirmed_at"]), True)
    harness.clock.advance(days=183)
    harness.wait_for_resend()
    sign_in(harness)

    marked = phone_reconfirm.mark_unconfirmed(
        harness.table, stale, int(harness.clock().timestamp())
    )

    assert marked is False
    assert sms_state(harness, subscriber_id) == "ok"


def test_pages_through_subscribers(harness: SignInHarness) -> None:
    subscriber_ids = [entitled(harness, person) for person in ("wang", "chen")]
    harness.clock.advance(days=183)

    summary, queue = run(harness, page_size=1)

    assert summary["checked"] == 2
    assert sorted(job.subscriber_id for job in queue.jobs) == sorted(subscriber_ids)
    assert all(sms_state(harness, sid) == "unconfirmed" for sid in subscriber_ids)


def test_deletion_finds_reconfirm_email(harness: SignInHarness) -> None:
    subscriber_id = entitled(harness)
    harness.clock.advance(days=183)
    _, queue = run(harness)
    job = queue.jobs[0]

    keys = message_keys(load_records(harness.table, subscriber_id))

    assert phone_reconfirm.message_key(subscriber_id, job.confirmed_at) in keys
