"""Twilio's status callbacks and replies through the local HTTP API on a named stage."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from idsentry.adapters.table import MainTable
from idsentry.routes.twilio_routes import EMPTY_TWIML
from infra.local.service import LocalService
from tests.e2e.conftest import (
    IDENTITIES,
    RecordCollector,
    sign_up_and_verify,
    signup_body,
    wait_for_sms,
    watch_handler_logs,
)

pytestmark = pytest.mark.e2e

ALICE = {
    "name": "Alice Li",
    "id_number": "310104198512120023",
    "mobile": "+8613900139002",
    "email": "alice@example.com",
}


@pytest.fixture(scope="module")
def staged_service(log_records: RecordCollector) -> Iterator[LocalService]:
    """The local stack on the stage `prod`, so every webhook URL carries `/prod`."""
    with LocalService(port=0, stage="prod", identities_path=IDENTITIES) as started:
        watch_handler_logs(started, log_records)
        yield started


def main_table(service: LocalService) -> MainTable:
    assert service.stack is not None
    runtime = service.stack.runtime
    return MainTable(runtime.environment["TABLE_NAME"], runtime.client("dynamodb"))


def wait_until(condition: Callable[[], bool], deadline_s: float = 20.0) -> bool:
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def message_status(service: LocalService, sid: str) -> str | None:
    assert service.twilio is not None
    return next((m["status"] for m in service.twilio.messages() if m["sid"] == sid), None)


def test_callbacks_out_of_order_end_delivered(staged_service: LocalService) -> None:
    twilio = staged_service.twilio
    assert twilio is not None
    twilio.set_callback_order("reversed", duplicate=True, seed=5)
    before = twilio.callback_counts()
    body = signup_body()

    created = requests.post(f"{staged_service.base_url}/v1/signups", json=body, timeout=30)
    sid = wait_for_sms(staged_service, body["mobile"])[-1]["sid"]
    assert wait_until(lambda: message_status(staged_service, sid) == "delivered")
    assert twilio.wait_for_callbacks(20.0)

    after = twilio.callback_counts()
    item: dict[str, Any] = main_table(staged_service).get(f"SMS#{sid}", "SMS") or {}
    assert created.status_code == 202
    assert after["delivered"] - before["delivered"] == 3
    assert after["dropped"] == before["dropped"], "a callback was refused: signature or route"
    assert item.get("delivery") == "delivered"
    twilio.set_callback_order("in_order")


def test_stop_and_start_replies(staged_service: LocalService) -> None:
    # The emulator lets a +86 number reply, which Twilio does not; the route treats it alike.
    twilio = staged_service.twilio
    assert twilio is not None
    verified = sign_up_and_verify(staged_service, signup_body(**ALICE))
    table = main_table(staged_service)
    key = (f"SUB#{verified['subscriber_id']}", "PREFS")

    stop = twilio.send_inbound(ALICE["mobile"], "退订")
    after_stop = (table.get(*key) or {}).get("sms_state")
    start = requests.post(
        f"{twilio.base_url}/_emulator/inbound",
        json={"from": ALICE["mobile"], "body": "start"},
        timeout=30,
    )
    after_start = (table.get(*key) or {}).get("sms_state")

    assert stop.status == 200
    assert stop.content_type.startswith("text/xml")
    assert stop.body == EMPTY_TWIML
    assert after_stop == "opted_out"
    assert start.json()["status"] == 200
    assert after_start == "ok"


def test_unknown_number_reply_accepted(staged_service: LocalService) -> None:
    assert staged_service.twilio is not None

    reply = staged_service.twilio.send_inbound("+14155550142", "STOP")

    assert reply.status == 200
    assert reply.body == EMPTY_TWIML
