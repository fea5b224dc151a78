"""Real-name verification (name + ID number + mobile) through a licensed provider's HTTP API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from enum import StrEnum
from typing import Protocol

from idsentry.errors import ProviderError

PROVIDER = "realname"


class OwnershipResult(StrEnum):
    """The provider's verdict on whether the three identifiers belong to one person."""

    MATCH = "match"
    MISMATCH = "mismatch"
    NOT_FOUND = "not_found"


class IdentityVerifier(Protocol):
    """Checks that a name, resident ID number and mobile number belong to one person."""

    def verify(self, name: str, id_number: str, mobile: str) -> OwnershipResult: ...


class HttpIdentityVerifier:
    """Calls `POST {base_url}/v1/identity/verify` with a bearer API key."""

    def __init__(self, base_url: str, api_key: str, timeout_seconds: float = 5.0) -> None:
        if not base_url or not api_key:
            raise ProviderError(
                PROVIDER, "base_url and api_key must be configured", transient=False
            )
        self._url = base_url.rstrip("/") + "/v1/identity/verify"
        self._api_key = api_key
        self._timeout = timeout_seconds

    def verify(self, name: str, id_number: str, mobile: str) -> OwnershipResult:
        """Return the provider's verdict; raises ProviderError on transport or provider failure."""
        body = json.dumps({"name": name, "id_number": id_number, "mobile": mobile}).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL comes from the deployment's secret
            self._url,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Content-Type": "application/json",
            },
        )

        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            transient = exc.code >= 500 or exc.code == 429
            raise ProviderError(PROVIDER, f"HTTP {exc.code}", transient=transient) from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise ProviderError(PROVIDER, "request failed", transient=True) from exc
        except ValueError as exc:
            raise ProviderError(PROVIDER, "response is not JSON", transient=True) from exc

        try:
            return OwnershipResult(payload["result"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError(PROVIDER, "response has no valid result", transient=False) from exc
