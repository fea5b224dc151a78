"""Signed links in messages: claims with an expiry, signed with a key derived from the pepper.

Each kind of link derives its own key (`purpose`), so a token of one kind never verifies as
another. Reading tries the key of every live pepper version, current first, so a link sent
before a pepper rotation keeps working until it expires.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from idsentry.crypto import Pepper, TokenError, sign_token, verify_token


@dataclass(frozen=True)
class LinkClaims:
    """The verified claims of a link and whether the link has expired."""

    claims: dict[str, Any]
    expired: bool


def sign_link(
    pepper: Pepper, purpose: str, claims: dict[str, Any], valid_seconds: int, now: int
) -> str:
    """Return a URL-safe token of `claims` that expires `valid_seconds` after `now`."""
    return sign_token(pepper.derive_key(purpose), {**claims, "exp": now + valid_seconds})


def read_link(pepper: Pepper, purpose: str, token: str, now: int) -> LinkClaims:
    """Verify the token's signature under any live pepper version and report its expiry.

    Raises TokenError when no live version signed it or it is malformed. An expired token with
    a valid signature is returned with `expired=True`, so that a page can report it as
    expired rather than invalid.
    """
    ordered = [pepper.current, *sorted(v for v in pepper.versions if v != pepper.current)]
    for version in ordered:
        key = replace(pepper, current=version).derive_key(purpose)
        try:
            # Expiry 0 checks the signature and the claims' form only; expiry is judged below.
            claims = verify_token(key, token, 0)
        except TokenError:
            continue
        return LinkClaims(claims=claims, expired=int(claims["exp"]) <= now)
    raise TokenError("no live pepper version signed this token")
