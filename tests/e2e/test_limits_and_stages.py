"""Abuse limits with lowered thresholds, a named API stage, and logs free of personal data."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from infra.local.service import LocalService
from tests.e2e.conftest import (
    IDENTITIES,
    RecordCollector,
    sign_up_and_verify,
    signup_body,
    watch_handler_logs,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def strict_service(log_records: RecordCollector) -> Iterator[LocalService]:
    """A stack with tiny limits, a named stage and X-Forwarded-For trusted to vary the client IP."""
    parameters = {
        "SignupsPerIpPerHour": 3,
        "SmsOtpDailyBudget": 6,
        "SmsPerNumberDailyCap": 2,
        "OtpResendIntervalSeconds": 1,
    }
    with LocalService(
        port=0,
        stage="prod",
        parameters=parameters,
        identities_path=IDENTITIES,
        trust_forwarded_for=True,
    ) as started:
        watch_handler_logs(started, log_records)
        yield started


def _post(service: LocalService, body: dict, ip: str) -> requests.Response:
    return requests.post(
        f"{service.base_url}/v1/signups", json=body, headers={"X-Forwarded-For": ip}, timeout=30
    )


def _sms_count(service: LocalService, to: str | None = None) -> int:
    assert service.twilio is not None
    return len([m for m in service.twilio.messages() if to is None or m["to"] == to])


def test_named_stage_prefix_served(strict_service: LocalService) -> None:
    assert strict_service.base_url.endswith("/prod")
    result = sign_up_and_verify(strict_service, signup_body(mobile="+8613800138001"))
    assert result["status"] == "pending_payment"


def test_ip_limit_stops_sms(strict_service: LocalService) -> None:
    before = _sms_count(strict_service)
    responses = [
        _post(
            strict_service,
            signup_body(mobile=f"+86138001381{index:02d}", email=f"ip{index}@example.com"),
            "203.0.113.7",
        )
        for index in range(5)
    ]

    assert [r.status_code for r in responses] == [202, 202, 202, 429, 429]
    assert responses[3].json()["error"]["code"] == "limit.ip"
    assert int(responses[3].headers["retry-after"]) > 0
    deadline = time.monotonic() + 20
    while _sms_count(strict_service) < before + 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sms_count(strict_service) == before + 3


def test_daily_cap_per_number(strict_service: LocalService) -> None:
    body = signup_body(mobile="+8613800138201", email="cap@example.com")

    first = _post(strict_service, body, "198.51.100.1")
    time.sleep(1.1)  # past the 1-second resend interval of this stack, not a timing assertion
    second = _post(strict_service, body, "198.51.100.2")
    time.sleep(1.1)
    third = _post(strict_service, body, "198.51.100.3")

    assert (first.status_code, second.status_code, third.status_code) == (202, 202, 429)
    assert third.json()["error"]["code"] == "limit.daily_sms_cap"
    assert int(third.headers["retry-after"]) > 23 * 3600


def test_otp_budget_breaker_trips(
    strict_service: LocalService, capfd: pytest.CaptureFixture[str]
) -> None:
    # The budget of 6 code SMS a day is shared by every earlier test of this module.
    outcomes = [
        _post(
            strict_service,
            signup_body(mobile=f"+86138001383{index:02d}", email=f"b{index}@example.com"),
            f"192.0.2.{index}",
        )
        for index in range(8)
    ]

    statuses = [response.status_code for response in outcomes]
    assert 503 in statuses
    breaker = outcomes[statuses.index(503)]
    assert breaker.json()["error"]["code"] == "limit.otp_budget_exhausted"
    assert "retry-after" in breaker.headers
    assert all(status == 503 for status in statuses[statuses.index(503) :])
    # The alarm watches this CloudWatch embedded-metric record, which Powertools prints.
    printed = capfd.readouterr().out
    assert '"OtpBudgetExhausted"' in printed
    assert '"Namespace": "IDSentry"' in printed or '"Namespace":"IDSentry"' in printed


def test_logs_hold_no_personal_data(
    strict_service: LocalService, log_records: RecordCollector
) -> None:
    raw_values = [
        "110105199003071239",
        "310104198512120023",
        "440304199208154565",
        "320103197506187775",
        "13800138001",
        "13900139002",
        "13700137003",
        "18600186004",
        "wangxm@example.com",
        "alice.li@example.com",
        "li.na@example.cn",
        "王小明",
        "李娜",
    ]

    assert log_records.lines, "no log records were collected"
    for line in log_records.lines:
        for value in raw_values:
            assert value not in line, "a log record contains a raw identifier"
