"""Unit tests for the SES adapter: MIME building, one-click headers, IDNA and error classes."""

from __future__ import annotations

import email
from email import policy
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from idsentry.adapters.email import (
    INVALID_ADDRESS_CODE,
    INVALID_DOMAIN_CODE,
    INVALID_UNSUBSCRIBE_URL_CODE,
    SesEmail,
    ascii_address,
    build_mime,
)
from idsentry.errors import ProviderError

pytestmark = pytest.mark.unit

SENDER = "no-reply@idsentry.example.com"
URL = (
    "https://idsentry.example.com/v1/preferences/"
    "eyJhY3QiOiJlbWFpbDphbGVydHMiLCJleHAiOjE4MDQxOTAwMDAsInN1YiI6InNicl8wMU05MUI0QUJHMzZHMlI4RDRQVjJITTZDRyJ9"
    ".Wm9vbS1zaWduYXR1cmUtZm9yLXRlc3RzLW9ubHktMDAwMDAwMDAw"
)
SUBJECT = "您的身份证号出现在一次数据泄露中 - 身份哨兵"


class RecordingSes:
    """Stands in for the sesv2 client: records each request, or raises the given error."""

    def __init__(self, error: Exception | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.error = error

    def send_email(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return {"MessageId": "0100019a-test-message-id"}


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "test"}}, "SendEmail")


def parse(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


# ---------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("wang@example.com", "wang@example.com"),
        ("wang@例子.广告", "wang@xn--fsqu00a.xn--4rr70v"),
        ("li@münchen.de", "li@xn--mnchen-3ya.de"),
        # The local part is kept as given: only the domain changes form.
        ("Wang.Li@Example.COM", "Wang.Li@example.com"),
    ],
)
def test_ascii_address_domain(address: str, expected: str) -> None:
    assert ascii_address(address) == expected


@pytest.mark.parametrize("address", ["wang@-bad-.com", "wang@xn--zz.com", "wang@localhost"])
def test_ascii_address_bad_domain(address: str) -> None:
    with pytest.raises(ProviderError) as raised:
        ascii_address(address)

    assert raised.value.code == INVALID_DOMAIN_CODE
    assert raised.value.transient is False
    assert address not in str(raised.value)


@pytest.mark.parametrize("address", ["王@example.com", "no-at-sign", "@example.com"])
def test_ascii_address_bad_local_part(address: str) -> None:
    with pytest.raises(ProviderError) as raised:
        ascii_address(address)

    assert raised.value.code == INVALID_ADDRESS_CODE
    assert raised.value.transient is False


# ---------------------------------------------------------------------------- MIME


def test_mime_unsubscribe_headers() -> None:
    message = parse(build_mime(SENDER, "wang@example.com", SUBJECT, "text", "<p>html</p>", URL))

    assert message["List-Unsubscribe"] == f"<{URL}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_mime_without_unsubscribe() -> None:
    message = parse(build_mime(SENDER, "wang@example.com", SUBJECT, "text", "<p>html</p>"))

    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None


def test_mime_unsubscribe_header_one_line() -> None:
    # Mail clients read the URL from this line; an encoded word or a fold inside it breaks it.
    raw = build_mime(SENDER, "wang@example.com", SUBJECT, "text", "<p>html</p>", URL)

    lines = raw.split(b"\r\n")
    assert f"List-Unsubscribe: <{URL}>".encode() in lines
    assert b"=?" not in next(line for line in lines if line.startswith(b"List-Unsubscribe:"))


def test_mime_seven_bit_crlf() -> None:
    raw = build_mime(
        SENDER, "wang@example.com", SUBJECT, "泄露警报：请立即修改密码。", "<p>泄露</p>", URL
    )

    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_mime_parts_round_trip() -> None:
    text, html = "泄露警报：请立即修改密码。", "<p>泄露警报</p>"
    message = parse(build_mime(SENDER, "wang@example.com", SUBJECT, text, html))

    plain_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert message["Subject"] == SUBJECT
    assert message["From"] == SENDER
    assert message["To"] == "wang@example.com"
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    assert plain_part is not None and plain_part.get_content().strip() == text
    assert html_part is not None and html_part.get_content().strip() == html


@pytest.mark.parametrize(
    "url",
    [
        "https://idsentry.example.com/v1/preferences/x\r\nBcc: someone@example.com",
        "https://idsentry.example.com/v1/preferences/x>, <mailto:a@example.com",
        "https://idsentry.example.com/v1/preferences/x y",
        "mailto:unsubscribe@idsentry.example.com",
        "https://idsentry.example.com/v1/preferences/" + "a" * 1000,
    ],
)
def test_mime_rejects_unsafe_url(url: str) -> None:
    with pytest.raises(ProviderError) as raised:
        build_mime(SENDER, "wang@example.com", SUBJECT, "text", "<p>html</p>", url)

    assert raised.value.code == INVALID_UNSUBSCRIBE_URL_CODE
    assert raised.value.transient is False


# ---------------------------------------------------------------------------- sending


def test_send_raw_with_configuration_set() -> None:
    ses = RecordingSes()
    sender = SesEmail(SENDER, ses, configuration_set="idsentry-prod")

    message_id = sender.send("wang@例子.广告", SUBJECT, "text", "<p>html</p>", unsubscribe_url=URL)

    request = ses.requests[0]
    assert message_id == "0100019a-test-message-id"
    assert request["ConfigurationSetName"] == "idsentry-prod"
    assert request["FromEmailAddress"] == SENDER
    assert request["Destination"] == {"ToAddresses": ["wang@xn--fsqu00a.xn--4rr70v"]}
    sent = parse(request["Content"]["Raw"]["Data"])
    assert sent["To"] == "wang@xn--fsqu00a.xn--4rr70v"
    assert sent["List-Unsubscribe"] == f"<{URL}>"


def test_send_without_configuration_set() -> None:
    ses = RecordingSes()

    SesEmail(SENDER, ses).send("wang@example.com", SUBJECT, "text", "<p>html</p>")

    assert "ConfigurationSetName" not in ses.requests[0]


def test_send_bad_domain_never_calls_ses() -> None:
    ses = RecordingSes()

    with pytest.raises(ProviderError) as raised:
        SesEmail(SENDER, ses).send("wang@-bad-.com", SUBJECT, "text", "<p>html</p>")

    assert raised.value.code == INVALID_DOMAIN_CODE
    assert ses.requests == []


@pytest.mark.parametrize(
    "code", ["TooManyRequestsException", "LimitExceededException", "Throttling"]
)
def test_send_throttling_transient(code: str) -> None:
    sender = SesEmail(SENDER, RecordingSes(client_error(code)))

    with pytest.raises(ProviderError) as raised:
        sender.send("wang@example.com", SUBJECT, "text", "<p>html</p>")

    assert raised.value.transient is True
    assert raised.value.code == code


@pytest.mark.parametrize(
    "code", ["MessageRejected", "MailFromDomainNotVerifiedException", "AccountSuspendedException"]
)
def test_send_rejection_permanent(code: str) -> None:
    sender = SesEmail(SENDER, RecordingSes(client_error(code)))

    with pytest.raises(ProviderError) as raised:
        sender.send("wang@example.com", SUBJECT, "text", "<p>html</p>")

    assert raised.value.transient is False
    assert raised.value.code == code


def test_send_connection_failure_transient() -> None:
    error = EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com")
    sender = SesEmail(SENDER, RecordingSes(error))

    with pytest.raises(ProviderError) as raised:
        sender.send("wang@example.com", SUBJECT, "text", "<p>html</p>")

    assert raised.value.transient is True
    assert raised.value.code is None
