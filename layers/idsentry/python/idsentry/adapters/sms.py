"""SMS through Twilio Messaging; the interface lets a domestic provider be added beside it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from idsentry.errors import ProviderError

PROVIDER = "twilio"
NOT_FOUND_CODE = "20404"


class SmsSender(Protocol):
    """Sends one SMS and returns the provider's message id; looks a sent message's status up."""

    def send(
        self,
        to: str,
        body: str,
        status_callback: str | None,
        validity_seconds: int | None = None,
    ) -> str: ...

    def status(self, message_id: str) -> str | None: ...


class SmsRedaction(Protocol):
    """A provider's list of the messages sent to a number, and redaction of their stored text."""

    def message_ids_to(self, number: str) -> list[str]: ...

    def redact(self, message_id: str) -> bool: ...


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

    def send(
        self,
        to: str,
        body: str,
        status_callback: str | None,
        validity_seconds: int | None = None,
    ) -> str:
        """Queue one message at Twilio; raises ProviderError classified as transient or not.

        `validity_seconds` is how long Twilio may keep the message queued before giving up
        (error 30036); a code is worthless once it has expired, an alert a few hours later.
        """
        options: dict[str, Any] = {
            "to": to,
            "body": body,
            "messaging_service_sid": self._messaging_service_sid,
        }
        if status_callback:
            options["status_callback"] = status_callback
        if validity_seconds:
            options["validity_period"] = validity_seconds
        with _classified_errors():
            message = self._twilio().messages.create(**options)
        return str(message.sid)

    def status(self, message_id: str) -> str | None:
        """Return Twilio's current status of a message, or None when Twilio does not know it."""
        try:
            with _classified_errors():
                message = self._twilio().messages(message_id).fetch()
        except ProviderError as exc:
            if exc.code == NOT_FOUND_CODE:
                return None
            raise
        return str(message.status)

    def message_ids_to(self, number: str) -> list[str]:
        """Return the sids of every message the account sent to `number`, paging through the list."""
        with _classified_errors():
            return [str(message.sid) for message in self._twilio().messages.stream(to=number)]

    def redact(self, message_id: str) -> bool:
        """Empty the message's stored body at Twilio; returns False when Twilio does not know it.

        Twilio redacts only messages that have left its queue, so a message still being sent
        raises ProviderError and the caller retries later.
        """
        try:
            with _classified_errors():
                self._twilio().messages(message_id).update(body="")
        except ProviderError as exc:
            if exc.code == NOT_FOUND_CODE:
                return False
            raise
        return True


@contextmanager
def _classified_errors() -> Iterator[None]:
    """Turn the SDK's errors into ProviderError, transient or not, with Twilio's error code."""
    from twilio.base.exceptions import TwilioException, TwilioRestException

    try:
        yield
    except TwilioRestException as exc:
        # 429 (too many concurrent requests) and 5xx pass; other 4xx (opted-out or invalid
        # number, unsupported region) fail the same way on every retry.
        transient = exc.status == 429 or exc.status >= 500
        code = str(exc.code) if exc.code is not None else None
        raise ProviderError(
            PROVIDER, f"HTTP {exc.status} code {code}", transient=transient, code=code
        ) from None
    except TwilioException as exc:
        raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from None
    except OSError as exc:
        raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from None
