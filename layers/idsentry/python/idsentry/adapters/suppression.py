"""The SES account-level suppression list, from which a deleted account's address is removed."""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from idsentry.errors import ProviderError

PROVIDER = "ses"


class SuppressionList(Protocol):
    """Removes an address from the provider's list of addresses it will not send to."""

    def remove(self, address: str) -> bool: ...


class SesSuppressionList:
    """SES API v2 `DeleteSuppressedDestination`, through the shared boto3 session."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def _sesv2(self) -> Any:
        if self._client is None:
            from idsentry.adapters.aws import client

            self._client = client("sesv2")
        return self._client

    def remove(self, address: str) -> bool:
        """Remove `address` from the list; returns False when it was not on it.

        Raises a transient ProviderError for every other failure, so the caller retries.
        """
        try:
            self._sesv2().delete_suppressed_destination(EmailAddress=address)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NotFoundException":
                return False
            code = str(exc.response["Error"]["Code"])
            raise ProviderError(
                PROVIDER, f"DeleteSuppressedDestination {code}", transient=True, code=code
            ) from None
        except BotoCoreError as exc:
            raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from None
        return True
