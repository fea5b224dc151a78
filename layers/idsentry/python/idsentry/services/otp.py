"""One-time codes: generation from a CSPRNG, keyed hashes bound to their signup, and checks."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from idsentry.crypto import keyed_hash

CODE_DIGITS = 6
VALID_SECONDS = 600
MAX_ATTEMPTS = 5


class CodeCheck(StrEnum):
    """Outcome of checking a submitted code against the stored record."""

    ACCEPTED = "accepted"
    INCORRECT = "incorrect"
    EXPIRED = "expired"
    LOCKED = "locked"
    USED = "used"


@dataclass(frozen=True)
class CodeRecord:
    """A stored code: only its hash, never the code itself."""

    code_id: str
    code_hash: str
    expires_at: int
    attempts: int
    used: bool


def generate_code() -> str:
    """Return a uniformly random 6-digit code."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(key: bytes, signup_id: str, code_id: str, code: str) -> str:
    """Hash a code bound to its signup and code id, so it cannot verify any other signup."""
    return keyed_hash(key, "otp", signup_id, code_id, code)


def check_code(
    record: CodeRecord, key: bytes, signup_id: str, candidate: str, now: int
) -> CodeCheck:
    """Check `candidate`; the expiry is checked here because DynamoDB TTL deletes late."""
    if record.used:
        return CodeCheck.USED
    if record.attempts >= MAX_ATTEMPTS:
        return CodeCheck.LOCKED
    if now >= record.expires_at:
        return CodeCheck.EXPIRED

    expected = hash_code(key, signup_id, record.code_id, candidate)
    if hmac.compare_digest(expected, record.code_hash):
        return CodeCheck.ACCEPTED
    return CodeCheck.INCORRECT
