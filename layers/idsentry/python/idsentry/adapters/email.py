"""E-mail through Amazon SES (API v2)."""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import ClientError

from idsentry.errors import ProviderError

PROVIDER = "ses"
_PERMANENT_CODES = {
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
}


class EmailSender(Protocol):
    """Sends one e-mail and returns the provider's message id."""

    def send(self, to: str, subject: str, text: str, html: str) -> str: ...


class SesEmail:
    """SES SendEmail with a text and an HTML part."""

    def __init__(self, sender: str, client: Any = None) -> None:
        self._sender = sender
        self._client = client

    def _ses(self) -> Any:
        if self._client is None:
            from idsentry.adapters.aws import client

            self._client = client("sesv2")
        return self._client

    def send(self, to: str, subject: str, text: str, html: str) -> str:
        """Send one message; raises ProviderError classified as transient or not."""
        try:
            response = self._ses().send_email(
                FromEmailAddress=self._sender,
                Destination={"ToAddresses": [to]},
                Content={
                    "Simple": {
                        "Subject": {"Data": subject, "Charset": "UTF-8"},
                        "Body": {
                            "Text": {"Data": text, "Charset": "UTF-8"},
                            "Html": {"Data": html, "Charset": "UTF-8"},
                        },
                    }
                },
            )
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            raise ProviderError(PROVIDER, code, transient=code not in _PERMANENT_CODES) from None
        return str(response["MessageId"])
