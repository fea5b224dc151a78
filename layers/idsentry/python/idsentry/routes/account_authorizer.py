"""The Lambda REQUEST authorizer of the account routes (HTTP API payload 2.0, simple responses).

It verifies the bearer token of the `Authorization` header with the token key's public half,
fetched once per cold start, and allows the request with the context
`{"subscriber_id": ..., "token_id": ...}`, which API Gateway passes to the route as
`requestContext.authorizer.lambda`. Any fault in the token denies the request (403).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from idsentry.clock import epoch, utc_now
from idsentry.services import tokens
from idsentry.settings import load_settings
from idsentry.settings.account import AccountAuthorizerSettings

logger = logging.getLogger(__name__)

DENIED: dict[str, Any] = {"isAuthorized": False}


@cache
def verification_key() -> tokens.VerificationKey:
    """Return the public key that access tokens verify with, from KMS on first use."""
    from idsentry.adapters.token_keys import load_verification_key

    return load_verification_key(load_settings(AccountAuthorizerSettings).account_token_key_arn)


def bearer_token(headers: Mapping[str, Any]) -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header, or None."""
    value = next(
        (str(text) for name, text in headers.items() if str(name).lower() == "authorization"), ""
    )
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    # RFC 9110, section 11.1: the scheme name is case-insensitive.
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def handle(
    event: dict[str, Any],
    *,
    settings: AccountAuthorizerSettings | None = None,
    key: Callable[[], tokens.VerificationKey] = verification_key,
    now: Callable[[], int] = lambda: epoch(utc_now()),
) -> dict[str, Any]:
    """Return the simple response that allows or denies one request."""
    settings = settings or load_settings(AccountAuthorizerSettings)
    request_id = (event.get("requestContext") or {}).get("requestId")
    token = bearer_token(event.get("headers") or {})
    if token is None:
        logger.info("access token missing", extra={"request_id": request_id})
        return DENIED

    try:
        claims = tokens.verify_access_token(
            token,
            key(),
            settings.public_base_url,
            now(),
            max_lifetime=settings.access_token_seconds,
        )
    except tokens.TokenInvalidError as exc:
        logger.info("access token rejected", extra={"request_id": request_id, "reason": exc.reason})
        return DENIED
    return {
        "isAuthorized": True,
        "context": {"subscriber_id": claims.subscriber_id, "token_id": claims.token_id},
    }
