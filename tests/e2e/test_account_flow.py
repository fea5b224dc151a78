"""Sign-in and the account over the local HTTP API: code by SMS, token, alerts, preferences.

A subscriber is found in an uploaded breach and alerted first, so the account has an alert
whose e-mail and SMS went out through the emulators.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from infra.local.service import LocalService
from infra.local.zones import daytime_zone
from tests.e2e.conftest import (
    IDENTITIES,
    RecordCollector,
    code_from,
    sign_up_and_verify,
    signup_body,
    wait_for_sms,
    watch_handler_logs,
)

pytestmark = pytest.mark.e2e

NAME, ID_NUMBER, MOBILE = "孙悦", "110102199406120024", "+8618800188008"
EMAIL = "sunyue@example.com"
STRANGER = "+8615900159009"
OTHER_MOBILE = "+8613600136006"
BREACH_NAME = "AccountFlowLeak"
MANIFEST = {
    "breach": {
        "Name": BREACH_NAME,
        "Title": "Account flow test leak",
        "BreachDate": "2026-11-10",
        "DataClasses": ["Names", "Government issued IDs"],
        "IsVerified": True,
    },
    "encoding": "utf-8",
    "format": "csv",
    "columns": {"name": "name", "id_number": "id_number"},
    "provenance": {
        "source": "Synthetic rows written by this test",
        "legal_basis": "Test data, no real people",
        "approved_by": "operator-1",
        "approved_at": "2026-12-04T08:00:00+08:00",
    },
}


@pytest.fixture(scope="module")
def service(log_records: RecordCollector) -> Iterator[LocalService]:
    # A short resend interval, so that the sign-in code may follow the signup code.
    with LocalService(
        port=0, identities_path=IDENTITIES, parameters={"OtpResendIntervalSeconds": 1}
    ) as started:
        watch_handler_logs(started, log_records)
        yield started


@pytest.fixture(scope="module")
def alerted(service: LocalService) -> str:
    """Sign 孙悦 up, make her monitored, upload a breach with her ID number and wait for the SMS."""
    # A zone where it is mid-afternoon now, so quiet hours do not hold the alert SMS back.
    body = signup_body(
        name=NAME, id_number=ID_NUMBER, mobile=MOBILE, email=EMAIL, timezone=daytime_zone()
    )
    subscriber_id = str(sign_up_and_verify(service, body)["subscriber_id"])
    assert service.stack is not None
    runtime = service.stack.runtime
    runtime.client("dynamodb").update_item(
        TableName=runtime.environment["TABLE_NAME"],
        Key={"pk": {"S": f"SUB#{subscriber_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET monitored = :true",
        ExpressionAttributeValues={":true": {"BOOL": True}},
    )
    s3 = runtime.client("s3")
    bucket = runtime.environment["INTAKE_BUCKET"]
    rows = f"name,id_number\n{NAME},{ID_NUMBER}\n"
    s3.put_object(Bucket=bucket, Key="incoming/account/data.csv", Body=rows.encode())
    s3.put_object(
        Bucket=bucket, Key="incoming/account/manifest.json", Body=json.dumps(MANIFEST).encode()
    )
    # The signup code, then the alert SMS.
    messages = wait_for_sms(service, MOBILE, 2, deadline_s=60)
    assert "Account flow test leak" in messages[-1]["body"]
    return subscriber_id


def request_code(service: LocalService, mobile: str, **headers: str) -> requests.Response:
    """Request a sign-in code, waiting out Retry-After once like a client would."""
    response = requests.post(
        f"{service.base_url}/v1/sign-in", json={"mobile": mobile}, headers=headers, timeout=30
    )
    if response.status_code == 429:
        wait = int(response.headers["retry-after"])
        assert wait <= 5, f"sign-in refused for {wait} s: {response.json()['error']['code']}"
        time.sleep(wait)
        response = requests.post(
            f"{service.base_url}/v1/sign-in", json={"mobile": mobile}, headers=headers, timeout=30
        )
    return response


def sign_in(service: LocalService, mobile: str) -> str:
    """Sign in with the code the Twilio emulator received and return the access token."""
    before = _sms_count(service, mobile)
    created = request_code(service, mobile)
    assert created.status_code == 202, created.text
    code = code_from(wait_for_sms(service, mobile, before + 1)[-1])
    verified = requests.post(
        f"{service.base_url}/v1/sign-in/{created.json()['sign_in_id']}/verify",
        json={"code": code},
        timeout=30,
    )
    assert verified.status_code == 200, verified.text
    assert verified.headers["cache-control"] == "no-store"
    token: str = verified.json()["access_token"]
    return token


def get(service: LocalService, path: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(f"{service.base_url}{path}", headers=headers, timeout=30)


@pytest.fixture(scope="module")
def token(service: LocalService, alerted: str) -> str:
    return sign_in(service, MOBILE)


def _sms_count(service: LocalService, mobile: str) -> int:
    assert service.twilio is not None
    return len([message for message in service.twilio.messages() if message["to"] == mobile])


def test_wrong_code_named_in_english(service: LocalService, alerted: str) -> None:
    before = _sms_count(service, MOBILE)
    created = request_code(service, MOBILE)
    assert created.status_code == 202
    # Its SMS arrives before the next test counts the messages to this number.
    wait_for_sms(service, MOBILE, before + 1)

    wrong = requests.post(
        f"{service.base_url}/v1/sign-in/{created.json()['sign_in_id']}/verify",
        json={"code": "12345a"},
        headers={"Accept-Language": "en"},
        timeout=30,
    )
    # Whatever the code was, this one is malformed.
    assert wrong.status_code == 422
    assert wrong.json()["error"]["fields"] == [
        {"field": "code", "code": "code.format", "message": "The code must be 6 digits."}
    ]


def test_sign_in_reads_account(service: LocalService, alerted: str, token: str) -> None:
    response = get(service, "/v1/account", token)

    assert response.status_code == 200
    body = response.json()
    assert body["subscriber_id"] == alerted
    assert body["monitored"] is True
    masked = {entry["kind"]: entry["masked"] for entry in body["identifiers"]}
    assert masked == {
        "id_number": "1101**********0024",
        "mobile": "188****8008",
        "email": "s***@example.com",
    }


def test_alert_history_shows_delivery(service: LocalService, alerted: str, token: str) -> None:
    give_up = time.monotonic() + 30
    while True:
        alerts = get(service, "/v1/account/alerts", token).json()["alerts"]
        channels = {c["channel"]: c for c in alerts[0]["channels"]} if alerts else {}
        if channels.get("sms", {}).get("delivery") == "delivered":
            break
        assert time.monotonic() < give_up, f"the alert's SMS was not reported delivered: {alerts}"
        time.sleep(0.2)

    (alert,) = alerts
    assert alert["breach"]["name"] == BREACH_NAME
    assert alert["status"] == "confirmed"
    assert alert["why"]["confirmed_by"] == "rules"
    assert alert["matched"] == [{"kind": "id_number", "masked": "1101**********0024"}]
    assert channels["email"]["state"] == "sent"
    assert channels["sms"]["state"] == "sent"


def test_change_preferences(service: LocalService, token: str) -> None:
    changed = requests.put(
        f"{service.base_url}/v1/account/preferences",
        json={"sms_alerts": False, "timezone": "America/New_York", "locale": "en"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )

    assert changed.status_code == 200
    assert changed.json()["message"] == "Your settings are saved."
    shown = get(service, "/v1/account/preferences", token).json()
    assert shown == {
        "sms_alerts": False,
        "email_lists": {"alerts": True, "reports": True},
        "timezone": "America/New_York",
        "locale": "en",
        "sms_state": "ok",
        "email_state": "ok",
    }


def test_account_needs_valid_token(service: LocalService, token: str) -> None:
    header, claims, signature = token.split(".")
    tampered = f"{header}.{claims}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"

    assert get(service, "/v1/account", None).status_code == 401
    assert get(service, "/v1/account", tampered).status_code == 403
    assert get(service, "/v1/account", "not-a-token").status_code == 403


def test_unknown_number_looks_the_same(service: LocalService) -> None:
    assert service.twilio is not None
    other = signup_body(
        name="陈静", id_number="320103197506187775", mobile=OTHER_MOBILE, email="chenj@example.com"
    )
    sign_up_and_verify(service, other)

    known = request_code(service, OTHER_MOBILE)
    unknown = request_code(service, STRANGER)

    def shape(response: requests.Response) -> dict[str, Any]:
        body = response.json()
        return {**body, "sign_in_id": "", "verify": {}}

    assert known.status_code == unknown.status_code == 202
    assert shape(known) == shape(unknown)
    assert [m for m in service.twilio.messages() if m["to"] == STRANGER] == []


def test_logs_hold_no_personal_data_or_token(
    service: LocalService, token: str, log_records: RecordCollector
) -> None:
    raw_values = [ID_NUMBER, MOBILE, MOBILE.removeprefix("+86"), EMAIL, NAME, STRANGER, token]

    assert log_records.lines, "no log records were collected"
    for line in log_records.lines:
        for value in raw_values:
            assert value not in line, "a log record contains a raw identifier or the token"
