"""Access tokens of the account routes: compact JWS JWTs (RFC 7515, RFC 7519) signed with ES256.

A KMS key (ECC_NIST_P256, SIGN_VERIFY) signs, so the private key never leaves KMS. KMS returns
ECDSA signatures in ASN.1 DER, while a JWS carries the fixed-size pair r || s, 32 bytes each
(RFC 7518, section 3.4); `der_to_raw` and `raw_to_der` convert between the two.

Verification accepts one algorithm, ES256, and one key id. It checks the signature before it
reads any claim, then the issuer, the audience, the expiry and not-before times (with a small
leeway for clock skew), the issue time and the lifetime, the subject and the token id.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from idsentry import jsontext
from idsentry.ids import new_id

ALGORITHM = "ES256"
AUDIENCE = "idsentry-account"
TOKEN_TYPE = "Bearer"  # noqa: S105 - the OAuth 2.0 token type, not a secret
# Seconds of clock skew allowed between the issuer and the verifier.
LEEWAY_SECONDS = 30
# A signed token of ours has about 430 characters, so anything far longer is not one.
MAX_TOKEN_CHARS = 4096
COORDINATE_BYTES = 32
# The order n of the P-256 group (SEC 2, section 2.4.2). Valid ECDSA values r and s lie in [1, n-1].
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_SUBSCRIBER_ID = re.compile(r"sbr_[0-9A-HJKMNP-TV-Z]{26}")


class TokenInvalidError(ValueError):
    """An access token that must be rejected. `reason` gives the cause for logs, never the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid access token: {reason}")
        self.reason = reason


class TokenSigner(Protocol):
    """Signs with the private key of the token key (KMS in production)."""

    @property
    def key_id(self) -> str:
        """The key id written to the token header's `kid`."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Return the ASN.1 DER ECDSA P-256 signature over SHA-256 of `message`."""
        ...


@dataclass(frozen=True)
class VerificationKey:
    """The public half of the token key, with the key id tokens must name."""

    key_id: str
    public_key: ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class IssuedToken:
    """An access token as the sign-in response returns it."""

    access_token: str
    token_id: str
    expires_in: int


@dataclass(frozen=True)
class TokenClaims:
    """The claims of a verified access token that the account routes use."""

    subscriber_id: str
    token_id: str
    issued_at: int
    expires_at: int


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str, part: str) -> bytes:
    # A length of 1 modulo 4 cannot come from base64url without padding.
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise TokenInvalidError(f"{part} is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenInvalidError(f"{part} is not base64url") from exc


def _json_object(data: bytes, part: str) -> dict[str, Any]:
    def reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        if len(names) != len(set(names)):
            raise TokenInvalidError(f"{part} repeats a member name")
        return dict(pairs)

    try:
        value = jsontext.loads(data.decode("utf-8"), object_pairs_hook=reject_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, TokenInvalidError):
            raise
        raise TokenInvalidError(f"{part} is not JSON") from exc
    if not isinstance(value, dict):
        raise TokenInvalidError(f"{part} is not a JSON object")
    return value


def der_to_raw(der: bytes) -> bytes:
    """Convert an ASN.1 DER ECDSA P-256 signature to the JWS form r || s (64 bytes)."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(COORDINATE_BYTES, "big") + s.to_bytes(COORDINATE_BYTES, "big")


def raw_to_der(raw: bytes) -> bytes:
    """Convert a JWS ES256 signature r || s to ASN.1 DER. Raises TokenInvalidError when malformed."""
    if len(raw) != 2 * COORDINATE_BYTES:
        raise TokenInvalidError("signature is not 64 bytes")
    r = int.from_bytes(raw[:COORDINATE_BYTES], "big")
    s = int.from_bytes(raw[COORDINATE_BYTES:], "big")
    # OpenSSL rejects these too. Checking here keeps the rule independent of the backend.
    if not (0 < r < P256_ORDER and 0 < s < P256_ORDER):
        raise TokenInvalidError("signature values are out of range")
    return encode_dss_signature(r, s)


def issue_access_token(
    signer: TokenSigner, issuer: str, subscriber_id: str, now: int, lifetime_seconds: int
) -> IssuedToken:
    """Sign an access token for `subscriber_id`, valid from `now` for `lifetime_seconds`."""
    token_id = new_id("tok")
    header = {"alg": ALGORITHM, "typ": "JWT", "kid": signer.key_id}
    claims = {
        "iss": issuer,
        "sub": subscriber_id,
        "aud": AUDIENCE,
        "jti": token_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_seconds,
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = der_to_raw(signer.sign(signing_input.encode("ascii")))
    return IssuedToken(f"{signing_input}.{_b64url(signature)}", token_id, lifetime_seconds)


def _verify_header(header: dict[str, Any], key: VerificationKey) -> None:
    if header.get("alg") != ALGORITHM:
        # Rejects "none", HMAC algorithms and every other curve: one algorithm is accepted.
        raise TokenInvalidError("algorithm is not ES256")
    if "typ" in header and header["typ"] != "JWT":
        raise TokenInvalidError("type is not JWT")
    if "crit" in header:
        raise TokenInvalidError("header has critical extensions")
    if header.get("kid") != key.key_id:
        raise TokenInvalidError("key id is unknown")


def _time_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenInvalidError(f"{name} is missing or not an integer")
    return value


def _verify_claims(
    claims: dict[str, Any], issuer: str, now: int, leeway: int, max_lifetime: int
) -> TokenClaims:
    if claims.get("iss") != issuer:
        raise TokenInvalidError("issuer does not match")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if AUDIENCE not in audiences:
        raise TokenInvalidError("audience does not match")

    expires_at = _time_claim(claims, "exp")
    not_before = _time_claim(claims, "nbf")
    issued_at = _time_claim(claims, "iat")
    if now >= expires_at + leeway:
        raise TokenInvalidError("token has expired")
    if not_before > now + leeway:
        raise TokenInvalidError("token is not valid yet")
    if issued_at > now + leeway:
        raise TokenInvalidError("token is issued in the future")
    if expires_at - issued_at > max_lifetime:
        raise TokenInvalidError("token lifetime is longer than allowed")

    subject = claims.get("sub")
    if not isinstance(subject, str) or not _SUBSCRIBER_ID.fullmatch(subject):
        raise TokenInvalidError("subject is not a subscriber id")
    token_id = claims.get("jti")
    if not isinstance(token_id, str) or not token_id:
        raise TokenInvalidError("token id is missing")
    return TokenClaims(subject, token_id, issued_at, expires_at)


def verify_access_token(
    token: str,
    key: VerificationKey,
    issuer: str,
    now: int,
    *,
    max_lifetime: int,
    leeway: int = LEEWAY_SECONDS,
) -> TokenClaims:
    """Verify an access token and return its claims. Raises TokenInvalidError for any fault."""
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise TokenInvalidError("token is too long or not ASCII")
    segments = token.split(".")
    if len(segments) != 3:
        raise TokenInvalidError("token does not have three segments")
    encoded_header, encoded_claims, encoded_signature = segments

    header = _json_object(_b64url_decode(encoded_header, "header"), "header")
    _verify_header(header, key)
    der = raw_to_der(_b64url_decode(encoded_signature, "signature"))
    signing_input = f"{encoded_header}.{encoded_claims}".encode("ascii")
    try:
        key.public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise TokenInvalidError("signature does not verify") from exc

    claims = _json_object(_b64url_decode(encoded_claims, "claims"), "claims")
    return _verify_claims(claims, issuer, now, leeway, max_lifetime)
