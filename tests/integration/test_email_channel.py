"""The e-mail channel against moto server: one-click headers, preference links, SES events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.email import SesEmail
from idsentry.clock import epoch, utc_now
from idsentry.models.jobs import EmailConfirmationJob
from idsentry.services import email_links, notify, signup
from idsentry.services.preferences import load_preferences
from idsentry.services.unsubscribe import (
    LINK_VALID_SECONDS,
    PreferenceAction,
    preference_url,
    set_preference,
)
from infra.local.service import EMAIL_SENDER, LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_signup_service import Harness, _clear_table

pytestmark = pytest.mark.integration

SES_SAMPLES = Path(__file__).resolve().parents[2] / "events" / "ses"
FORM = "application/x-www-form-urlencoded"
ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def harness(local_service: LocalService) -> Iterator[Harness]:
    yield Harness(local_service, MovableClock())
    _clear_table(local_service)


def _subscriber(harness: Harness, person: str = "wang", *, confirmed: bool = True) -> str:
    """Sign `person` up and verify; confirm their e-mail address when `confirmed` is True."""
    signup_id = harness.create(person)
    result = signup.verify_signup(harness.deps, signup_id, harness.send_code(signup_id))
    subscriber_id = str(result["subscriber_id"])
    if confirmed:
        profile = harness.table.get(f"SUB#{subscriber_id}", "PROFILE")
        assert profile is not None
        now = epoch(harness.clock())
        url = email_links.confirmation_url(
            harness.pepper, "http://unused", subscriber_id, profile["email_fp"], now
        )
        runtime = harness.service.stack.runtime  # type: ignore[union-attr]
        publisher = EventPublisher(runtime.environment["EVENT_BUS_NAME"], runtime.client("events"))
        email_links.confirm_email(
            harness.table, publisher, harness.pepper, url.rsplit("/", 1)[1], now
        )
    return subscriber_id


def _link(harness: Harness, subscriber_id: str, action: PreferenceAction, **shift: int) -> str:
    """Return a preference link signed now (the signup function checks it with the real clock)."""
    now = epoch(utc_now()) + shift.get("seconds", 0)
    return preference_url(harness.pepper, harness.service.base_url, subscriber_id, action, now)


def _post(url: str, body: str = ONE_CLICK, content_type: str = FORM) -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)


def _prefs_item(harness: Harness, subscriber_id: str) -> dict[str, Any] | None:
    return harness.table.get(f"SUB#{subscriber_id}", "PREFS")


# ---------------------------------------------------------------------------- sending


def test_send_one_click_headers_in_outbox(harness: Harness) -> None:
    runtime = harness.service.stack.runtime  # type: ignore[union-attr]
    configuration_set = runtime.environment["SES_CONFIGURATION_SET"]
    sender = SesEmail(EMAIL_SENDER, runtime.client("sesv2"), configuration_set=configuration_set)
    url = _link(harness, "sbr_01M91B4ABG36G2R8D4PV2HM6CG", "email:alerts")

    message_id = sender.send(
        "wang@例子.广告", "泄露警报 - 身份哨兵", "纯文本", "<p>HTML</p>", unsubscribe_url=url
    )

    sent = harness.service.sent_emails()[-1]
    assert message_id
    assert sent["to"] == ["wang@xn--fsqu00a.xn--4rr70v"]
    assert sent["subject"] == "泄露警报 - 身份哨兵"
    assert sent["headers"]["list-unsubscribe"] == f"<{url}>"
    assert sent["headers"]["list-unsubscribe-post"] == ONE_CLICK
    assert sent["text"].strip() == "纯文本"
    assert sent["html"].strip() == "<p>HTML</p>"


def test_configuration_set_provisioned(harness: Harness) -> None:
    runtime = harness.service.stack.runtime  # type: ignore[union-attr]
    name = runtime.environment["SES_CONFIGURATION_SET"]

    response = runtime.client("sesv2").get_configuration_set(ConfigurationSetName=name)

    assert name == "idsentry-local"
    assert response["ConfigurationSetName"] == name


def test_transactional_send_has_no_unsubscribe(harness: Harness) -> None:
    runtime = harness.service.stack.runtime  # type: ignore[union-attr]
    sender = SesEmail(EMAIL_SENDER, runtime.client("sesv2"))

    sender.send("li@example.com", "请确认邮箱 - 身份哨兵", "text", "<p>html</p>")

    sent = harness.service.sent_emails()[-1]
    assert sent["to"] == ["li@example.com"]
    assert "list-unsubscribe" not in sent["headers"]
    assert "list-unsubscribe-post" not in sent["headers"]


# ---------------------------------------------------------------------------- preference links


def test_one_click_leaves_one_list(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    profile_before = harness.table.get(f"SUB#{subscriber_id}", "PROFILE")

    response = _post(_link(harness, subscriber_id, "email:alerts"))

    preferences = load_preferences(harness.table, subscriber_id)
    profile_after = harness.table.get(f"SUB#{subscriber_id}", "PROFILE")
    assert response.status_code == 200
    assert "我们已不再向您发送泄露警报邮件" in response.text
    assert "We no longer send you breach alert e-mails" in response.text
    assert preferences.email_lists_off == frozenset({"alerts"})
    assert preferences.may_email("alerts") is False
    assert preferences.may_email("reports") is True
    assert preferences.may_email(None) is True
    assert preferences.sms_alerts is True
    assert profile_after == profile_before


def test_one_click_from_outbox_header(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    runtime = harness.service.stack.runtime  # type: ignore[union-attr]
    sender = SesEmail(EMAIL_SENDER, runtime.client("sesv2"))
    url = _link(harness, subscriber_id, "email:reports")
    sender.send("wang@example.com", "月度报告", "text", "<p>html</p>", unsubscribe_url=url)
    header = harness.service.sent_emails()[-1]["headers"]["list-unsubscribe"]

    # What a mail client does: POST the List-Unsubscribe-Post pair to the header's URL.
    response = _post(header.strip("<>"))

    assert response.status_code == 200
    assert load_preferences(harness.table, subscriber_id).email_lists_off == frozenset({"reports"})


def test_get_changes_nothing(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    before = _prefs_item(harness, subscriber_id)

    response = requests.get(_link(harness, subscriber_id, "email:alerts"), timeout=30)

    assert response.status_code == 200
    assert 'name="List-Unsubscribe" value="One-Click"' in response.text
    assert "泄露警报邮件" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert _prefs_item(harness, subscriber_id) == before


def test_repeat_post_writes_nothing(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    url = _link(harness, subscriber_id, "email:alerts")
    _post(url)
    # A marker that any further write of the preferences item would replace.
    harness.table.update(
        f"SUB#{subscriber_id}", "PREFS", "SET updated_at = :marker", values={":marker": 1}
    )

    response = _post(url)

    item = _prefs_item(harness, subscriber_id)
    assert response.status_code == 200
    assert item is not None
    assert item["updated_at"] == 1
    assert item["email_lists_off"] == {"alerts"}


def test_sms_opt_out_link(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)

    response = _post(_link(harness, subscriber_id, "sms:alerts"))

    preferences = load_preferences(harness.table, subscriber_id)
    item = _prefs_item(harness, subscriber_id)
    assert response.status_code == 200
    assert "泄露警报短信" in response.text
    assert preferences.sms_alerts is False
    assert preferences.may_sms(alert=True) is False
    assert preferences.may_sms(alert=False) is True
    assert preferences.email_lists_off == frozenset()
    assert item is not None and item["sms_alerts_source"] == "email_link"


def test_resubscribe_from_page(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    url = _link(harness, subscriber_id, "email:alerts")
    _post(url)
    page = requests.get(url, timeout=30)

    response = _post(url, body="resubscribe=yes")

    assert 'name="resubscribe" value="yes"' in page.text
    assert response.status_code == 200
    assert "我们将重新向您发送泄露警报邮件" in response.text
    assert load_preferences(harness.table, subscriber_id).email_lists_off == frozenset()


def test_account_setting_restores_list(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    _post(_link(harness, subscriber_id, "sms:alerts"))
    now = epoch(harness.clock())

    state = set_preference(harness.table, subscriber_id, "sms:alerts", True, "account", now)
    again = set_preference(harness.table, subscriber_id, "sms:alerts", True, "account", now)

    item = _prefs_item(harness, subscriber_id)
    assert state.changed is True
    assert state.subscribed is True
    assert again.changed is False
    assert item is not None
    assert item["sms_alerts"] is True
    assert item["sms_alerts_source"] == "account"


def test_tampered_link_rejected(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    url = _link(harness, subscriber_id, "email:alerts")
    tampered = url[:-1] + ("A" if url[-1] != "A" else "B")
    before = _prefs_item(harness, subscriber_id)

    response = _post(tampered)

    assert response.status_code == 400
    assert "链接无效" in response.text
    assert _prefs_item(harness, subscriber_id) == before


def test_expired_link_rejected(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    url = _link(harness, subscriber_id, "email:alerts", seconds=-LINK_VALID_SECONDS - 1)
    before = _prefs_item(harness, subscriber_id)

    response = _post(url)

    assert response.status_code == 410
    assert "90" in response.text
    assert "链接已过期" in response.text
    assert _prefs_item(harness, subscriber_id) == before


def test_post_without_choice_rejected(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    before = _prefs_item(harness, subscriber_id)

    response = requests.post(
        _link(harness, subscriber_id, "email:alerts"),
        headers={"Accept-Language": "en"},
        timeout=30,
    )

    fields = response.json()["error"]["fields"]
    assert response.status_code == 422
    assert [field["field"] for field in fields] == ["List-Unsubscribe"]
    assert fields[0]["code"] == "preferences.choice_missing"
    assert _prefs_item(harness, subscriber_id) == before


def test_closed_account_link(harness: Harness) -> None:
    missing = "sbr_01M91B4ABG36G2R8D4PV2HM6CG"

    response = _post(_link(harness, missing, "email:alerts"))

    assert response.status_code == 200
    assert "该账户已注销" in response.text
    assert _prefs_item(harness, missing) is None


# ---------------------------------------------------------------------------- SES events


def _ses_event(
    sample: str, address: str, message_id: str, configuration_set: str = "idsentry-local"
) -> dict[str, Any]:
    """Return an SES event sample for `address`, as SES would publish it for this stack."""
    event: dict[str, Any] = json.loads((SES_SAMPLES / sample).read_text(encoding="utf-8"))
    detail = event["detail"]
    detail["mail"]["messageId"] = message_id
    detail["mail"]["destination"] = [address]
    detail["mail"]["tags"]["ses:configuration-set"] = [configuration_set]
    for key in ("bounce", "complaint"):
        if key in detail:
            recipients = detail[key].get("bouncedRecipients") or detail[key]["complainedRecipients"]
            recipients[0]["emailAddress"] = address
    return event


def _publish(harness: Harness, event: dict[str, Any]) -> None:
    runtime = harness.service.stack.runtime  # type: ignore[union-attr]
    response = runtime.client("events").put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0


def _drain(harness: Harness) -> int:
    """Run the SES events function until its queue is empty; returns the messages it received."""
    runtime = harness.service.stack.runtime  # type: ignore[union-attr]
    (mapping,) = [m for m in runtime.mappings if m.function_logical_id == "SesEventsFunction"]
    received = 0
    while True:
        outcome = runtime.poll(mapping)
        assert outcome.failed == 0
        if outcome.received == 0:
            return received
        received += outcome.received


def _event_records(harness: Harness, subscriber_id: str) -> dict[str, dict[str, Any]]:
    items = harness.table.get_partition(f"SUB#{subscriber_id}")
    return {sk: item for sk, item in items.items() if sk.startswith("EMAILEVENT#")}


def test_permanent_bounce_suppresses_once(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    message_id = f"0100019a-{uuid.uuid4()}-000000"
    event = _ses_event("email_bounced_permanent.json", "wang@example.com", message_id)
    _publish(harness, event)
    assert _drain(harness) == 1
    # Lifting the suppression by hand shows whether a redelivery applies the event again.
    harness.table.update(
        f"SUB#{subscriber_id}", "PREFS", "SET email_state = :ok", values={":ok": "ok"}
    )

    _publish(harness, event)
    assert _drain(harness) == 1

    records = _event_records(harness, subscriber_id)
    item = _prefs_item(harness, subscriber_id)
    assert list(records) == [f"EMAILEVENT#{message_id}#bounce"]
    assert records[f"EMAILEVENT#{message_id}#bounce"]["outcome"] == "suppressed"
    assert item is not None
    assert item["email_state"] == "ok"
    assert item["email_state_reason"] == "bounce:Permanent:General"


def test_permanent_bounce_stops_email(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    _publish(
        harness,
        _ses_event("email_bounced_permanent.json", "wang@example.com", f"m-{uuid.uuid4()}"),
    )

    _drain(harness)

    preferences = load_preferences(harness.table, subscriber_id)
    assert preferences.email_state == "suppressed"
    assert preferences.may_email(None) is False
    assert preferences.may_sms(alert=True) is True


def test_complaint_suppresses(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    message_id = f"m-{uuid.uuid4()}"
    _publish(harness, _ses_event("email_complaint_received.json", "wang@example.com", message_id))

    _drain(harness)

    item = _prefs_item(harness, subscriber_id)
    records = _event_records(harness, subscriber_id)
    assert item is not None
    assert item["email_state"] == "suppressed"
    assert item["email_state_reason"] == "complaint:abuse"
    assert records[f"EMAILEVENT#{message_id}#complaint"]["outcome"] == "suppressed"


def test_transient_bounce_recorded_only(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    message_id = f"m-{uuid.uuid4()}"
    _publish(harness, _ses_event("email_bounced_transient.json", "wang@example.com", message_id))

    _drain(harness)

    records = _event_records(harness, subscriber_id)
    assert records[f"EMAILEVENT#{message_id}#bounce"]["outcome"] == "recorded"
    assert records[f"EMAILEVENT#{message_id}#bounce"]["reason"] == "bounce:Transient:MailboxFull"
    assert load_preferences(harness.table, subscriber_id).email_state == "ok"


def test_bounce_matches_address_case_insensitively(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    _publish(
        harness,
        _ses_event("email_bounced_permanent.json", "Wang@EXAMPLE.com", f"m-{uuid.uuid4()}"),
    )

    _drain(harness)

    assert load_preferences(harness.table, subscriber_id).email_state == "suppressed"


def test_bounce_of_other_address_ignored(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    before = _prefs_item(harness, subscriber_id)
    _publish(
        harness,
        _ses_event("email_bounced_permanent.json", "alice@example.com", f"m-{uuid.uuid4()}"),
    )

    assert _drain(harness) == 1

    assert _prefs_item(harness, subscriber_id) == before
    assert _event_records(harness, subscriber_id) == {}


def test_unconfirmed_address_not_suppressed(harness: Harness) -> None:
    subscriber_id = _subscriber(harness, confirmed=False)
    before = _prefs_item(harness, subscriber_id)
    _publish(
        harness,
        _ses_event("email_bounced_permanent.json", "wang@example.com", f"m-{uuid.uuid4()}"),
    )

    assert _drain(harness) == 1

    assert _prefs_item(harness, subscriber_id) == before
    assert _event_records(harness, subscriber_id) == {}


def test_other_configuration_set_not_routed(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    event = _ses_event(
        "email_bounced_permanent.json",
        "wang@example.com",
        f"m-{uuid.uuid4()}",
        configuration_set="another-application",
    )
    before = _prefs_item(harness, subscriber_id)
    _publish(harness, event)

    assert _drain(harness) == 0

    assert _prefs_item(harness, subscriber_id) == before


def test_bounced_confirmation_email_reaches_its_account(harness: Harness) -> None:
    subscriber_id = _subscriber(harness, confirmed=False)
    profile = harness.table.get(f"SUB#{subscriber_id}", "PROFILE")
    assert profile is not None
    job = EmailConfirmationJob(job_id=f"job_{uuid.uuid4().hex}", subscriber_id=subscriber_id)
    assert notify.process_job(harness.notifier, job) == "sent"
    record = harness.table.get(f"NOTIFY#email_confirmation:{profile['email_fp']}", "email")
    assert record is not None
    _publish(
        harness,
        _ses_event("email_bounced_permanent.json", "wang@example.com", record["provider_id"]),
    )

    assert _drain(harness) == 1

    prefs = _prefs_item(harness, subscriber_id)
    assert prefs is not None and prefs["email_state"] == "suppressed"
    assert len(_event_records(harness, subscriber_id)) == 1
