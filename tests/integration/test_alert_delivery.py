"""Alert messages against moto server and the Twilio emulator: channels, quiet hours, budgets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from idsentry.item_keys import DEFER_SK, deferral_pk
from idsentry.models.jobs import AlertJob
from idsentry.services import notify, signup
from idsentry.services.alerts import alert_id_for
from idsentry.services.deferrals import release_due
from idsentry.services.exposures import record_exposure
from idsentry.services.hibp_catalogue import breach_item
from idsentry.services.preferences import set_email_list, set_sms_alerts
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_breach_intake import BREACH
from tests.integration.test_payment_notices import RecordingQueue
from tests.integration.test_signup_service import PEOPLE, Harness, _clear_table

pytestmark = pytest.mark.integration

# The harness clock stands at 12:00 UTC: 20:00 in Shanghai, 07:00 in New York (quiet until 08:00).
NIGHT_ZONE = "America/New_York"
NEW_YORK_MORNING_UTC = 13 * 3600


class NoEvents:
    """Takes the Exposure.Detected event that these tests do not follow."""

    def publish(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def harness(local_service: LocalService) -> Iterator[Harness]:
    assert local_service.twilio is not None
    _marks.update(emails=len(local_service.sent_emails()), sms=len(local_service.twilio.messages()))
    yield Harness(local_service, MovableClock())
    _clear_table(local_service)


# Where this test's messages start in the outboxes, which keep every earlier test's.
_marks: dict[str, int] = {}


def _now(harness: Harness) -> int:
    return int(harness.clock().timestamp())


def _alerted(
    harness: Harness, severity: str, timezone: str | None = None, person: str = "wang"
) -> AlertJob:
    """Sign a person up, record their exposure in the example breach and a confirmed alert."""
    overrides = {"timezone": timezone} if timezone else {}
    signup_id = harness.create(person, **overrides)
    verified = signup.verify_signup(harness.deps, signup_id, harness.send_code(signup_id))
    subscriber_id = str(verified["subscriber_id"])
    name = BREACH["Name"]
    added = {"AddedDate": "2026-11-20T00:00:00Z", "ModifiedDate": "2026-11-20T00:00:00Z"}
    harness.table.put(breach_item({**BREACH, **added}))
    record_exposure(
        harness.table, NoEvents(), subscriber_id, name, ["id_number"], "dataset", _now(harness)
    )  # type: ignore[arg-type]
    alert_id = alert_id_for(subscriber_id, name)
    harness.table.put(
        {
            "pk": f"SUB#{subscriber_id}",
            "sk": f"ALERT#{name}",
            "alert_id": alert_id,
            "status": "confirmed",
            "severity": severity,
            "confidence": "high",
        }
    )
    return AlertJob(
        job_id=f"job_{alert_id}", subscriber_id=subscriber_id, alert_id=alert_id, breach_name=name
    )


def _alert_sms(harness: Harness, person: str = "wang") -> list[dict[str, Any]]:
    assert harness.service.twilio is not None
    mobile = PEOPLE[person][2]
    return [
        message
        for message in harness.service.twilio.messages()[_marks["sms"] :]
        if message["to"] == mobile and "Example Shop" in message["body"]
    ]


def _alert_emails(harness: Harness) -> list[dict[str, Any]]:
    emails = harness.service.sent_emails()[_marks["emails"] :]
    return [email for email in emails if "Example Shop" in email["subject"]]


def test_high_alert_by_email_and_sms(harness: Harness) -> None:
    job = _alerted(harness, "high")

    outcome = notify.process_job(harness.notifier, job)

    assert outcome == "sent"
    assert len(_alert_emails(harness)) == 1
    assert len(_alert_sms(harness)) == 1


def test_medium_alert_by_email_only(harness: Harness) -> None:
    job = _alerted(harness, "medium")

    notify.process_job(harness.notifier, job)

    assert len(_alert_emails(harness)) == 1
    assert _alert_sms(harness) == []


def test_quiet_hours_defer_the_sms_not_the_email(harness: Harness) -> None:
    job = _alerted(harness, "high", timezone=NIGHT_ZONE)

    outcome = notify.process_job(harness.notifier, job)

    deferred = harness.table.get(deferral_pk(job.job_id), DEFER_SK)
    day_start = _now(harness) - _now(harness) % 86400
    assert outcome == "sent"
    assert len(_alert_emails(harness)) == 1
    assert _alert_sms(harness) == []
    assert deferred is not None
    assert deferred["release_at"] == day_start + NEW_YORK_MORNING_UTC


def test_deferred_sms_goes_out_in_the_morning_once(harness: Harness) -> None:
    job = _alerted(harness, "high", timezone=NIGHT_ZONE)
    notify.process_job(harness.notifier, job)
    queue = RecordingQueue()

    early = release_due(harness.table, queue, _now(harness), 10)  # type: ignore[arg-type]
    harness.clock.advance(hours=1)
    released = release_due(harness.table, queue, _now(harness), 10)  # type: ignore[arg-type]
    outcomes = [notify.process_job(harness.notifier, queued) for queued in queue.jobs]

    assert (early, released) == (0, 1)
    assert outcomes == ["sent"]
    assert len(_alert_sms(harness)) == 1
    assert len(_alert_emails(harness)) == 1


def test_critical_alert_ignores_quiet_hours(harness: Harness) -> None:
    job = _alerted(harness, "critical", timezone=NIGHT_ZONE)

    notify.process_job(harness.notifier, job)

    assert harness.table.get(deferral_pk(job.job_id), DEFER_SK) is None
    assert len(_alert_sms(harness)) == 1


def test_spent_alert_budget_keeps_email_and_codes(harness: Harness) -> None:
    notifier = replace(harness.notifier, sms_alert_daily_budget=1)
    first = _alerted(harness, "high", person="chen")
    notify.process_job(notifier, first)
    job = _alerted(harness, "high")

    notify.process_job(notifier, job)

    assert len(_alert_emails(harness)) == 2
    assert (len(_alert_sms(harness, "chen")), len(_alert_sms(harness))) == (1, 0)
    # Codes have their own budget: a new signup still gets its code.
    harness.send_code(harness.create("alice"))


def test_alert_sms_setting_off_sends_email_only(harness: Harness) -> None:
    job = _alerted(harness, "critical")
    set_sms_alerts(harness.table, job.subscriber_id, False, "email_link", _now(harness))

    notify.process_job(harness.notifier, job)

    assert len(_alert_emails(harness)) == 1
    assert _alert_sms(harness) == []


def test_left_alert_list_sends_sms_only(harness: Harness) -> None:
    job = _alerted(harness, "high")
    set_email_list(harness.table, job.subscriber_id, "alerts", False, _now(harness))

    notify.process_job(harness.notifier, job)

    assert _alert_emails(harness) == []
    assert len(_alert_sms(harness)) == 1


def test_alert_email_carries_one_click_unsubscribe(harness: Harness) -> None:
    job = _alerted(harness, "high")

    notify.process_job(harness.notifier, job)

    (email,) = _alert_emails(harness)
    header = email["headers"]["list-unsubscribe"]
    assert header.startswith(f"<{harness.service.public_base_url}/v1/preferences/")
    assert email["headers"]["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
    # The visible links: alert SMS off, and alert e-mails off (the header's link).
    links = re.findall(r"https?://\S+/v1/preferences/\S+", email["text"])
    assert len(links) == 2
    assert f"<{links[1]}>" == header


def test_codes_and_notices_ignore_quiet_hours(harness: Harness) -> None:
    from datetime import UTC, datetime

    from idsentry.services import dunning
    from tests.integration.test_payment_notices import INVOICE

    # 16:30 UTC is 00:30 in Shanghai, the subscriber's zone.
    harness.clock.now = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
    signup_id = harness.create("wang")
    code = harness.send_code(signup_id)
    subscriber_id = str(signup.verify_signup(harness.deps, signup_id, code)["subscriber_id"])
    queue = RecordingQueue()
    dunning.record_failure(
        harness.table, queue, subscriber_id, INVOICE, _now(harness) + 86400, _now(harness)
    )  # type: ignore[arg-type]

    outcome = notify.process_job(harness.notifier, queue.jobs[0])

    assert outcome == "sent"
    notices = [m for m in _all_sms(harness) if "¥18.00" in str(m["body"])]
    assert len(notices) == 1


def _all_sms(harness: Harness) -> list[dict[str, Any]]:
    assert harness.service.twilio is not None
    return harness.service.twilio.messages()[_marks["sms"] :]
