"""Stripe webhook signatures, checked over the exact bytes received.

Stripe signs `{timestamp}.{raw body}` with HMAC-SHA256 under the endpoint's signing secret and
sends `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`. The SDK's own check
accepts any timestamp in the future. This one rejects timestamps more than the tolerance away
from now in either direction, so a captured delivery cannot be replayed later or early.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The signature header is missing, malformed, stale, from the future or does not match."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class SignatureHeader:
    """A parsed Stripe-Signature header: the timestamp and every v1 signature."""

    timestamp: int
    signatures: tuple[str, ...]


def parse_header(header: str | None) -> SignatureHeader:
    """Parse a Stripe-Signature header; raises SignatureError("signature.missing"/"malformed")."""
    if not header:
        raise SignatureError("signature.missing")

    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, separator, value = part.strip().partition("=")
        if not separator or not value or not value.isascii():
            raise SignatureError("signature.malformed")
        if name == "t":
            if timestamp is not None or not value.isdigit():
                raise SignatureError("signature.malformed")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)

    if timestamp is None or not signatures:
        raise SignatureError("signature.malformed")
    return SignatureHeader(timestamp=timestamp, signatures=tuple(signatures))


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """Return a Stripe-Signature header value for `payload`, as Stripe computes it."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    now: int,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Check the signature of `payload` against any of `secrets` (several while one is rolled).

    Raises SignatureError with the code "signature.missing", "signature.malformed",
    "signature.timestamp_out_of_range" or "signature.mismatch".
    """
    parsed = parse_header(header)
    if abs(now - parsed.timestamp) > tolerance:
        raise SignatureError("signature.timestamp_out_of_range")

    signed = str(parsed.timestamp).encode() + b"." + payload
    for secret in secrets:
        if not secret:
            continue
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, candidate) for candidate in parsed.signatures):
            return
    raise SignatureError("signature.mismatch")
