"""Unit tests of the ES256 access tokens: encoding, signature forms and every rejection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from idsentry.services import tokens
from idsentry.services.tokens import (
    AUDIENCE,
    P256_ORDER,
    TokenInvalidError,
    VerificationKey,
    der_to_raw,
    issue_access_token,
    raw_to_der,
    verify_access_token,
)

pytestmark = pytest.mark.unit

ISSUER = "https://idsentry.example.com"
SUBSCRIBER = "sbr_01M91B4ABG36G2R8D4PV2HM6CG"
NOW = 1_796_415_302
LIFETIME = 900
KEY_ID = "0b8c2c65-6f3f-4d0e-9f5c-3d6a2e1b7c90"


class LocalSigner:
    """Signs like KMS does for ECDSA_SHA_256: a DER signature over SHA-256 of the message."""

    def __init__(self, key_id: str = KEY_ID) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self._key_id = key_id

    @property
    def key_id(self) -> str:
        return self._key_id

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))

    def verification_key(self) -> VerificationKey:
        return VerificationKey(self._key_id, self.private_key.public_key())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "iss": ISSUER,
        "sub": SUBSCRIBER,
        "aud": AUDIENCE,
        "jti": "tok_01M91B4ABG36G2R8D4PV2HM6CH",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + LIFETIME,
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def signed(
    signer: LocalSigner, payload: dict[str, Any], header: dict[str, Any] | None = None
) -> str:
    """Build a correctly signed JWS over any header and claims, to test the claim checks."""
    head = header if header is not None else {"alg": "ES256", "typ": "JWT", "kid": signer.key_id}
    signing_input = f"{b64url_json(head)}.{b64url_json(payload)}"
    signature = der_to_raw(signer.sign(signing_input.encode()))
    return f"{signing_input}.{b64url(signature)}"


def verify(token: str, signer: LocalSigner, now: int = NOW) -> tokens.TokenClaims:
    return verify_access_token(token, signer.verification_key(), ISSUER, now, max_lifetime=LIFETIME)


def rejection(token: str, signer: LocalSigner, now: int = NOW) -> str:
    with pytest.raises(TokenInvalidError) as raised:
        verify(token, signer, now)
    return raised.value.reason


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    return LocalSigner()


def test_issued_token_verifies(signer: LocalSigner) -> None:
    issued = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, LIFETIME)

    verified = verify(issued.access_token, signer)

    assert verified.subscriber_id == SUBSCRIBER
    assert verified.token_id == issued.token_id
    assert verified.issued_at == NOW
    assert verified.expires_at == NOW + LIFETIME
    assert issued.expires_in == LIFETIME


def test_issued_token_layout(signer: LocalSigner) -> None:
    issued = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, LIFETIME)
    header, payload, signature = issued.access_token.split(".")

    assert json.loads(unb64url(header)) == {
        "alg": "ES256",
        "typ": "JWT",
        "kid": KEY_ID,
    }
    decoded = json.loads(unb64url(payload))
    assert decoded["aud"] == "idsentry-account"
    assert decoded["iss"] == ISSUER
    assert decoded["sub"] == SUBSCRIBER
    assert decoded["exp"] - decoded["iat"] == LIFETIME
    assert decoded["jti"].startswith("tok_")
    # RFC 7518, section 3.4: ES256 signatures are r || s, 32 bytes each, not DER.
    assert len(unb64url(signature)) == 64


def test_token_ids_unique(signer: LocalSigner) -> None:
    first = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, LIFETIME)
    second = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, LIFETIME)

    assert first.token_id != second.token_id


def test_der_raw_round_trip(signer: LocalSigner) -> None:
    for index in range(20):
        der = signer.sign(f"message {index}".encode())

        raw = der_to_raw(der)

        assert len(raw) == 64
        assert raw_to_der(raw) == der
        r, s = decode_dss_signature(der)
        assert int.from_bytes(raw[:32], "big") == r
        assert int.from_bytes(raw[32:], "big") == s


def test_der_to_raw_pads_short_values() -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    raw = der_to_raw(encode_dss_signature(1, 255))

    assert raw == (1).to_bytes(32, "big") + (255).to_bytes(32, "big")


def test_tampered_signature_rejected(signer: LocalSigner) -> None:
    token = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, LIFETIME).access_token
    head, body, signature = token.split(".")
    raw = bytearray(unb64url(signature))
    raw[10] ^= 0x01

    assert rejection(f"{head}.{body}.{b64url(bytes(raw))}", signer) == "signature does not verify"


def test_tampered_claims_rejected(signer: LocalSigner) -> None:
    token = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, LIFETIME).access_token
    head, _, signature = token.split(".")
    other = b64url_json(claims(sub="sbr_01M91B4ABG36G2R8D4PV2HM6CZ"))

    assert rejection(f"{head}.{other}.{signature}", signer) == "signature does not verify"


def test_other_key_rejected(signer: LocalSigner) -> None:
    impostor = LocalSigner()
    token = issue_access_token(impostor, ISSUER, SUBSCRIBER, NOW, LIFETIME).access_token

    assert rejection(token, signer) == "signature does not verify"


def test_unknown_key_id_rejected(signer: LocalSigner) -> None:
    token = signed(signer, claims(), {"alg": "ES256", "typ": "JWT", "kid": "another-key"})

    assert rejection(token, signer) == "key id is unknown"


@pytest.mark.parametrize("algorithm", ["none", "None", "NONE", "", None])
def test_alg_none_rejected(signer: LocalSigner, algorithm: str | None) -> None:
    header: dict[str, Any] = {"typ": "JWT", "kid": KEY_ID}
    if algorithm is not None:
        header["alg"] = algorithm
    unsigned = f"{b64url_json(header)}.{b64url_json(claims())}."

    assert rejection(unsigned, signer) == "algorithm is not ES256"


def test_alg_none_with_signature_rejected(signer: LocalSigner) -> None:
    valid = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, LIFETIME).access_token
    header = b64url_json({"alg": "none", "typ": "JWT", "kid": KEY_ID})

    token = ".".join([header, *valid.split(".")[1:]])

    assert rejection(token, signer) == "algorithm is not ES256"


def test_hmac_with_public_key_rejected(signer: LocalSigner) -> None:
    # The algorithm-confusion attack: an HS256 token keyed with the public key's bytes.
    public_pem = signer.private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        f"{b64url_json({'alg': 'HS256', 'typ': 'JWT', 'kid': KEY_ID})}.{b64url_json(claims())}"
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()

    assert rejection(f"{signing_input}.{b64url(mac)}", signer) == "algorithm is not ES256"


@pytest.mark.parametrize("algorithm", ["ES384", "RS256", "es256", "PS256"])
def test_other_algorithms_rejected(signer: LocalSigner, algorithm: str) -> None:
    token = signed(signer, claims(), {"alg": algorithm, "typ": "JWT", "kid": KEY_ID})

    assert rejection(token, signer) == "algorithm is not ES256"


def test_zero_signature_rejected(signer: LocalSigner) -> None:
    # r = s = 0 verifies under broken ECDSA implementations (CVE-2022-21449 in Java).
    head = b64url_json({"alg": "ES256", "typ": "JWT", "kid": KEY_ID})
    token = f"{head}.{b64url_json(claims())}.{b64url(bytes(64))}"

    assert rejection(token, signer) == "signature values are out of range"


def test_signature_at_group_order_rejected(signer: LocalSigner) -> None:
    order = P256_ORDER.to_bytes(32, "big")
    head = b64url_json({"alg": "ES256", "typ": "JWT", "kid": KEY_ID})
    token = f"{head}.{b64url_json(claims())}.{b64url(order + order)}"

    assert rejection(token, signer) == "signature values are out of range"


def test_der_signature_rejected(signer: LocalSigner) -> None:
    # A DER signature (as KMS returns it) is not the JWS form and must not be accepted.
    head = b64url_json({"alg": "ES256", "typ": "JWT", "kid": KEY_ID})
    body = b64url_json(claims())
    der = signer.sign(f"{head}.{body}".encode())

    assert rejection(f"{head}.{body}.{b64url(der)}", signer) == "signature is not 64 bytes"


def test_wrong_audience_rejected(signer: LocalSigner) -> None:
    assert rejection(signed(signer, claims(aud="idsentry-admin")), signer) == (
        "audience does not match"
    )
    assert rejection(signed(signer, claims(aud=None)), signer) == "audience does not match"


def test_audience_list_accepted(signer: LocalSigner) -> None:
    token = signed(signer, claims(aud=["other-service", AUDIENCE]))

    assert verify(token, signer).subscriber_id == SUBSCRIBER


def test_wrong_issuer_rejected(signer: LocalSigner) -> None:
    token = signed(signer, claims(iss="https://evil.example.net"))

    assert rejection(token, signer) == "issuer does not match"


def test_missing_issuer_rejected(signer: LocalSigner) -> None:
    assert rejection(signed(signer, claims(iss=None)), signer) == "issuer does not match"


def test_expired_rejected_after_leeway(signer: LocalSigner) -> None:
    token = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, LIFETIME).access_token
    expiry = NOW + LIFETIME

    assert verify(token, signer, now=expiry + tokens.LEEWAY_SECONDS - 1).subscriber_id
    assert rejection(token, signer, now=expiry + tokens.LEEWAY_SECONDS) == "token has expired"


def test_not_yet_valid_rejected(signer: LocalSigner) -> None:
    token = signed(signer, claims(nbf=NOW + 120, iat=NOW, exp=NOW + 600))

    assert rejection(token, signer) == "token is not valid yet"


def test_small_clock_skew_accepted(signer: LocalSigner) -> None:
    token = signed(signer, claims(nbf=NOW + 20, iat=NOW + 20, exp=NOW + 20 + LIFETIME))

    assert verify(token, signer).subscriber_id == SUBSCRIBER


def test_issued_in_future_rejected(signer: LocalSigner) -> None:
    token = signed(signer, claims(iat=NOW + 300, nbf=NOW, exp=NOW + 600))

    assert rejection(token, signer) == "token is issued in the future"


def test_long_lifetime_rejected(signer: LocalSigner) -> None:
    token = signed(signer, claims(exp=NOW + LIFETIME + 1))

    assert rejection(token, signer) == "token lifetime is longer than allowed"


@pytest.mark.parametrize(
    ("name", "value"),
    [("exp", "1796416202"), ("exp", True), ("nbf", None), ("iat", 1.5), ("exp", None)],
)
def test_bad_time_claims_rejected(signer: LocalSigner, name: str, value: Any) -> None:
    token = signed(signer, claims(**{name: value}))

    assert rejection(token, signer) == f"{name} is missing or not an integer"


@pytest.mark.parametrize("subject", [None, "", "sgn_01M91B4ABG36G2R8D4PV2HM6CG", "sbr_x", 42])
def test_bad_subject_rejected(signer: LocalSigner, subject: Any) -> None:
    token = signed(signer, claims(sub=subject))

    assert rejection(token, signer) == "subject is not a subscriber id"


def test_missing_token_id_rejected(signer: LocalSigner) -> None:
    assert rejection(signed(signer, claims(jti=None)), signer) == "token id is missing"


def test_critical_header_rejected(signer: LocalSigner) -> None:
    header = {"alg": "ES256", "typ": "JWT", "kid": KEY_ID, "crit": ["exp"]}

    assert rejection(signed(signer, claims(), header), signer) == "header has critical extensions"


def test_other_type_rejected(signer: LocalSigner) -> None:
    header = {"alg": "ES256", "typ": "at+jwt+other", "kid": KEY_ID}

    assert rejection(signed(signer, claims(), header), signer) == "type is not JWT"


def test_duplicate_member_rejected(signer: LocalSigner) -> None:
    head = b64url(f'{{"alg":"ES256","kid":"{KEY_ID}","alg":"none"}}'.encode())
    token = f"{head}.{b64url_json(claims())}.{b64url(bytes(64))}"

    assert rejection(token, signer) == "header repeats a member name"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("abc.def", "token does not have three segments"),
        ("a.b.c.d", "token does not have three segments"),
        ("", "token does not have three segments"),
        ("x" * 5000, "token is too long or not ASCII"),
        ("ä.b.c", "token is too long or not ASCII"),
        ("a+b.c.d", "header is not base64url"),
        ("eyJ=.e30.AA", "header is not base64url"),
        ("e30x.e30.AA", "header is not JSON"),
        ("W10.e30.AA", "header is not a JSON object"),
    ],
)
def test_malformed_tokens_rejected(signer: LocalSigner, token: str, reason: str) -> None:
    assert rejection(token, signer) == reason


def test_claims_must_be_object(signer: LocalSigner) -> None:
    head = b64url_json({"alg": "ES256", "typ": "JWT", "kid": KEY_ID})
    body = b64url_json(["not", "an", "object"])
    signature = der_to_raw(signer.sign(f"{head}.{body}".encode()))

    assert rejection(f"{head}.{body}.{b64url(signature)}", signer) == "claims is not a JSON object"


def test_deeply_nested_header_rejected(signer: LocalSigner) -> None:
    # 1,500 levels fit in the token length limit and exceed the JSON decoder's recursion limit.
    header = b64url(b"[" * 1500 + b"]" * 1500)

    assert rejection(f"{header}.e30.AAAA", signer) == "header is not JSON"
