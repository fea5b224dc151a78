"""The SES API v2 account-level suppression list, added to moto, which lacks it (moto 5.2.5).

`install()` adds four operations to moto's `sesv2` service before its server handles the
first SES request, so boto3's `sesv2` client works against the local stack's moto server:

- `PutSuppressedDestination` (`PUT /v2/email/suppression/addresses`, `EmailAddress` and
  `Reason` of `BOUNCE` or `COMPLAINT`) adds or replaces an entry;
- `GetSuppressedDestination` and `DeleteSuppressedDestination`
  (`GET`/`DELETE /v2/email/suppression/addresses/{EmailAddress}`) read or remove one, with
  SES's `NotFoundException` (HTTP 404) for an address that is not on the list;
- `ListSuppressedDestinations` (`GET /v2/email/suppression/addresses`) lists every entry on
  one page.

Addresses are compared lower-cased, as SES does. The list lives on moto's sesv2 backend of
each account and region, so moto's reset empties it. Log lines never name an address.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from moto.core.exceptions import JsonRESTError

logger = logging.getLogger(__name__)

REASONS = ("BOUNCE", "COMPLAINT")
_LIST_PATH = "{0}/v2/email/suppression/addresses$"
_ENTRY_PATH = "{0}/v2/email/suppression/addresses/(?P<EmailAddress>[^/]+)$"


class _NotFound(JsonRESTError):
    code = 404

    def __init__(self) -> None:
        super().__init__("NotFoundException", "The email address is not on the suppression list.")


class _BadRequest(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("BadRequestException", message)


def _entries(response: Any) -> dict[str, dict[str, Any]]:
    """Return the suppression list of the request's account and region, created on first use."""
    backend = response.sesv2_backend
    entries: dict[str, dict[str, Any]] | None = getattr(backend, "idsentry_suppressed", None)
    if entries is None:
        entries = {}
        backend.idsentry_suppressed = entries
    return entries


def _address_from_path(response: Any) -> str:
    return unquote(urlsplit(response.path).path.rsplit("/", 1)[-1]).lower()


def put_suppressed_destination(self: Any) -> str:
    """Add or replace one entry of the suppression list."""
    params = json.loads(self.body or "{}")
    address = params.get("EmailAddress")
    reason = params.get("Reason")
    if not isinstance(address, str) or "@" not in address:
        raise _BadRequest("EmailAddress must be an e-mail address.")
    if reason not in REASONS:
        raise _BadRequest("Reason must be BOUNCE or COMPLAINT.")
    _entries(self)[address.lower()] = {
        "EmailAddress": address.lower(),
        "Reason": reason,
        "LastUpdateTime": datetime.now(UTC).timestamp(),
    }
    logger.info("ses suppression added", extra={"reason": reason})
    return json.dumps({})


def get_suppressed_destination(self: Any) -> str:
    """Return one entry, or NotFoundException."""
    entry = _entries(self).get(_address_from_path(self))
    if entry is None:
        raise _NotFound()
    return json.dumps({"SuppressedDestination": entry})


def delete_suppressed_destination(self: Any) -> str:
    """Remove one entry, or NotFoundException when the address is not on the list."""
    if _entries(self).pop(_address_from_path(self), None) is None:
        raise _NotFound()
    logger.info("ses suppression removed")
    return json.dumps({})


def list_suppressed_destinations(self: Any) -> str:
    """List every entry on one page, with the fields SES's summaries have."""
    summaries = [
        {key: entry[key] for key in ("EmailAddress", "Reason", "LastUpdateTime")}
        for entry in _entries(self).values()
    ]
    return json.dumps({"SuppressedDestinationSummaries": summaries})


def install() -> None:
    """Add the suppression list to moto's sesv2 service; calling it again changes nothing.

    It must run before moto's server handles its first sesv2 request, because the server
    builds each service's routes once, at that request.
    """
    from moto.sesv2 import urls
    from moto.sesv2.responses import SESV2Response

    for operation in (
        put_suppressed_destination,
        get_suppressed_destination,
        delete_suppressed_destination,
        list_suppressed_destinations,
    ):
        setattr(SESV2Response, operation.__name__, operation)
    urls.url_paths.setdefault(_LIST_PATH, SESV2Response.dispatch)
    urls.url_paths.setdefault(_ENTRY_PATH, SESV2Response.dispatch)
