"""E-mail through Amazon SES (API v2), sent as a MIME message that this module builds."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from email_validator import validate_email

from idsentry.errors import ProviderError

if TYPE_CHECKING:
    from email.policy import Policy

PROVIDER = "ses"

# SES error codes that fail the same way on every retry. Every other code is transient, so
# that the job is retried and then waits in the DLQ rather than being dropped. Those include
# the throttling codes (TooManyRequestsException, LimitExceededException, Throttling), which
# botocore's standard retry mode has already retried with backoff, and 5xx errors. They also
# include errors an operator can fix, such as a paused account or a missing configuration set.
_PERMANENT_CODES = frozenset(
    {"MessageRejected", "MailFromDomainNotVerifiedException", "AccountSuspendedException"}
)

# Codes of our own address checks, which run before SES is called.
INVALID_DOMAIN_CODE = "InvalidRecipientDomain"
INVALID_ADDRESS_CODE = "InvalidRecipientAddress"
INVALID_UNSUBSCRIBE_URL_CODE = "InvalidUnsubscribeUrl"

ONE_CLICK_POST = "List-Unsubscribe=One-Click"
# RFC 5322 caps a header line at 998 characters; the two extra are "<" and ">".
_MAX_UNSUBSCRIBE_URL = 998 - len("List-Unsubscribe: <>")


@cache
def _mime_policy() -> Policy:
    """Return the policy of every message: 7-bit, CRLF lines.

    Bodies are base64 or quoted-printable, and non-ASCII headers are RFC 2047 encoded words,
    so the message is 7-bit and passes any relay unchanged. Lines end in CRLF as SMTP
    requires. `email.policy` loads the header parser, which only functions that send e-mail
    need, so it is imported on the first message rather than with this module.
    """
    from email import policy

    return policy.SMTP.clone(cte_type="7bit")


class EmailSender(Protocol):
    """Sends one e-mail and returns the provider's message id."""

    def send(
        self, to: str, subject: str, text: str, html: str, *, unsubscribe_url: str | None = None
    ) -> str: ...


def ascii_address(address: str) -> str:
    """Return `address` with its domain in IDNA ASCII form, the local part unchanged.

    SES does not support SMTPUTF8 (RFC 6531), so the local part must be ASCII. Raises a
    permanent ProviderError: `InvalidRecipientDomain` when the domain is not a valid domain
    name, `InvalidRecipientAddress` for any other invalid address.
    """
    local_part, at_sign, domain = address.rpartition("@")
    if not at_sign or not local_part:
        raise ProviderError(
            PROVIDER, "invalid recipient address", transient=False, code=INVALID_ADDRESS_CODE
        )

    # Validator messages quote the address, so they are dropped (from None).
    try:
        validated_domain = _validate(f"a@{domain}").ascii_domain
    except ValueError:
        raise ProviderError(
            PROVIDER,
            "recipient domain is not a valid IDNA domain name",
            transient=False,
            code=INVALID_DOMAIN_CODE,
        ) from None
    try:
        _validate(f"{local_part}@{validated_domain}")
    except ValueError:
        raise ProviderError(
            PROVIDER,
            "recipient local part is not a valid ASCII local part",
            transient=False,
            code=INVALID_ADDRESS_CODE,
        ) from None
    return f"{local_part}@{validated_domain}"


def _validate(address: str) -> Any:
    # The options match identifiers.canonical_email, so that every address signup accepted is
    # accepted here.
    return validate_email(
        address,
        allow_smtputf8=False,
        allow_empty_local=False,
        allow_quoted_local=False,
        allow_domain_literal=False,
        allow_display_name=False,
        strict=False,
        check_deliverability=False,
        test_environment=False,
        globally_deliverable=True,
    )


def _unsubscribe_headers(url: str) -> bytes:
    """Return the RFC 2369 and RFC 8058 header lines for a one-click unsubscribe `url`.

    The lines are written out here rather than through the email package, because its folding
    turns a URL longer than a line into RFC 2047 encoded words, which mail clients do not
    decode in List-Unsubscribe.
    """
    printable = all(0x21 <= ord(character) <= 0x7E for character in url)
    if (
        not printable
        or "<" in url
        or ">" in url
        or not url.startswith(("https://", "http://"))
        or len(url) > _MAX_UNSUBSCRIBE_URL
    ):
        raise ProviderError(
            PROVIDER,
            "unsubscribe URL must be an http(s) URL of printable ASCII without < or >",
            transient=False,
            code=INVALID_UNSUBSCRIBE_URL_CODE,
        )
    return f"List-Unsubscribe: <{url}>\r\nList-Unsubscribe-Post: {ONE_CLICK_POST}\r\n".encode()


def build_mime(
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    unsubscribe_url: str | None = None,
) -> bytes:
    """Build a multipart/alternative message (text, then HTML) as 7-bit bytes with CRLF lines."""
    message = EmailMessage(policy=_mime_policy())
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")

    raw = message.as_bytes(policy=_mime_policy())
    if unsubscribe_url is None:
        return raw
    return _unsubscribe_headers(unsubscribe_url) + raw


class SesEmail:
    """SES SendEmail with a raw MIME message: a text part, an HTML part and optional headers.

    Raw content, rather than SES's Simple content, keeps the whole message in this module:
    the local stack's moto stores raw messages whole, so tests read the very headers that SES
    receives. `configuration_set` names the SES configuration set whose event destination
    publishes bounces and complaints; without it SES publishes no events for the message.
    """

    def __init__(
        self, sender: str, client: Any = None, *, configuration_set: str | None = None
    ) -> None:
        self._sender = sender
        self._client = client
        self._configuration_set = configuration_set

    def _ses(self) -> Any:
        if self._client is None:
            from idsentry.adapters.aws import client

            self._client = client("sesv2")
        return self._client

    def send(
        self, to: str, subject: str, text: str, html: str, *, unsubscribe_url: str | None = None
    ) -> str:
        """Send one message; raises ProviderError classified as transient or not.

        `unsubscribe_url` adds `List-Unsubscribe` and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`
        (RFC 8058); pass it for every message that belongs to a list, never for codes,
        confirmations or account notices.
        """
        recipient = ascii_address(to)
        raw = build_mime(self._sender, recipient, subject, text, html, unsubscribe_url)
        request: dict[str, Any] = {
            "FromEmailAddress": self._sender,
            "Destination": {"ToAddresses": [recipient]},
            "Content": {"Raw": {"Data": raw}},
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set

        try:
            response = self._ses().send_email(**request)
        except ClientError as exc:
            code = str(exc.response["Error"]["Code"])
            raise ProviderError(
                PROVIDER,
                f"SendEmail failed with {code}",
                transient=code not in _PERMANENT_CODES,
                code=code,
            ) from None
        except BotoCoreError as exc:
            # Connection failures and timeouts, after botocore's own retries.
            raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from None
        return str(response["MessageId"])
