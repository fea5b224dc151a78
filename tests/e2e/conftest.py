"""Fixtures for tests of the local stack over HTTP."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.service import LocalService

IDENTITIES = Path(__file__).resolve().parents[2] / "events" / "demo" / "identities.json"
CONSENTS = {
    kind: {"accepted": True, "version": "2026-12-01"}
    for kind in ("terms", "sensitive_personal_information", "cross_border_transfer")
}


class RecordCollector(logging.Handler):
    """Keeps every log record's message and extra fields as one string."""

    def __init__(self, lines: list[str] | None = None) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = [] if lines is None else lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__}")


@pytest.fixture(scope="session")
def log_records() -> Iterator[RecordCollector]:
    """Collect log records of the handlers, the local stack and the emulators for the session."""
    collector = RecordCollector()
    watched = [logging.getLogger(), logging.getLogger("idsentry")]
    logging.getLogger().addHandler(collector)
    yield collector
    for logger in watched:
        for handler in list(logger.handlers):
            if isinstance(handler, RecordCollector):
                logger.removeHandler(handler)


def watch_handler_logs(service: LocalService, collector: RecordCollector) -> None:
    """Also collect the handlers' own log records.

    Powertools Logger formats with the first handler of the `idsentry` logger, so a collector
    is appended only after every handler module (and its Logger) is loaded. It is a second
    handler sharing the lines, because Powertools filters the package's records out of every
    handler on the root logger.
    """
    assert service.stack is not None
    for function_id in service.stack.runtime.functions:
        service.stack.runtime.load_handler(function_id)
    package_logger = logging.getLogger("idsentry")
    if not any(isinstance(handler, RecordCollector) for handler in package_logger.handlers):
        package_logger.addHandler(RecordCollector(collector.lines))


def signup_body(**overrides: Any) -> dict[str, Any]:
    """Return a valid signup body for 王小明 with the given fields replaced."""
    body: dict[str, Any] = {
        "name": "王小明",
        "id_number": "110105199003071239",
        "mobile": "+8613800138001",
        "email": "wangxm@example.com",
        "plan": "monthly",
        "consents": CONSENTS,
    }
    body.update(overrides)
    return body


def wait_for_sms(
    service: LocalService, to: str, count: int = 1, deadline_s: float = 20.0
) -> list[dict[str, Any]]:
    """Return the SMS to `to` once there are `count` of them, or fail after the deadline."""
    assert service.twilio is not None
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        messages = [m for m in service.twilio.messages() if m["to"] == to]
        if len(messages) >= count:
            return messages
        time.sleep(0.1)
    raise AssertionError(f"expected {count} SMS to the test number within {deadline_s} s")


def wait_for_emails(
    service: LocalService, count: int, deadline_s: float = 20.0
) -> list[dict[str, Any]]:
    """Return the sent e-mails once there are at least `count`, or fail after the deadline."""
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        emails = service.sent_emails()
        if len(emails) >= count:
            return emails
        time.sleep(0.1)
    raise AssertionError(f"expected {count} e-mails within {deadline_s} s")


def code_from(message: dict[str, Any]) -> str:
    """Return the 6-digit code of an SMS."""
    match = re.search(r"\d{6}", message["body"])
    assert match, "the SMS has no 6-digit code"
    return match.group(0)


def sign_up_and_verify(
    service: LocalService, body: dict[str, Any], sms_count: int = 1
) -> dict[str, Any]:
    """Sign up, read the code from the Twilio emulator and verify; return the verify response."""
    created = requests.post(f"{service.base_url}/v1/signups", json=body, timeout=30)
    assert created.status_code == 202, created.text
    message = wait_for_sms(service, body["mobile"], sms_count)[-1]
    verified = requests.post(
        f"{service.base_url}/v1/signups/{created.json()['signup_id']}/verify",
        json={"code": code_from(message)},
        timeout=30,
    )
    assert verified.status_code == 200, verified.text
    result: dict[str, Any] = verified.json()
    return result


@pytest.fixture(scope="module")
def service(log_records: RecordCollector) -> Iterator[LocalService]:
    """The local stack with default limits, fresh for each test module."""
    with LocalService(port=0, identities_path=IDENTITIES) as started:
        watch_handler_logs(started, log_records)
        yield started
