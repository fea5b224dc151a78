"""SMS through Twilio Messaging; the interface lets a domestic provider be added beside it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from idsentry.errors import ProviderError

PROVIDER = "twilio"
NOT_FOUND_CODE = "20404"
# Seconds to wait for Twilio to connect and to respond. The SDK waits forever by default, so
# one stuck request would use up the notifier's whole run time and fail every job in its batch.
DEFAULT_TIMEOUT_SECONDS = 10.0
# How far Twilio's clock may be behind ours when find_sent compares creation times.
CLOCK_SKEW_SECONDS = 60
# 400 errors that pass: 21611, the sender's queue is full (it drains at the sender's rate).
TRANSIENT_CREATE_CODES = frozenset({"21611"})


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

    def find_sent(self, to: str, body: str, since: int) -> str | None: ...


class SmsRedaction(Protocol):
    """A provider's list of the messages sent to a number, and redaction of their stored text."""

    def message_ids_to(self, number: str) -> list[str]: ...

    def redact(self, message_id: str) -> bool: ...


class TwilioSms:
    """Twilio Messages API through the official SDK, created on first send.

    `base_url` replaces https://api.twilio.com; only the local stack sets it, to reach the
    Twilio emulator. `timeout_seconds` bounds each request, connecting and reading.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        messaging_service_sid: str,
        base_url: str | None = None,
        client: Any = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
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
        self._timeout_seconds = timeout_seconds

    def _twilio(self) -> Any:
        if self._client is None:
            from twilio.http.http_client import TwilioHttpClient
            from twilio.rest import Client

            self._client = Client(
                self._account_sid,
                self._auth_token,
                http_client=TwilioHttpClient(timeout=self._timeout_seconds),
            )
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
        A read timeout raises a ProviderError with `outcome_unknown`: Twilio may have queued
        the message.
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

    def find_sent(self, to: str, body: str, since: int) -> str | None:
        """Return the sid of a message with `body` sent to `to` since epoch second `since`, or None.

        Twilio lists a number's messages newest first, so the search stops at the first
        message created before `since` (less CLOCK_SKEW_SECONDS).
        """
        earliest = since - CLOCK_SKEW_SECONDS
        with _classified_errors():
            for message in self._twilio().messages.stream(to=to, page_size=50):
                created = message.date_created
                if created is not None and created.timestamp() < earliest:
                    return None
                if message.body == body:
                    return str(message.sid)
        return None

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
    from requests.exceptions import ReadTimeout
    from twilio.base.exceptions import TwilioException, TwilioRestException

    try:
        yield
    except TwilioRestException as exc:
        # 429 (too many concurrent requests), 5xx and a full queue pass. Other 4xx errors
        # (opted-out or invalid number, unsupported region) fail the same way on every retry.
        code = str(exc.code) if exc.code is not None else None
        transient = exc.status == 429 or exc.status >= 500 or code in TRANSIENT_CREATE_CODES
        raise ProviderError(
            PROVIDER, f"HTTP {exc.status} code {code}", transient=transient, code=code
        ) from None
    except TwilioException as exc:
        raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from None
    except ReadTimeout:
        # The request went out and no response came back, so Twilio may have created the message.
        raise ProviderError(PROVIDER, "ReadTimeout", transient=True, outcome_unknown=True) from None
    except OSError as exc:
        raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from None
