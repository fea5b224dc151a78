"""Integration tests of the HIBP emulator over HTTP, and of the HIBP client against it."""

from __future__ import annotations

import http.client
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from idsentry.adapters.hibp import DEFAULT_USER_AGENT, CheckOutcome, HibpClient
from idsentry.errors import ProviderError
from idsentry.logs import configure_logging
from infra.local.emulators.hibp import HibpEmulator, InvalidBreachError

pytestmark = pytest.mark.integration

API_KEY = "hibp-emulator-test-key"
OTHER_KEY = "hibp-emulator-second-key"
TIMEOUT_SECONDS = 10.0
ADDRESS = "li.na@example.com"


def breach(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Title": name,
        "Domain": f"{name.lower()}.com",
        "BreachDate": "2013-10-04",
        "AddedDate": "2013-12-04T00:00:00Z",
        "ModifiedDate": "2022-05-15T23:52:49Z",
        "PwnCount": 1000,
        "Description": f"<p>{name} was breached.</p>",
        "DataClasses": ["Email addresses", "Passwords"],
        "IsVerified": True,
        **fields,
    }


CATALOGUE = [
    breach("Adobe"),
    breach("Gawker", AddedDate="2014-01-01T00:00:00Z"),
    breach("Unverified", IsVerified=False),
    breach("Sensitive", IsSensitive=True),
    breach("Retired", IsRetired=True),
    breach("SpamList", IsSpamList=True, Domain=""),
]


