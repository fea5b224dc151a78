"""The Twilio emulator's injected faults, through the SMS adapter: stalls, queue overflow, expiry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from idsentry.adapters.sms import TwilioSms, _classified_errors
from idsentry.errors import ProviderError
from infra.local.emulators.twilio import (
    TwilioEmulator,
    new_account_sid,
    new_messaging_service_sid,
)
from tests.integration.conftest import MovableClock

pytestmark = pytest.mark.integration

AUTH_TOKEN = "fault-auth-token"
MOBILE = "+14155550142"
SENDER = "+15005550006"
TIMEOUT_SECONDS = 0.3
STALL_SECONDS = 0.8


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def emulator(clock: MovableClock) -> Iterator[TwilioEmulator]:
    with TwilioEmulator(new_account_sid(), AUTH_TOKEN, clock=clock, paused=True) as running:
        yield running


@pytest.fixture
def sms(emulator: TwilioEmulator) -> TwilioSms:
    return TwilioSms(
        emulator.account_sid,
        AUTH_TOKEN,
        new_messaging_service_sid(),
        base_url=emulator.base_url,
        timeout_seconds=TIMEOUT_SECONDS,
    )


@pytest.mark.parametrize(("created", "kind"), [(True, "stall"), (False, "stall_dropped")])
def test_stalled_create_times_out_unknown(
    emulator: TwilioEmulator, sms: TwilioSms, created: bool, kind: str
) -> None:
    emulator.stall_next_creates(1, STALL_SECONDS, created=created)

    with pytest.raises(ProviderError) as raised:
        sms.send(MOBILE, "IDSentry stall", None)
    after = sms.send(MOBILE, "IDSentry after the stall", None)

    bodies = [message["body"] for message in emulator.messages()]
    assert raised.value.outcome_unknown is True
    assert raised.value.transient is True
    assert bodies == (["IDSentry stall"] if created else []) + ["IDSentry after the stall"]
    assert after.startswith("SM")
    assert emulator.injected_faults() == {kind: 1}


def test_find_sent_matches_recipient_and_body(sms: TwilioSms, clock: MovableClock) -> None:
    since = int(clock().timestamp())
    sid = sms.send(MOBILE, "IDSentry alert", None)
    sms.send("+14155550143", "IDSentry other", None)

    assert sms.find_sent(MOBILE, "IDSentry alert", since) == sid
    assert sms.find_sent(MOBILE, "IDSentry other", since) is None
    assert sms.find_sent("+14155550143", "IDSentry alert", since) is None


def test_find_sent_stops_at_older_messages(
    emulator: TwilioEmulator, sms: TwilioSms, clock: MovableClock
) -> None:
    sms.send(MOBILE, "IDSentry alert", None)
    later = int(clock().timestamp()) + 3600

    assert sms.find_sent(MOBILE, "IDSentry alert", since=later) is None


def test_overflow_with_messaging_service_fails_after_creation(
    emulator: TwilioEmulator, sms: TwilioSms
) -> None:
    emulator.overflow_next_creates(1)

    sid = sms.send(MOBILE, "IDSentry overflow", None)
    emulator.drain_all()

    [message] = emulator.messages()
    assert message["sid"] == sid
    assert (message["status"], message["error_code"]) == ("failed", 30001)
    assert emulator.injected_faults() == {"overflow": 1}


def test_overflow_from_number_rejects_create(emulator: TwilioEmulator) -> None:
    client = Client(emulator.account_sid, AUTH_TOKEN)
    client.api.base_url = emulator.base_url
    emulator.overflow_next_creates(1)

    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=MOBILE, from_=SENDER, body="IDSentry overflow")

    assert (raised.value.status, raised.value.code) == (400, 21611)
    assert emulator.messages() == []


@pytest.mark.parametrize(("code", "transient"), [(21611, True), (21610, False), (21211, False)])
def test_full_queue_error_is_transient(code: int, transient: bool) -> None:
    # The notifier sends through a messaging service, whose overflow shows later as 30001;
    # a full queue reported at creation (21611) still passes.
    with pytest.raises(ProviderError) as raised, _classified_errors():
        raise TwilioRestException(400, "https://api.twilio.com/", msg="rejected", code=code)

    assert raised.value.transient is transient
    assert raised.value.code == str(code)


def test_advanced_clock_expires_queued_message(emulator: TwilioEmulator, sms: TwilioSms) -> None:
    sid = sms.send(MOBILE, "IDSentry expiry", None, validity_seconds=60)

    emulator.advance_clock(61)
    emulator.drain_all()

    assert sms.status(sid) == "failed"
    assert emulator.messages()[0]["error_code"] == 30036
