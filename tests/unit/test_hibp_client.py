"""Unit tests of the HIBP client: the status-code table, the URL, headers and the bounded wait.

The requests go through a real `requests.Session` whose transport adapter is replaced by a
scripted one, so URL encoding and headers are checked as requests prepares them, without a
network. The same table runs against the emulator in tests/integration/test_hibp_emulator.py.
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from idsentry.adapters.hibp import (
    DEFAULT_USER_AGENT,
    AccountCheck,
    CheckOutcome,
    HibpClient,
    check_base_url,
    classify_response,
    parse_retry_after,
)
from idsentry.errors import ConfigurationError, ProviderError

pytestmark = pytest.mark.unit

BASE_URL = "https://hibp.test/api/v3"
API_KEY = "hibp-unit-test-key"
ADDRESS = "a+b@example.com"
ADOBE = {
    "Name": "Adobe",
    "Title": "Adobe",
    "Domain": "adobe.com",
    "BreachDate": "2013-10-04",
    "AddedDate": "2013-12-04T00:00:00Z",
    "ModifiedDate": "2022-05-15T23:52:49Z",
    "PwnCount": 152445165,
    "DataClasses": ["Email addresses", "Passwords"],
    "IsVerified": True,
}


class ScriptedAdapter(BaseAdapter):
    """Returns the next scripted response, or raises the next scripted exception, per request."""

    def __init__(self, script: list[tuple[int, Mapping[str, str], bytes] | Exception]) -> None:
        super().__init__()
        self.script = list(script)
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        self.sent.append(request)
        self.timeouts.append(kwargs.get("timeout"))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step

        status, headers, body = step
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        response._content = body
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        return None


def client_with(
    script: list[tuple[int, Mapping[str, str], bytes] | Exception],
    *,
    max_wait_seconds: float = 10.0,
) -> tuple[HibpClient, ScriptedAdapter, list[float]]:
    adapter = ScriptedAdapter(script)
    session = requests.Session()
    session.mount("https://", adapter)
    sleeps: list[float] = []
    client = HibpClient(
        API_KEY,
        base_url=BASE_URL,
        session=session,
        sleep=sleeps.append,
        max_wait_seconds=max_wait_seconds,
        timeout_seconds=3.0,
    )
    return client, adapter, sleeps


def rate_limited(seconds: int) -> tuple[int, dict[str, str], bytes]:
    body = {
        "statusCode": 429,
        "message": f"Rate limit is exceeded. Try again in {seconds} seconds.",
    }
    return 429, {"retry-after": str(seconds)}, json.dumps(body).encode()


STATUS_TABLE: list[tuple[str, Any, CheckOutcome, str | None]] = [
    ("200", (200, {}, json.dumps([ADOBE]).encode()), CheckOutcome.BREACHED, None),
    ("404", (404, {}, b""), CheckOutcome.CLEAN, None),
    (
        "401",
        (401, {}, b'{"statusCode": 401, "message": "Access denied due to invalid hibp-api-key."}'),
        CheckOutcome.UNAUTHORIZED,
        "invalid_api_key",
    ),
    ("403", (403, {}, b"Forbidden"), CheckOutcome.UNAUTHORIZED, "forbidden"),
    ("429", rate_limited(30), CheckOutcome.DEFERRED, "rate_limited"),
    ("503", (503, {}, b"Service Unavailable"), CheckOutcome.TRANSIENT, "server_error"),
    ("500", (500, {}, b""), CheckOutcome.TRANSIENT, "server_error"),
    ("400", (400, {}, b""), CheckOutcome.INVALID, "bad_request"),
    ("timeout", requests.ReadTimeout("read timed out"), CheckOutcome.TRANSIENT, "timeout"),
    (
        "connection",
        requests.ConnectionError("connection refused"),
        CheckOutcome.TRANSIENT,
        "ConnectionError",
    ),
]


@pytest.mark.parametrize(
    ("step", "outcome", "reason"),
    [case[1:] for case in STATUS_TABLE],
    ids=[case[0] for case in STATUS_TABLE],
)
def test_status_table(step: Any, outcome: CheckOutcome, reason: str | None) -> None:
    client, adapter, _ = client_with([step], max_wait_seconds=0)

    result = client.breached_account(ADDRESS)

    assert result.outcome is outcome
    assert result.reason == reason
    assert len(adapter.sent) == 1


def test_breached_returns_full_models() -> None:
    other = {**ADOBE, "Name": "Gawker", "Domain": "gawker.com"}
    client, _, _ = client_with([(200, {}, json.dumps([ADOBE, other]).encode())])

    result = client.breached_account(ADDRESS)

    assert result.names == ("Adobe", "Gawker")
    assert result.breaches[0]["PwnCount"] == 152445165
    assert result.status == 200


def test_clean_is_never_unauthorized() -> None:
    for status in (401, 403):
        result = classify_response(status, None, b"")
        assert result.outcome is not CheckOutcome.CLEAN
        assert result.breaches == ()


def test_rate_limited_reports_retry_after() -> None:
    client, _, sleeps = client_with([rate_limited(30)], max_wait_seconds=10)

    result = client.breached_account(ADDRESS)

    assert result.outcome is CheckOutcome.DEFERRED
    assert result.retry_after_seconds == 30
    assert sleeps == []


def test_rate_limited_waits_then_succeeds() -> None:
    client, adapter, sleeps = client_with(
        [rate_limited(2), rate_limited(3), (200, {}, json.dumps([ADOBE]).encode())]
    )

    result = client.breached_account(ADDRESS)

    assert result.outcome is CheckOutcome.BREACHED
    assert sleeps == [2, 3]
    assert result.waited_seconds == 5
    assert len(adapter.sent) == 3


def test_rate_limited_wait_is_bounded() -> None:
    client, adapter, sleeps = client_with(
        [rate_limited(4), rate_limited(4), rate_limited(4)], max_wait_seconds=10
    )

    result = client.breached_account(ADDRESS)

    assert result.outcome is CheckOutcome.DEFERRED
    assert sleeps == [4, 4]
    assert sum(sleeps) <= 10
    assert result.retry_after_seconds == 4
    assert len(adapter.sent) == 3


def test_rate_limited_without_header_defers() -> None:
    client, _, sleeps = client_with([(429, {}, b"")])

    result = client.breached_account(ADDRESS)

    assert result.outcome is CheckOutcome.DEFERRED
    assert result.retry_after_seconds is None
    assert sleeps == []


def test_address_is_url_encoded() -> None:
    client, adapter, _ = client_with([(404, {}, b"")])

    client.breached_account(ADDRESS)

    sent = adapter.sent[0]
    assert sent.url == f"{BASE_URL}/breachedaccount/a%2Bb%40example.com?truncateResponse=false"
    assert sent.path_url == "/api/v3/breachedaccount/a%2Bb%40example.com?truncateResponse=false"


@pytest.mark.parametrize(
    ("address", "segment"),
    [
        ("x/y@example.com", "x%2Fy%40example.com"),
        ("x?y@example.com", "x%3Fy%40example.com"),
        ("x#y@example.com", "x%23y%40example.com"),
        ("x%41@example.com", "x%2541%40example.com"),
        ("张伟@example.com", "%E5%BC%A0%E4%BC%9F%40example.com"),
    ],
)
def test_account_url_encoding(address: str, segment: str) -> None:
    client = HibpClient(API_KEY, base_url=BASE_URL)

    url = client.account_url(address)

    assert url == f"{BASE_URL}/breachedaccount/{segment}?truncateResponse=false"


def test_headers_sent() -> None:
    client, adapter, _ = client_with([(404, {}, b"")])

    client.breached_account(ADDRESS)

    headers = adapter.sent[0].headers
    assert headers["hibp-api-key"] == API_KEY
    assert headers["user-agent"] == DEFAULT_USER_AGENT
    assert adapter.sent[0].method == "GET"
    assert adapter.timeouts == [3.0]


def test_user_agent_names_version() -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    version = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]

    assert DEFAULT_USER_AGENT.startswith(f"IDSentry/{version} ")


def test_redirect_not_followed() -> None:
    client, adapter, _ = client_with(
        [(302, {"location": "https://elsewhere.test/steal"}, b""), (200, {}, b"[]")]
    )

    result = client.breached_account(ADDRESS)

    assert result.outcome is CheckOutcome.INVALID
    assert result.reason == "unexpected_status"
    assert len(adapter.sent) == 1


@pytest.mark.parametrize(
    "body",
    [b"<html>cdn error</html>", b'{"Name": "Adobe"}', b'[{"Title": "no name"}]', b'[{"Name": ""}]'],
)
def test_malformed_breached_body(body: bytes) -> None:
    result = classify_response(200, None, body)

    assert result.outcome is CheckOutcome.TRANSIENT
    assert result.reason == "malformed_response"


def test_empty_list_is_clean() -> None:
    assert classify_response(200, None, b"[]").outcome is CheckOutcome.CLEAN


def test_address_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client, _, _ = client_with(
        [
            rate_limited(1),
            (200, {}, json.dumps([ADOBE]).encode()),
            requests.ConnectionError(f"Max retries exceeded with url: /breachedaccount/{ADDRESS}"),
            (401, {}, b""),
        ]
    )

    first = client.breached_account(ADDRESS)
    second = client.breached_account(ADDRESS)
    third = client.breached_account(ADDRESS)

    assert [first.outcome, second.outcome, third.outcome] == [
        CheckOutcome.BREACHED,
        CheckOutcome.TRANSIENT,
        CheckOutcome.UNAUTHORIZED,
    ]
    assert caplog.records
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        assert "example.com" not in text
        assert "a%2Bb" not in text


def test_unauthorized_logged_as_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="idsentry.adapters.hibp")
    client, _, _ = client_with([(401, {}, b"")])

    client.breached_account(ADDRESS)

    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].__dict__["outcome"] == "unauthorized"


@pytest.mark.parametrize(
    "email", ["", "no-at-sign", " a@example.com", "a b@example.com", "a@example.com\n"]
)
def test_invalid_address_rejected(email: str) -> None:
    client, adapter, _ = client_with([])

    with pytest.raises(ValueError, match="email"):
        client.breached_account(email)
    assert adapter.sent == []


def test_catalogue_fetched_without_key() -> None:
    client, adapter, _ = client_with([(200, {}, json.dumps([ADOBE]).encode())])

    breaches = client.breaches()

    assert breaches == [ADOBE]
    assert adapter.sent[0].url == f"{BASE_URL}/breaches"
    assert "hibp-api-key" not in adapter.sent[0].headers
    assert adapter.sent[0].headers["user-agent"] == DEFAULT_USER_AGENT


@pytest.mark.parametrize(
    ("step", "transient"),
    [
        ((503, {}, b""), True),
        ((429, {"retry-after": "5"}, b""), True),
        ((403, {}, b""), False),
        ((200, {}, b"<html>"), True),
        ((200, {}, b'{"Name": "Adobe"}'), False),
        (requests.ReadTimeout("timed out"), True),
    ],
)
def test_catalogue_errors(step: Any, transient: bool) -> None:
    client, _, _ = client_with([step])

    with pytest.raises(ProviderError) as raised:
        client.breaches()

    assert raised.value.provider == "hibp"
    assert raised.value.transient is transient


@pytest.mark.parametrize(
    "base_url",
    [
        "http://haveibeenpwned.com/api/v3",
        "ftp://127.0.0.1/api/v3",
        "https://user:secret@haveibeenpwned.com/api/v3",
        "https://haveibeenpwned.com/api/v3?x=1",
        "/api/v3",
    ],
)
def test_unsafe_base_url_rejected(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        HibpClient(API_KEY, base_url=base_url)


def test_base_url_accepted() -> None:
    assert (
        check_base_url("https://haveibeenpwned.com/api/v3/") == "https://haveibeenpwned.com/api/v3"
    )
    assert check_base_url("http://127.0.0.1:8080/api/v3") == "http://127.0.0.1:8080/api/v3"
    assert check_base_url("http://localhost:8080/api/v3") == "http://localhost:8080/api/v3"


@pytest.mark.parametrize(
    ("field", "options"),
    [
        ("api_key", {"api_key": ""}),
        ("user_agent", {"user_agent": "  "}),
        ("timeout_seconds", {"timeout_seconds": 0}),
        ("max_wait_seconds", {"max_wait_seconds": -1}),
    ],
)
def test_invalid_settings_rejected(field: str, options: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"api_key": API_KEY, **options}
    api_key = arguments.pop("api_key")

    with pytest.raises(ConfigurationError, match=field):
        HibpClient(api_key, **arguments)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2), (" 60 ", 60), ("0", 1), (None, None), ("soon", None), ("-3", None)],
)
def test_parse_retry_after(header: str | None, seconds: int | None) -> None:
    assert parse_retry_after(header) == seconds


def test_account_check_names() -> None:
    check = AccountCheck(CheckOutcome.BREACHED, breaches=({"Name": "Adobe"}, {"Name": "Gawker"}))

    assert check.names == ("Adobe", "Gawker")
