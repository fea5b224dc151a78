"""SMS through Twilio Messaging; the interface lets a domestic provider be added beside it."""

from __future__ import annotations

from typing import Any, Protocol

from idsentry.errors import ProviderError

PROVIDER = "twilio"


class SmsSender(Protocol):
    """Sends one SMS and returns the provider's message id."""

    def send(self, to: str, body: str, status_callback: str | None) -> str: ...


class TwilioSms:
    """Twilio Messages API through the official SDK, created on first send.

    `base_url` replaces https://api.twilio.com; only the local stack sets it, to reach the
    Twilio emulator.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        messaging_service_sid: str,
        base_url: str | None = None,
        client: Any = None,
    ) -> None:
        if not account_sid or not auth_token or not messaging_service_sid:
            raise ProviderError(
                PROVIDER,
                "account_sid, auth_token and messaging_service_sid must be configured",
                transient=False,
            )
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._messaging_service_sid = messaging_service_sid
        self._base_url = base_url
        self._client = client

    def _twilio(self) -> Any:
        if self._client is None:
            from twilio.rest import Client

            self._client = Client(self._account_sid, self._auth_token)
            if self._base_url:
                self._client.api.base_url = self._base_url.rstrip("/")
                # A region or edge (for example from TWILIO_REGION) would rewrite the host.
                self._client.region = None
                self._client.edge = None
        return self._client

    def send(self, to: str, body: str, status_callback: str | None) -> str:
        """Queue one message at Twilio; raises ProviderError classified as transient or not."""
        from twilio.base.exceptions import TwilioException, TwilioRestException

        options: dict[str, Any] = {
            "to": to,
            "body": body,
            "messaging_service_sid": self._messaging_service_sid,
        }
        if status_callback:
            options["status_callback"] = status_callback
        try:
            message = self._twilio().messages.create(**options)
        except TwilioRestException as exc:
            # 429 (too many concurrent requests) and 5xx pass; other 4xx (invalid or opted-out
            # number, unsupported region) fail the same way on every retry.
            transient = exc.status == 429 or exc.status >= 500
            raise ProviderError(
                PROVIDER, f"HTTP {exc.status} code {exc.code}", transient=transient
            ) from None
        except TwilioException as exc:
            raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from None
        except OSError as exc:
            raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from None
        return str(message.sid)
