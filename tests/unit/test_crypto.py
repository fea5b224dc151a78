"""Unit tests for fingerprints, derived keys, field encryption and signed tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

import pytest

from idsentry.crypto import (
    CIPHERTEXT_PREFIX,
    DECRYPT_PURPOSES,
    DECRYPTED_METRIC,
    DecryptionError,
    Fingerprint,
    Pepper,
    TokenError,
    decrypt_field,
    encrypt_field,
    keyed_hash,
    sign_token,
    verify_token,
)
from idsentry.errors import ConfigurationError

pytestmark = pytest.mark.unit

PEPPER_1 = "p1-" + "a" * 40
PEPPER_2 = "p2-" + "b" * 40
PEPPER_3 = "p3-" + "c" * 40
SECRET = {"current": "2", "1": PEPPER_1, "2": PEPPER_2, "3": PEPPER_3}

DATA_KEY = bytes(range(32))
OTHER_DATA_KEY = bytes(range(32, 64))
OWNER_ID = "sub_01JTESTOWNER000000000000000"
PLAINTEXT = "阿依古丽·买买提 张三 zhang.san@example.com"

TOKEN_KEY = b"k" * 32
NOW = 1_800_000_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_body(key: bytes, body: str) -> str:
    """Sign an arbitrary body the way sign_token does, to reach the checks after the signature."""
    return f"{body}.{b64url(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


@pytest.fixture
def pepper() -> Pepper:
    return Pepper.from_secret(SECRET)


def test_pepper_from_secret(pepper: Pepper) -> None:
    assert pepper.current == "2"
    assert pepper.versions == {
        "1": PEPPER_1.encode(),
        "2": PEPPER_2.encode(),
        "3": PEPPER_3.encode(),
    }


def test_pepper_32_characters_accepted() -> None:
    pepper = Pepper.from_secret({"current": "1", "1": "x" * 32})

    assert pepper.versions["1"] == b"x" * 32


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ({"1": PEPPER_1}, "current"),
        ({"current": "2", "1": PEPPER_1}, "current"),
        ({"current": 1, "1": PEPPER_1}, "current"),
        ({"current": "1", "1": ""}, "current"),
        ({"current": "1"}, "current"),
        ({"current": "1", "1": "x" * 31}, "32 characters"),
        ({"current": "1", "1": PEPPER_1, "2": "short"}, "32 characters"),
    ],
)
def test_pepper_rejected(secret: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        Pepper.from_secret(secret)

    # The error must not echo any pepper value.
    for value in secret.values():
        if isinstance(value, str) and len(value) > 2:
            assert value not in str(caught.value)


def test_fingerprint_known_value(pepper: Pepper) -> None:
    expected = hmac.new(PEPPER_2.encode(), b"email\x1fzhang@example.com", hashlib.sha256)

    fingerprint = pepper.fingerprint("email", "zhang@example.com")

    assert fingerprint == Fingerprint(version="2", value=expected.hexdigest())
    assert str(fingerprint) == f"2:{expected.hexdigest()}"


def test_fingerprint_stable(pepper: Pepper) -> None:
    again = Pepper.from_secret(dict(SECRET))

    assert pepper.fingerprint("mobile", "+8619512340001") == again.fingerprint(
        "mobile", "+8619512340001"
    )


def test_fingerprint_differs_per_kind(pepper: Pepper) -> None:
    values = {
        pepper.fingerprint(kind, "123456789012").value
        for kind in ("id_number", "mobile", "email", "bank_card")
    }

    assert len(values) == 4


def test_fingerprint_differs_per_version(pepper: Pepper) -> None:
    by_version = {
        version: pepper.fingerprint("email", "zhang@example.com", version)
        for version in ("1", "2", "3")
    }

    assert len({fingerprint.value for fingerprint in by_version.values()}) == 3
    assert [fingerprint.version for fingerprint in by_version.values()] == ["1", "2", "3"]


def test_fingerprint_differs_per_value(pepper: Pepper) -> None:
    first = pepper.fingerprint("email", "zhang@example.com")

    assert first != pepper.fingerprint("email", "zhang@example.org")


def test_fingerprints_current_first(pepper: Pepper) -> None:
    fingerprints = pepper.fingerprints("id_number", "11010119900307109X")

    assert [fingerprint.version for fingerprint in fingerprints] == ["2", "1", "3"]
    assert fingerprints[0] == pepper.fingerprint("id_number", "11010119900307109X")
    assert fingerprints[1] == pepper.fingerprint("id_number", "11010119900307109X", "1")


def test_derive_key_per_purpose(pepper: Pepper) -> None:
    keys = {purpose: pepper.derive_key(purpose) for purpose in ("otp", "email-link", "source-ip")}

    assert len(set(keys.values())) == 3
    assert all(len(key) == 32 for key in keys.values())
    assert pepper.derive_key("otp") == keys["otp"]
    assert PEPPER_2.encode()[:32] not in keys.values()


def test_derive_key_follows_current() -> None:
    current_2 = Pepper.from_secret(SECRET)
    current_1 = Pepper.from_secret({**SECRET, "current": "1"})

    assert current_1.derive_key("otp") != current_2.derive_key("otp")


def test_keyed_hash_separates_parts() -> None:
    assert keyed_hash(TOKEN_KEY, "ab", "c") != keyed_hash(TOKEN_KEY, "a", "bc")
    assert keyed_hash(TOKEN_KEY, "a", "b") == keyed_hash(TOKEN_KEY, "a", "b")


def test_encrypt_round_trip() -> None:
    sealed = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)

    assert sealed.startswith(CIPHERTEXT_PREFIX)
    assert "张三" not in sealed
    assert "zhang" not in sealed
    assert decrypt_field(DATA_KEY, OWNER_ID, sealed, purpose="export") == PLAINTEXT


def test_encrypt_fresh_nonce() -> None:
    first = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)
    second = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)

    assert first != second
    assert decrypt_field(DATA_KEY, OWNER_ID, second, purpose="export") == PLAINTEXT


def test_encrypt_empty_text() -> None:
    sealed = encrypt_field(DATA_KEY, OWNER_ID, "")

    assert decrypt_field(DATA_KEY, OWNER_ID, sealed, purpose="export") == ""


def test_decrypt_other_owner() -> None:
    sealed = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)

    with pytest.raises(DecryptionError):
        decrypt_field(DATA_KEY, "sub_01JOTHEROWNER00000000000000", sealed, purpose="export")


def test_decrypt_other_key() -> None:
    sealed = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)

    with pytest.raises(DecryptionError):
        decrypt_field(OTHER_DATA_KEY, OWNER_ID, sealed, purpose="export")


@pytest.mark.parametrize("position", [0, 11, 12, 20, -17, -1])
def test_decrypt_tampered_byte(position: int) -> None:
    # Positions 0-11 are the nonce, then the ciphertext, then the 16-byte tag.
    sealed = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)
    raw = bytearray(base64.b64decode(sealed[len(CIPHERTEXT_PREFIX) :]))
    raw[position] ^= 0x01
    tampered = CIPHERTEXT_PREFIX + base64.b64encode(bytes(raw)).decode()

    with pytest.raises(DecryptionError):
        decrypt_field(DATA_KEY, OWNER_ID, tampered, purpose="export")


def test_decrypt_unknown_prefix() -> None:
    sealed = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)

    with pytest.raises(DecryptionError):
        decrypt_field(
            DATA_KEY, OWNER_ID, "g2:" + sealed[len(CIPHERTEXT_PREFIX) :], purpose="export"
        )


def test_decrypt_truncated_tag() -> None:
    sealed = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)
    raw = base64.b64decode(sealed[len(CIPHERTEXT_PREFIX) :])

    with pytest.raises(DecryptionError):
        decrypt_field(
            DATA_KEY,
            OWNER_ID,
            CIPHERTEXT_PREFIX + base64.b64encode(raw[:20]).decode(),
            purpose="export",
        )


def emitted_metrics(output: str) -> list[dict[str, Any]]:
    """Return the embedded-metric documents among the printed lines."""
    documents = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [document for document in documents if "_aws" in document]


@pytest.mark.parametrize("purpose", DECRYPT_PURPOSES)
def test_decrypt_counts_purpose(purpose: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sealed = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)
    capsys.readouterr()

    decrypt_field(DATA_KEY, OWNER_ID, sealed, purpose=purpose)
    decrypt_field(DATA_KEY, OWNER_ID, sealed, purpose=purpose)

    metrics = emitted_metrics(capsys.readouterr().out)
    assert len(metrics) == 2
    definition = metrics[0]["_aws"]["CloudWatchMetrics"][0]
    assert definition["Namespace"] == "IDSentry"
    assert definition["Metrics"] == [{"Name": DECRYPTED_METRIC, "Unit": "Count"}]
    assert "purpose" in definition["Dimensions"][0]
    assert metrics[0]["purpose"] == purpose
    assert metrics[0][DECRYPTED_METRIC] == [1.0]


def test_decrypt_metric_without_data(capsys: pytest.CaptureFixture[str]) -> None:
    sealed = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)
    capsys.readouterr()

    decrypt_field(DATA_KEY, OWNER_ID, sealed, purpose="export")

    output = capsys.readouterr().out
    assert OWNER_ID not in output
    assert "zhang" not in output


def test_failed_decrypt_not_counted(capsys: pytest.CaptureFixture[str]) -> None:
    sealed = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)
    capsys.readouterr()

    with pytest.raises(DecryptionError):
        decrypt_field(OTHER_DATA_KEY, OWNER_ID, sealed, purpose="export")

    assert emitted_metrics(capsys.readouterr().out) == []


def test_decrypt_unknown_purpose() -> None:
    sealed = encrypt_field(DATA_KEY, OWNER_ID, PLAINTEXT)
    purpose: Any = "curiosity"

    with pytest.raises(ValueError, match="unknown decryption purpose 'curiosity'"):
        decrypt_field(DATA_KEY, OWNER_ID, sealed, purpose=purpose)


@pytest.mark.parametrize("body", ["", "AAAA", "!!!", "abc"])
def test_decrypt_garbled(body: str) -> None:
    with pytest.raises(DecryptionError):
        decrypt_field(DATA_KEY, OWNER_ID, CIPHERTEXT_PREFIX + body, purpose="export")


def test_token_round_trip() -> None:
    payload = {"sub": "sub_01JTEST", "efp": "2:abc", "exp": NOW + 60, "note": "确认"}

    token = sign_token(TOKEN_KEY, payload)

    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert verify_token(TOKEN_KEY, token, NOW) == payload


def test_token_expiry_boundary() -> None:
    token = sign_token(TOKEN_KEY, {"exp": NOW})

    assert verify_token(TOKEN_KEY, token, NOW - 1) == {"exp": NOW}
    with pytest.raises(TokenError, match="expired"):
        verify_token(TOKEN_KEY, token, NOW)
    with pytest.raises(TokenError, match="expired"):
        verify_token(TOKEN_KEY, token, NOW + 1)


def test_token_tampered_payload() -> None:
    token = sign_token(TOKEN_KEY, {"sub": "sub_A", "exp": NOW + 60})
    _, signature = token.split(".")
    forged_body = b64url(
        json.dumps({"exp": NOW + 60, "sub": "sub_B"}, separators=(",", ":")).encode()
    )

    with pytest.raises(TokenError, match="signature"):
        verify_token(TOKEN_KEY, f"{forged_body}.{signature}", NOW)


@pytest.mark.parametrize("index", [0, 21, -1])
def test_token_tampered_signature(index: int) -> None:
    token = sign_token(TOKEN_KEY, {"exp": NOW + 60})
    body, signature = token.split(".")
    characters = list(signature)
    characters[index] = "A" if characters[index] != "A" else "B"

    with pytest.raises(TokenError, match="signature"):
        verify_token(TOKEN_KEY, f"{body}.{''.join(characters)}", NOW)


def test_token_other_key() -> None:
    token = sign_token(TOKEN_KEY, {"exp": NOW + 60})

    with pytest.raises(TokenError, match="signature"):
        verify_token(b"o" * 32, token, NOW)


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.", ".abc", "a.b.c", "abc def", "确认.abc"])
def test_token_malformed(token: str) -> None:
    with pytest.raises(TokenError):
        verify_token(TOKEN_KEY, token, NOW)


@pytest.mark.parametrize(
    "body",
    [
        b64url(b"not json"),
        b64url(b"\xff\xfe"),
        b64url(b"[1, 2]"),
        b64url(b'{"sub": "x"}'),
        b64url(b'{"exp": "1900000000"}'),
        b64url(b'{"exp": 1900000000.5}'),
    ],
)
def test_token_signed_bad_payload(body: str) -> None:
    with pytest.raises(TokenError):
        verify_token(TOKEN_KEY, signed_body(TOKEN_KEY, body), NOW)


@pytest.mark.parametrize("token", ["abc.签名", "abc.ab\u00e9"])
def test_token_non_ascii(token: str) -> None:
    with pytest.raises(TokenError):
        verify_token(TOKEN_KEY, token, NOW)
