"""Twilio's create errors, from the emulator through the SMS adapter, as ProviderError."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from idsentry.adapters.sms import TwilioSms
from idsentry.errors import ProviderError
from infra.local.emulators.twilio import (
    TwilioEmulator,
    new_account_sid,
    new_messaging_service_sid,
)
from tests.integration.conftest import MovableClock

pytestmark = pytest.mark.integration

AUTH_TOKEN = "adapter-auth-token"
MOBILE = "+14155550123"
OTHER_MOBILE = "+14155550124"


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
    )


@pytest.mark.parametrize("code", [21610, 21211, 21614])
def test_number_error_permanent(emulator: TwilioEmulator, sms: TwilioSms, code: int) -> None:
    emulator.fail_creates_to(MOBILE, code)

    with pytest.raises(ProviderError) as raised:
        sms.send(MOBILE, "IDSentry test", None)

    assert raised.value.code == str(code)
    assert raised.value.transient is False
    assert raised.value.provider == "twilio"


def test_number_error_only_that_number(emulator: TwilioEmulator, sms: TwilioSms) -> None:
    emulator.fail_creates_to(MOBILE, 21610)

    sid = sms.send(OTHER_MOBILE, "IDSentry test", None)

    assert sms.status(sid) == "accepted"
    assert [message["to"] for message in emulator.messages()] == [OTHER_MOBILE]


@pytest.mark.parametrize(("status", "code"), [(429, "20429"), (500, "20500"), (503, "20503")])
def test_throttle_and_server_error_transient(
    emulator: TwilioEmulator, sms: TwilioSms, status: int, code: str
) -> None:
    emulator.fail_next_creates(1, status)

    with pytest.raises(ProviderError) as raised:
        sms.send(MOBILE, "IDSentry test", None)
    retried = sms.send(MOBILE, "IDSentry test", None)

    assert raised.value.transient is True
    assert raised.value.code == code
    assert str(status) in str(raised.value)
    assert sms.status(retried) == "accepted"


def test_unreachable_emulator_transient(emulator: TwilioEmulator) -> None:
    base_url = emulator.base_url
    emulator.stop()
    sms = TwilioSms(
        emulator.account_sid, AUTH_TOKEN, new_messaging_service_sid(), base_url=base_url
    )

    with pytest.raises(ProviderError) as raised:
        sms.send(MOBILE, "IDSentry test", None)

    assert raised.value.transient is True
    assert raised.value.code is None


def test_validity_expiry_is_a_callback_code(
    emulator: TwilioEmulator, sms: TwilioSms, clock: MovableClock
) -> None:
    # A message that waits past its validity is accepted first and fails later, as 30036.
    sid = sms.send(MOBILE, "IDSentry test", None, validity_seconds=1)
    clock.advance(seconds=5)

    emulator.drain_all()

    assert sms.status(sid) == "failed"
    assert next(m for m in emulator.messages() if m["sid"] == sid)["error_code"] == 30036
