"""Stripe webhook signature checks over exact bytes, with a two-sided timestamp window."""

from __future__ import annotations

import json

import pytest

from idsentry.services.stripe_signature import SignatureError, parse_header, sign, verify

pytestmark = pytest.mark.unit

SECRET = "whsec_unit_test_secret"
NOW = 1_796_402_400
PAYLOAD = b'{\n  "id": "evt_1", "livemode": false,\n  "type": "invoice.paid"\n}'


def _code(payload: bytes, header: str | None, secrets: list[str] | None = None) -> str | None:
    try:
        verify(payload, header, secrets or [SECRET], NOW)
    except SignatureError as error:
        return error.code
    return None


def test_valid_signature_accepted() -> None:
    assert _code(PAYLOAD, sign(PAYLOAD, SECRET, NOW)) is None


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_timestamp_inside_window(offset: int) -> None:
    assert _code(PAYLOAD, sign(PAYLOAD, SECRET, NOW + offset)) is None


@pytest.mark.parametrize("offset", [-301, -3600, 301, 86_400])
def test_timestamp_outside_window(offset: int) -> None:
    assert _code(PAYLOAD, sign(PAYLOAD, SECRET, NOW + offset)) == "signature.timestamp_out_of_range"


def test_reserialised_json_rejected() -> None:
    header = sign(PAYLOAD, SECRET, NOW)
    reserialised = json.dumps(json.loads(PAYLOAD)).encode()

    assert reserialised != PAYLOAD
    assert _code(reserialised, header) == "signature.mismatch"


def test_wrong_secret_rejected() -> None:
    assert _code(PAYLOAD, sign(PAYLOAD, "whsec_other", NOW)) == "signature.mismatch"


def test_previous_secret_accepted() -> None:
    header = sign(PAYLOAD, "whsec_previous", NOW)

    assert _code(PAYLOAD, header, [SECRET, "whsec_previous"]) is None


def test_any_v1_entry_matches() -> None:
    good = sign(PAYLOAD, SECRET, NOW).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{good},v0=ignored"

    assert _code(PAYLOAD, header) is None


def test_empty_secrets_never_match() -> None:
    header = sign(PAYLOAD, "", NOW)

    assert _code(PAYLOAD, header, ["", ""]) == "signature.mismatch"


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header(header: str | None) -> None:
    assert _code(PAYLOAD, header) == "signature.missing"


@pytest.mark.parametrize(
    "header",
    [
        "v1=abc",
        f"t={NOW}",
        f"t={NOW},v0=abc",
        "t=abc,v1=abc",
        f"t=-{NOW},v1=abc",
        f"t={NOW},t={NOW},v1=abc",
        f"t={NOW},v1",
        f"t={NOW},v1=",
        "garbage",
        "t=１２３,v1=abc",
        f"t={NOW},v1=签名",
    ],
)
def test_malformed_header(header: str) -> None:
    assert _code(PAYLOAD, header) == "signature.malformed"


def test_parse_header_keeps_every_v1() -> None:
    parsed = parse_header(f"t={NOW},v1=aa,v1=bb")

    assert parsed.timestamp == NOW
    assert parsed.signatures == ("aa", "bb")
