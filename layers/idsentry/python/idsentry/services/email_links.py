"""E-mail confirmation links: signed, expiring tokens and the confirmation itself."""

from __future__ import annotations

import logging
from typing import Any

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.table import MainTable
from idsentry.crypto import Fingerprint, Pepper, TokenError, sign_token, verify_token
from idsentry.errors import DomainError
from idsentry.models.events import EmailConfirmed
from idsentry.services.exposures import watch_writes

logger = logging.getLogger(__name__)

LINK_VALID_SECONDS = 72 * 3600


class EmailLinkInvalidError(DomainError):
    """The link is malformed, forged, expired or for an address the account no longer has."""

    status = 400

    def __init__(self) -> None:
        super().__init__("email.link_invalid")


def confirmation_url(
    pepper: Pepper, base_url: str, subscriber_id: str, email_fp: str, now: int
) -> str:
    """Return the link that confirms `email_fp` for the subscriber, valid for 72 hours."""
    token = sign_token(
        pepper.derive_key("email-link"),
        {"sub": subscriber_id, "efp": email_fp, "exp": now + LINK_VALID_SECONDS},
    )
    return f"{base_url}/v1/email-confirmations/{token}"


def confirm_email(
    table: MainTable, publisher: EventPublisher, pepper: Pepper, token: str, now: int
) -> dict[str, Any]:
    """Mark the subscriber's address confirmed; repeating a valid link is harmless."""
    try:
        claims = verify_token(pepper.derive_key("email-link"), token, now)
    except TokenError as exc:
        raise EmailLinkInvalidError() from exc

    subscriber_id = str(claims.get("sub", ""))
    profile = table.get(f"SUB#{subscriber_id}", "PROFILE")
    if profile is None or profile.get("email_fp") != claims.get("efp"):
        raise EmailLinkInvalidError()

    if not profile.get("email_confirmed_at"):
        table.update(
            f"SUB#{subscriber_id}",
            "PROFILE",
            "SET email_confirmed_at = if_not_exists(email_confirmed_at, :now)",
            values={":now": now},
        )
        identifier = table.update(
            f"SUB#{subscriber_id}", "IDENT#email", "SET confirmed = :true", values={":true": True}
        )
        # A confirmed address is watched: breach intake now matches it.
        fingerprints = [
            Fingerprint(version, value)
            for version, value in ((identifier or {}).get("fingerprints") or {}).items()
        ]
        if fingerprints:
            table.transact(watch_writes("email", fingerprints, subscriber_id, sole=False))
        publisher.publish(
            [
                EmailConfirmed(
                    event_id=f"evt_emailconf_{subscriber_id}_{now}", subscriber_id=subscriber_id
                )
            ]
        )
        logger.info("email confirmed", extra={"subscriber_id": subscriber_id})
    return {"subscriber_id": subscriber_id, "locale": profile.get("locale", "zh-CN")}
