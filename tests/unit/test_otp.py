"""Unit tests for one-time code generation, keyed code hashes and the code check order."""

from __future__ import annotations

import re

import pytest

from idsentry.services.otp import (
    MAX_ATTEMPTS,
    CodeCheck,
    CodeRecord,
    check_code,
    generate_code,
    hash_code,
)

pytestmark = pytest.mark.unit

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SIGNUP_ID = "sgn_01JTESTSIGNUP0000000000000"
CODE_ID = "code_01JTESTCODE00000000000000"
CODE = "048213"
EXPIRES_AT = 1_800_000_600
BEFORE_EXPIRY = EXPIRES_AT - 1


def record(*, attempts: int = 0, used: bool = False, code_id: str = CODE_ID) -> CodeRecord:
    return CodeRecord(
        code_id=code_id,
        code_hash=hash_code(KEY, SIGNUP_ID, code_id, CODE),
        expires_at=EXPIRES_AT,
        attempts=attempts,
        used=used,
    )


@pytest.mark.parametrize(
    ("drawn", "expected"), [(0, "000000"), (42, "000042"), (999_999, "999999")]
)
def test_code_keeps_leading_zeros(
    monkeypatch: pytest.MonkeyPatch, drawn: int, expected: str
) -> None:
    bounds: list[int] = []

    def fake_randbelow(bound: int) -> int:
        bounds.append(bound)
        return drawn

    monkeypatch.setattr("idsentry.services.otp.secrets.randbelow", fake_randbelow)

    assert generate_code() == expected
    assert bounds == [1_000_000]


def test_code_six_ascii_digits() -> None:
    for _ in range(200):
        code = generate_code()
        assert re.fullmatch(r"[0-9]{6}", code), code
        assert code.isascii()


def test_hash_stable() -> None:
    first = hash_code(KEY, SIGNUP_ID, CODE_ID, CODE)

    assert first == hash_code(KEY, SIGNUP_ID, CODE_ID, CODE)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert CODE not in first


@pytest.mark.parametrize(
    ("key", "signup_id", "code_id", "code"),
    [
        (KEY, "sgn_01JOTHERSIGNUP000000000000", CODE_ID, CODE),
        (KEY, SIGNUP_ID, "code_01JOTHERCODE0000000000000", CODE),
        (KEY, SIGNUP_ID, CODE_ID, "048214"),
        (OTHER_KEY, SIGNUP_ID, CODE_ID, CODE),
        # Shifting characters between parts must change the hash.
        (KEY, SIGNUP_ID + "c", "ode_01JTESTCODE00000000000000", CODE),
    ],
)
def test_hash_binds_every_part(key: bytes, signup_id: str, code_id: str, code: str) -> None:
    assert hash_code(key, signup_id, code_id, code) != hash_code(KEY, SIGNUP_ID, CODE_ID, CODE)


@pytest.mark.parametrize(
    ("stored", "candidate", "now", "expected"),
    [
        # Used comes first, whatever else is true.
        (record(used=True), CODE, BEFORE_EXPIRY, CodeCheck.USED),
        (record(used=True, attempts=MAX_ATTEMPTS), CODE, EXPIRES_AT + 60, CodeCheck.USED),
        # Locked comes before expiry and before the code itself.
        (record(attempts=MAX_ATTEMPTS), CODE, BEFORE_EXPIRY, CodeCheck.LOCKED),
        (record(attempts=MAX_ATTEMPTS + 1), CODE, BEFORE_EXPIRY, CodeCheck.LOCKED),
        (record(attempts=MAX_ATTEMPTS), CODE, EXPIRES_AT, CodeCheck.LOCKED),
        # The expiry instant itself counts as expired.
        (record(), CODE, EXPIRES_AT, CodeCheck.EXPIRED),
        (record(), CODE, EXPIRES_AT + 1, CodeCheck.EXPIRED),
        (record(), "000000", EXPIRES_AT, CodeCheck.EXPIRED),
        (record(), CODE, BEFORE_EXPIRY, CodeCheck.ACCEPTED),
        (record(attempts=MAX_ATTEMPTS - 1), CODE, BEFORE_EXPIRY, CodeCheck.ACCEPTED),
        (record(), "048214", BEFORE_EXPIRY, CodeCheck.INCORRECT),
        (record(), "", BEFORE_EXPIRY, CodeCheck.INCORRECT),
        (record(attempts=MAX_ATTEMPTS - 1), "999999", BEFORE_EXPIRY, CodeCheck.INCORRECT),
    ],
)
def test_check_order(stored: CodeRecord, candidate: str, now: int, expected: CodeCheck) -> None:
    assert check_code(stored, KEY, SIGNUP_ID, candidate, now) is expected


def test_check_other_signup_incorrect() -> None:
    outcome = check_code(record(), KEY, "sgn_01JOTHERSIGNUP000000000000", CODE, BEFORE_EXPIRY)

    assert outcome is CodeCheck.INCORRECT


def test_check_other_code_id_incorrect() -> None:
    # The stored hash was made for CODE_ID, so a record naming another code id must not match it.
    stored = record()
    moved = CodeRecord(
        code_id="code_01JOTHERCODE0000000000000",
        code_hash=stored.code_hash,
        expires_at=stored.expires_at,
        attempts=0,
        used=False,
    )

    assert check_code(moved, KEY, SIGNUP_ID, CODE, BEFORE_EXPIRY) is CodeCheck.INCORRECT


def test_check_other_key_incorrect() -> None:
    assert check_code(record(), OTHER_KEY, SIGNUP_ID, CODE, BEFORE_EXPIRY) is CodeCheck.INCORRECT