class MovableMonotonic:
    """A monotonic clock in seconds that the test moves instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> MovableMonotonic:
    return MovableMonotonic()


@pytest.fixture
def catalogue_file(tmp_path: Path) -> Path:
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(CATALOGUE), encoding="utf-8")
    return path


@pytest.fixture
def emulator(catalogue_file: Path, clock: MovableMonotonic) -> Iterator[HibpEmulator]:
    with HibpEmulator(
        API_KEY, requests_per_minute=100, catalogue_path=catalogue_file, monotonic=clock
    ) as running:
        running.add_account(ADDRESS, ["Adobe", "Gawker", "Unverified", "Sensitive", "Retired"])
        yield running


def get(
    emulator: HibpEmulator,
    path: str,
    api_key: str | None = API_KEY,
    params: dict[str, str] | None = None,
) -> requests.Response:
    headers = {"user-agent": "hibp-emulator-tests"}
    if api_key is not None:
        headers["hibp-api-key"] = api_key
    return requests.get(
        f"{emulator.base_url}{path}", headers=headers, params=params, timeout=TIMEOUT_SECONDS
    )


def account_path(address: str) -> str:
    return "/api/v3/breachedaccount/" + quote(address, safe="")


def client_for(emulator: HibpEmulator, **options: Any) -> HibpClient:
    return HibpClient(
        options.pop("api_key", API_KEY),
        base_url=f"{emulator.base_url}/api/v3",
        timeout_seconds=TIMEOUT_SECONDS,
        **options,
    )


# The emulator's HIBP API.


def test_catalogue_in_hibp_shape(emulator: HibpEmulator) -> None:
    response = get(emulator, "/api/v3/breaches", api_key=None)

    body = response.json()
    assert response.status_code == 200
    assert [entry["Name"] for entry in body] == [entry["Name"] for entry in CATALOGUE]
    assert list(body[0]) == [
        "Name",
        "Title",
        "Domain",
        "BreachDate",
        "AddedDate",
        "ModifiedDate",
        "PwnCount",
        "Description",
        "LogoPath",
        "Attribution",
        "DataClasses",
        "IsVerified",
        "IsFabricated",
        "IsSensitive",
        "IsRetired",
        "IsSpamList",
        "IsMalware",
        "IsSubscriptionFree",
        "IsStealerLog",
    ]
    assert body[0]["IsMalware"] is False


def test_catalogue_filters(emulator: HibpEmulator) -> None:
    by_domain = get(emulator, "/api/v3/breaches", params={"Domain": "GAWKER.com"}).json()
    spam = get(emulator, "/api/v3/breaches", params={"IsSpamList": "true"}).json()

    assert [entry["Name"] for entry in by_domain] == ["Gawker"]
    assert [entry["Name"] for entry in spam] == ["SpamList"]


def test_single_breach(emulator: HibpEmulator) -> None:
    found = get(emulator, "/api/v3/breach/Adobe", api_key=None)
    missing = get(emulator, "/api/v3/breach/NoSuchBreach", api_key=None)

    assert found.status_code == 200
    assert found.json()["Domain"] == "adobe.com"
    assert missing.status_code == 404


def test_account_truncated_by_default(emulator: HibpEmulator) -> None:
    response = get(emulator, account_path(ADDRESS))

    assert response.status_code == 200
    assert response.json() == [{"Name": "Adobe"}, {"Name": "Gawker"}, {"Name": "Unverified"}]


def test_account_full_models(emulator: HibpEmulator) -> None:
    response = get(emulator, account_path(ADDRESS), params={"truncateResponse": "false"})

    body = response.json()
    assert [entry["Name"] for entry in body] == ["Adobe", "Gawker", "Unverified"]
    assert body[0] == next(
        entry for entry in emulator_catalogue(emulator) if entry["Name"] == "Adobe"
    )


def emulator_catalogue(emulator: HibpEmulator) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = get(emulator, "/api/v3/breaches").json()
    return result


def test_account_never_returns_sensitive_or_retired(emulator: HibpEmulator) -> None:
    emulator.add_account("only.hidden@example.com", ["Sensitive", "Retired"])

    response = get(emulator, account_path("only.hidden@example.com"))

    assert response.status_code == 404


def test_account_filters(emulator: HibpEmulator) -> None:
    verified = get(emulator, account_path(ADDRESS), params={"IncludeUnverified": "false"})
    by_domain = get(emulator, account_path(ADDRESS), params={"domain": "adobe.com"})

    assert verified.json() == [{"Name": "Adobe"}, {"Name": "Gawker"}]
    assert by_domain.json() == [{"Name": "Adobe"}]


def test_account_case_insensitive(emulator: HibpEmulator) -> None:
    response = get(emulator, account_path("Li.Na@EXAMPLE.com"))

    assert response.status_code == 200


def test_account_not_found(emulator: HibpEmulator) -> None:
    response = get(emulator, account_path("nobody@example.com"))

    assert response.status_code == 404
    assert response.content == b""


def test_account_empty_is_bad_request(emulator: HibpEmulator) -> None:
    response = get(emulator, account_path("  "))

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("api_key", "message"),
    [
        (None, "Access denied due to missing hibp-api-key."),
        ("wrong-key", "Access denied due to invalid hibp-api-key."),
    ],
)
def test_account_requires_key(emulator: HibpEmulator, api_key: str | None, message: str) -> None:
    response = get(emulator, account_path(ADDRESS), api_key=api_key)

    assert response.status_code == 401
    assert response.json() == {"statusCode": 401, "message": message}


def test_missing_user_agent_forbidden(emulator: HibpEmulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("GET", account_path(ADDRESS), headers={"hibp-api-key": API_KEY})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()

    assert response.status == 403
    assert emulator.requests()["requests"][-1]["user_agent"] is None


def test_rate_limit_per_key(emulator: HibpEmulator, clock: MovableMonotonic) -> None:
    emulator.set_requests_per_minute(2)
    emulator.add_api_key(OTHER_KEY)

    first = get(emulator, account_path(ADDRESS))
    clock.advance(15)
    second = get(emulator, account_path("nobody@example.com"))
    clock.advance(5)
    limited = get(emulator, account_path(ADDRESS))
    other_key = get(emulator, account_path(ADDRESS), api_key=OTHER_KEY)

    assert first.status_code == 200
    assert second.status_code == 404
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "40"
    assert limited.json() == {
        "statusCode": 429,
        "message": "Rate limit is exceeded. Try again in 40 seconds.",
    }
    assert other_key.status_code == 200


def test_rate_limit_window_slides(emulator: HibpEmulator, clock: MovableMonotonic) -> None:
    emulator.set_requests_per_minute(1)

    assert get(emulator, account_path(ADDRESS)).status_code == 200
    clock.advance(59.5)
    limited = get(emulator, account_path(ADDRESS))
    clock.advance(0.5)
    after = get(emulator, account_path(ADDRESS))

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert after.status_code == 200


def test_rate_limit_skips_catalogue(emulator: HibpEmulator) -> None:
    emulator.set_requests_per_minute(1)

    statuses = [get(emulator, "/api/v3/breaches").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]


@pytest.mark.parametrize("status", [401, 403, 503])
def test_faults_then_normal(emulator: HibpEmulator, status: int) -> None:
    emulator.fail_next(2, status)

    statuses = [get(emulator, account_path(ADDRESS)).status_code for _ in range(3)]

    assert statuses == [status, status, 200]


def test_faults_control_route(emulator: HibpEmulator) -> None:
    control = requests.post(
        f"{emulator.base_url}/_emulator/faults",
        json={"count": 1, "status": 503},
        timeout=TIMEOUT_SECONDS,
    )
    bad_status = requests.post(
        f"{emulator.base_url}/_emulator/faults",
        json={"count": 1, "status": 500},
        timeout=TIMEOUT_SECONDS,
    )

    assert control.status_code == 200
    assert get(emulator, "/api/v3/breaches").status_code == 503
    assert get(emulator, "/api/v3/breaches").status_code == 200
    assert bad_status.json() == {"error": "invalid_request", "field": "status"}


def test_catalogue_and_accounts_controls(emulator: HibpEmulator) -> None:
    loaded = requests.post(
        f"{emulator.base_url}/_emulator/catalogue",
        json=[breach("Dropbox")],
        timeout=TIMEOUT_SECONDS,
    )
    added = requests.post(
        f"{emulator.base_url}/_emulator/accounts",
        json=[{"account": "new@example.com", "breaches": ["Dropbox"]}],
        timeout=TIMEOUT_SECONDS,
    )
    upserted = requests.post(
        f"{emulator.base_url}/_emulator/breaches",
        json=breach("Dropbox", PwnCount=7),
        timeout=TIMEOUT_SECONDS,
    )
    found = get(emulator, account_path("new@example.com"), params={"truncateResponse": "false"})
    old_account = get(emulator, account_path(ADDRESS))

    assert loaded.json() == {"breach_count": 1}
    assert added.status_code == 201
    assert upserted.status_code == 201
    assert found.json()[0]["PwnCount"] == 7
    assert old_account.status_code == 404


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/_emulator/catalogue", {"not": "a list"}, "body"),
        ("/_emulator/catalogue", [breach("Bad", PwnCount=-1)], "PwnCount"),
        ("/_emulator/catalogue", [breach("Bad", AddedDate="yesterday")], "AddedDate"),
        ("/_emulator/catalogue", [{"Name": "NoTitle"}], "Title"),
        ("/_emulator/catalogue", [breach("Bad/Name")], "Name"),
        ("/_emulator/breaches", breach("Bad", IsVerified="yes"), "IsVerified"),
        ("/_emulator/accounts", {"account": "x@example.com", "breaches": ["Nope"]}, "breaches"),
        ("/_emulator/accounts", {"account": " ", "breaches": ["Adobe"]}, "account"),
        ("/_emulator/accounts", {"breaches": ["Adobe"]}, "account"),
        ("/_emulator/faults", {"count": -1}, "count"),
        ("/_emulator/rate", {"requests_per_minute": 0}, "requests_per_minute"),
    ],
)
def test_controls_reject_bad_input(
    emulator: HibpEmulator, path: str, payload: Any, field: str
) -> None:
    response = requests.post(f"{emulator.base_url}{path}", json=payload, timeout=TIMEOUT_SECONDS)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "field": field}
    assert len(emulator_catalogue(emulator)) == len(CATALOGUE)


def test_bad_accounts_batch_adds_none(emulator: HibpEmulator) -> None:
    response = requests.post(
        f"{emulator.base_url}/_emulator/accounts",
        json=[
            {"account": "first@example.com", "breaches": ["Adobe"]},
            {"account": "second@example.com", "breaches": ["Nope"]},
        ],
        timeout=TIMEOUT_SECONDS,
    )

    assert response.status_code == 400
    assert get(emulator, account_path("first@example.com")).status_code == 404


def test_add_account_unknown_breach(emulator: HibpEmulator) -> None:
    with pytest.raises(InvalidBreachError) as raised:
        emulator.add_account("x@example.com", ["NoSuchBreach"])

    assert raised.value.field == "breaches"


def test_reset_restores_file(emulator: HibpEmulator) -> None:
    emulator.load_catalogue([breach("Dropbox")])
    emulator.fail_next(5, 503)
    get(emulator, "/api/v3/breaches")

    response = requests.post(f"{emulator.base_url}/_emulator/reset", timeout=TIMEOUT_SECONDS)

    assert response.json() == {"reset": True}
    assert emulator.requests()["count"] == 0
    assert len(emulator_catalogue(emulator)) == len(CATALOGUE)
    assert get(emulator, account_path(ADDRESS)).status_code == 404


def test_request_history_has_no_account(emulator: HibpEmulator) -> None:
    get(emulator, account_path(ADDRESS), params={"truncateResponse": "false"})

    history = requests.get(f"{emulator.base_url}/_emulator/requests", timeout=TIMEOUT_SECONDS)

    body = history.json()
    assert body["count"] == 1
    assert body["statuses"] == {"200": 1}
    assert body["requests"][0] == {
        "endpoint": "breachedaccount",
        "status": 200,
        "api_key": "valid",
        "user_agent": "hibp-emulator-tests",
        "truncate_response": False,
    }
    assert "example.com" not in history.text


def test_logs_never_contain_account(
    emulator: HibpEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="infra.local.emulators")

    get(emulator, account_path(ADDRESS))
    get(emulator, account_path("nobody@example.com"), api_key="wrong-key")
    get(emulator, "/api/v3/breachedaccount/a%2Fb%40example.com/extra")

    paths = [record.__dict__.get("path") for record in caplog.records]
    assert "/api/v3/breachedaccount/<account>" in paths
    for record in caplog.records:
        assert "example.com" not in record.getMessage() + repr(record.__dict__)


def test_loggable_path_hides_account(emulator: HibpEmulator) -> None:
    assert emulator.loggable_path("/api/v3/breachedaccount/a%40b.com") == (
        "/api/v3/breachedaccount/<account>"
    )
    assert emulator.loggable_path("/api/v3/breach/Adobe") == "/api/v3/breach/Adobe"
    assert emulator.loggable_path("/api/v3/breach/a%40b.com") == "<unmatched path>"
    assert emulator.loggable_path("/api/v3/breaches") == "/api/v3/breaches"


def test_constructor_rejects_bad_settings(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([breach("Adobe", BreachDate="04/10/2013")]), encoding="utf-8")

    with pytest.raises(ValueError, match="api_key"):
        HibpEmulator("")
    with pytest.raises(ValueError, match="requests_per_minute"):
        HibpEmulator(API_KEY, requests_per_minute=0)
    with pytest.raises(ValueError, match="entry 0: BreachDate"):
        HibpEmulator(API_KEY, catalogue_path=broken)


# The HIBP client against the emulator: HIBP's status-code table end to end.


def test_client_breached(emulator: HibpEmulator) -> None:
    result = client_for(emulator).breached_account(ADDRESS)

    assert result.outcome is CheckOutcome.BREACHED
    assert result.names == ("Adobe", "Gawker", "Unverified")
    assert result.breaches[0]["DataClasses"] == ["Email addresses", "Passwords"]


def test_client_clean(emulator: HibpEmulator) -> None:
    result = client_for(emulator).breached_account("nobody@example.com")

    assert result.outcome is CheckOutcome.CLEAN
    assert result.status == 404


def test_client_wrong_key_unauthorized(emulator: HibpEmulator) -> None:
    result = client_for(emulator, api_key="wrong-key").breached_account(ADDRESS)

    assert result.outcome is CheckOutcome.UNAUTHORIZED
    assert result.status == 401


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (401, CheckOutcome.UNAUTHORIZED),
        (403, CheckOutcome.UNAUTHORIZED),
        (503, CheckOutcome.TRANSIENT),
    ],
)
def test_client_injected_faults(emulator: HibpEmulator, status: int, outcome: CheckOutcome) -> None:
    emulator.fail_next(1, status)

    result = client_for(emulator).breached_account(ADDRESS)

    assert result.outcome is outcome
    assert result.status == status


def test_client_rate_limited_defers(emulator: HibpEmulator, clock: MovableMonotonic) -> None:
    emulator.set_requests_per_minute(1)
    client = client_for(emulator, max_wait_seconds=5)

    first = client.breached_account(ADDRESS)
    clock.advance(30)
    second = client.breached_account(ADDRESS)

    assert first.outcome is CheckOutcome.BREACHED
    assert second.outcome is CheckOutcome.DEFERRED
    assert second.retry_after_seconds == 30
    assert second.waited_seconds == 0


def test_client_waits_out_rate_limit(emulator: HibpEmulator, clock: MovableMonotonic) -> None:
    emulator.set_requests_per_minute(1)
    client = client_for(emulator, max_wait_seconds=30, sleep=clock.advance)

    first = client.breached_account(ADDRESS)
    clock.advance(50)
    second = client.breached_account(ADDRESS)

    assert first.outcome is CheckOutcome.BREACHED
    assert second.outcome is CheckOutcome.BREACHED
    assert second.waited_seconds == 10
    assert [entry["status"] for entry in emulator.requests()["requests"]] == [200, 429, 200]


def test_client_timeout_is_transient() -> None:
    # A listening socket that never responds: the connection opens and the read times out.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        client = HibpClient(
            API_KEY, base_url=f"http://127.0.0.1:{port}/api/v3", timeout_seconds=0.2
        )

        result = client.breached_account(ADDRESS)

    assert result.outcome is CheckOutcome.TRANSIENT
    assert result.reason == "timeout"


def test_client_connection_refused_is_transient() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = HibpClient(API_KEY, base_url=f"http://127.0.0.1:{port}/api/v3")

    result = client.breached_account(ADDRESS)

    assert result.outcome is CheckOutcome.TRANSIENT
    assert result.reason == "ConnectionError"


@pytest.mark.parametrize(
    "address",
    [
        "a+b@example.com",
        "x/y@example.com",
        "x?y@example.com",
        "x#y@example.com",
        "x%41@example.com",
    ],
)
def test_client_encodes_address(emulator: HibpEmulator, address: str) -> None:
    emulator.add_account(address, ["Adobe"])

    result = client_for(emulator).breached_account(address)

    assert result.outcome is CheckOutcome.BREACHED
    assert result.names == ("Adobe",)


def test_client_headers_seen(emulator: HibpEmulator) -> None:
    client_for(emulator).breached_account(ADDRESS)

    seen = emulator.requests()["requests"][-1]
    assert seen["api_key"] == "valid"
    assert seen["user_agent"] == DEFAULT_USER_AGENT
    assert seen["truncate_response"] is False


def test_client_catalogue(emulator: HibpEmulator) -> None:
    breaches = client_for(emulator).breaches()

    assert breaches == emulator_catalogue(emulator)
    assert emulator.requests()["requests"][0]["api_key"] == "missing"


def test_client_catalogue_outage(emulator: HibpEmulator) -> None:
    emulator.fail_next(1, 503)

    with pytest.raises(ProviderError) as raised:
        client_for(emulator).breaches()

    assert raised.value.transient is True


def test_client_logs_no_address_end_to_end(
    emulator: HibpEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    # urllib3 logs request paths at DEBUG, so the functions pin it to WARNING.
    pinned = logging.getLogger("urllib3")
    previous = pinned.level
    configure_logging()
    caplog.set_level(logging.DEBUG)
    try:
        client = client_for(emulator)
        results = [client.breached_account(ADDRESS), client.breached_account("x+y@example.com")]
    finally:
        pinned.setLevel(previous)

    assert [result.outcome for result in results] == [CheckOutcome.BREACHED, CheckOutcome.CLEAN]
    assert caplog.records
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        assert "example.com" not in text
        assert "%40" not in text
