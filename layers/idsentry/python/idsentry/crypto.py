"""Keyed fingerprints, derived signing keys and AES-256-GCM field encryption."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idsentry.errors import ConfigurationError

NONCE_BYTES = 12
CIPHERTEXT_PREFIX = "g1:"

# Purposes for which a subscriber's (or pending signup's) personal data is decrypted. Each
# decryption adds one to the CloudWatch metric DECRYPTED_METRIC with the purpose as a
# dimension, and the template's alarm on unusual volume sums the metric over every purpose.
DecryptPurpose = Literal["notification", "signup", "breach_check", "export", "deletion"]
DECRYPT_PURPOSES: tuple[str, ...] = get_args(DecryptPurpose)
DECRYPTED_METRIC = "PersonalDataDecrypted"
# Set here, not only through POWERTOOLS_METRICS_NAMESPACE, because the local stack and the
# tests do not set that variable and Powertools rejects a metric without a namespace.
METRICS_NAMESPACE = "IDSentry"


class DecryptionError(ValueError):
    """A ciphertext failed authentication: wrong key, wrong owner id or tampered data."""


class TokenError(ValueError):
    """A signed token is malformed, has a bad signature or has expired."""


@dataclass(frozen=True)
class Fingerprint:
    """HMAC-SHA256 of a canonical identifier, tagged with the pepper version that keyed it."""

    version: str
    value: str

    def __str__(self) -> str:
        return f"{self.version}:{self.value}"


@dataclass(frozen=True)
class Pepper:
    """The fingerprint pepper: every live version's key and the version new fingerprints use."""

    versions: dict[str, bytes]
    current: str

    @classmethod
    def from_secret(cls, secret: dict[str, Any]) -> Pepper:
        """Parse the secret's JSON form: {"current": "1", "1": "<value>", "2": "<value>"}."""
        current = secret.get("current")
        versions = {
            str(name): str(value).encode()
            for name, value in secret.items()
            if name != "current" and value
        }
        if not isinstance(current, str) or current not in versions:
            raise ConfigurationError("pepper secret: 'current' must name a version it contains")
        if any(len(value) < 32 for value in versions.values()):
            raise ConfigurationError("pepper secret: every version needs at least 32 characters")
        return cls(versions=versions, current=current)

    def fingerprint(self, kind: str, canonical: str, version: str | None = None) -> Fingerprint:
        """Fingerprint `canonical` under one pepper version (default: the current one)."""
        name = version or self.current
        key = self.versions[name]
        # The kind is part of the message so equal strings of different kinds never collide.
        digest = hmac.new(key, f"{kind}\x1f{canonical}".encode(), hashlib.sha256).hexdigest()
        return Fingerprint(version=name, value=digest)

    def fingerprinter(self, kind: str) -> Callable[[str], str]:
        """Return a function giving `fingerprint(kind, canonical).value` under the current version.

        It copies an HMAC state already keyed and fed with the kind, which costs less than half
        of `fingerprint` per value, for breach intake's millions of values.
        """
        keyed = hmac.new(self.versions[self.current], f"{kind}\x1f".encode(), hashlib.sha256)

        def fingerprint(canonical: str) -> str:
            state = keyed.copy()
            state.update(canonical.encode())
            return state.hexdigest()

        return fingerprint

    def fingerprints(self, kind: str, canonical: str) -> list[Fingerprint]:
        """Fingerprint `canonical` under every live version, current first."""
        ordered = [self.current, *sorted(v for v in self.versions if v != self.current)]
        return [self.fingerprint(kind, canonical, version) for version in ordered]

    def derive_key(self, purpose: str) -> bytes:
        """Derive a 32-byte key for one purpose (code hashes, link signatures) from the current version."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=f"idsentry/{purpose}/{self.current}".encode(),
        )
        return hkdf.derive(self.versions[self.current])


def keyed_hash(key: bytes, *parts: str) -> str:
    """Return HMAC-SHA256 over the parts joined by a unit separator, as hex."""
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def encrypt_field(data_key: bytes, owner_id: str, plaintext: str) -> str:
    """Encrypt `plaintext` with AES-256-GCM, binding it to `owner_id` as associated data."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(nonce, plaintext.encode(), owner_id.encode())
    return CIPHERTEXT_PREFIX + base64.b64encode(nonce + sealed).decode()


def decrypt_field(
    data_key: bytes, owner_id: str, ciphertext: str, *, purpose: DecryptPurpose
) -> str:
    """Decrypt a value from `encrypt_field` and count it under `purpose`.

    Raises DecryptionError if the value was not sealed for `owner_id`. Only successful
    decryptions are counted.
    """
    _require_purpose(purpose)
    if not ciphertext.startswith(CIPHERTEXT_PREFIX):
        raise DecryptionError("unknown ciphertext format")
    try:
        raw = base64.b64decode(ciphertext[len(CIPHERTEXT_PREFIX) :], validate=True)
    except ValueError as exc:
        raise DecryptionError("ciphertext is not base64") from exc
    if len(raw) <= NONCE_BYTES:
        raise DecryptionError("ciphertext is truncated")
    try:
        plaintext = AESGCM(data_key).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], owner_id.encode()
        )
    except InvalidTag as exc:
        raise DecryptionError("ciphertext failed authentication") from exc

    count_decryption(purpose)
    return plaintext.decode()


def count_decryption(purpose: DecryptPurpose) -> None:
    """Print one CloudWatch embedded-metric line that adds 1 to DECRYPTED_METRIC for `purpose`."""
    _require_purpose(purpose)

    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(
        name=DECRYPTED_METRIC, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
    ) as metric:
        metric.add_dimension(name="purpose", value=purpose)


def _require_purpose(purpose: str) -> None:
    if purpose not in DECRYPT_PURPOSES:
        raise ValueError(
            f"unknown decryption purpose {purpose!r}: expected one of {DECRYPT_PURPOSES}"
        )


def sign_token(key: bytes, payload: dict[str, Any]) -> str:
    """Return a URL-safe token: base64url(JSON payload) + "." + base64url(HMAC-SHA256)."""
    body = base64.urlsafe_b64encode(
        json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    ).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(key, body, hashlib.sha256).digest()).rstrip(b"=")
    return f"{body.decode()}.{signature.decode()}"


def verify_token(key: bytes, token: str, now_epoch: int) -> dict[str, Any]:
    """Check a `sign_token` token's signature and its "exp" claim; return the payload."""
    body, separator, signature = token.partition(".")
    if not separator or not body or not signature or not token.isascii():
        raise TokenError("malformed token")

    expected = base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.rstrip(b"=").decode(), signature):
        raise TokenError("bad signature")

    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError("malformed payload") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
        raise TokenError("payload has no expiry")
    if payload["exp"] <= now_epoch:
        raise TokenError("token expired")
    return payload
