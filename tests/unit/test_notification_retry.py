"""Retry waits of notification and billing jobs, and what preferences allow on each channel."""

from __future__ import annotations

from idsentry.routes.billing_jobs import BUSY_RETRY_SECONDS, busy_retry_delay
from idsentry.routes.jobs import FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS, retry_delay
from idsentry.services.billing import LEASE_SECONDS
from idsentry.services.notify import status_callback_url
from idsentry.services.preferences import Preferences


def _upper(low: float, high: float) -> float:
    return high


def _lower(low: float, high: float) -> float:
    return low


def test_retry_ceiling_doubles_then_stops() -> None:
    ceilings = [retry_delay(count, _upper) for count in (1, 2, 3, 8, 20)]

    assert ceilings == [10, 20, 40, 900, MAX_RETRY_SECONDS]


def test_retry_jitter_stays_in_range() -> None:
    assert retry_delay(6, _lower) == FIRST_RETRY_SECONDS
    assert all(FIRST_RETRY_SECONDS <= retry_delay(6) <= 320 for _ in range(200))


def test_callback_url_names_the_ledger_record() -> None:
    url = status_callback_url("https://api.example.cn/prod", "invoice:in_1:failed:2")

    assert url == (
        "https://api.example.cn/prod/v1/webhooks/twilio/status?m=invoice%3Ain_1%3Afailed%3A2&c=sms"
    )


def test_alert_sms_setting_does_not_stop_notices() -> None:
    preferences = Preferences(sms_alerts=False)

    assert not preferences.may_sms(alert=True)
    assert preferences.may_sms(alert=False)


def test_refused_number_stops_every_sms() -> None:
    for state in ("opted_out", "invalid"):
        preferences = Preferences(sms_state=state)  # type: ignore[arg-type]
        assert not preferences.may_sms(alert=False)


def test_email_lists_and_suppression() -> None:
    left = Preferences(email_lists_off=frozenset({"reports"}))
    suppressed = Preferences(email_state="suppressed")

    assert left.may_email("alerts") and left.may_email(None)
    assert not left.may_email("reports")
    assert not suppressed.may_email(None)


def test_busy_retries_outlast_a_dead_consumers_lease() -> None:
    # The consumer that died holding the lease took it at most LEASE_SECONDS before the first
    # retry. The waits must add up past that before the queue's eight receives run out.
    waits = [busy_retry_delay(count) for count in range(1, 5)]

    assert waits == [BUSY_RETRY_SECONDS, 10, 20, 40]
    assert sum(waits) > LEASE_SECONDS
    assert busy_retry_delay(8) == LEASE_SECONDS
