"""Signup to paid subscription over the local stack: Checkout, signed webhook, consumer, entitlement."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

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
def paid_service(log_records: RecordCollector) -> Iterator[LocalService]:
    with LocalService(port=0, identities_path=IDENTITIES) as started:
        watch_handler_logs(started, log_records)
        yield started


def _profile(service: LocalService, subscriber_id: str) -> dict[str, Any]:
    assert service.stack is not None
    item = service.stack.runtime.client("dynamodb").get_item(
        TableName="idsentry-local",
        Key={"pk": {"S": f"SUB#{subscriber_id}"}, "sk": {"S": "PROFILE"}},
        ConsistentRead=True,
    )
    result: dict[str, Any] = item.get("Item", {})
    return result


def _wait_for(
    service: LocalService, subscriber_id: str, status: str, deadline_s: float = 30.0
) -> dict[str, Any]:
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        profile = _profile(service, subscriber_id)
        if profile.get("status", {}).get("S") == status:
            return profile
        time.sleep(0.2)
    raise AssertionError(f"the subscriber did not reach status {status} within {deadline_s} s")


def test_paid_checkout_entitles(paid_service: LocalService) -> None:
    assert paid_service.stripe_shim is not None
    verified = sign_up_and_verify(paid_service, signup_body())
    next_step = verified["next_step"]

    assert next_step["available"] is True
    assert next_step["checkout_url"].startswith(paid_service.stripe_shim.base_url)
    assert "支付链接" in next_step["message"]
    page = requests.get(next_step["checkout_url"], timeout=30)
    assert page.status_code == 200

    paid = requests.post(
        next_step["checkout_url"] + "/pay", headers={"Accept": "application/json"}, timeout=30
    )
    assert paid.status_code == 200
    paid_service.stripe_shim.flush()

    profile = _wait_for(paid_service, verified["subscriber_id"], "active")
    assert profile["monitored"] == {"BOOL": True}
    assert profile["gsi1pk"] == {"S": "ENTITLED"}
    deliveries = paid_service.stripe_shim.deliveries()
    assert any(d.event_type == "checkout.session.completed" and d.status == 200 for d in deliveries)
    ledger = _wait_for_ledger(paid_service, verified["subscriber_id"])
    assert ledger["kind"] == {"S": "invoice_paid"}
    assert ledger["amount"] == {"N": "1800"}
    assert ledger["currency"] == {"S": "cny"}


def _wait_for_ledger(
    service: LocalService, subscriber_id: str, deadline_s: float = 30.0
) -> dict[str, Any]:
    assert service.stack is not None
    dynamodb = service.stack.runtime.client("dynamodb")
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        items = dynamodb.query(
            TableName="idsentry-local",
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ledger)",
            ExpressionAttributeValues={
                ":pk": {"S": f"SUB#{subscriber_id}"},
                ":ledger": {"S": "LEDGER#"},
            },
            ConsistentRead=True,
        )["Items"]
        if items:
            result: dict[str, Any] = items[0]
            return result
        time.sleep(0.2)
    raise AssertionError(f"no ledger item within {deadline_s} s")


def test_duplicate_shuffled_webhooks_same_state(paid_service: LocalService) -> None:
    assert paid_service.stripe_shim is not None
    body = signup_body(
        name="Alice Li",
        id_number="310104198512120023",
        mobile="+8613900139002",
        email="alice.li@example.com",
        locale="en",
    )
    verified = sign_up_and_verify(paid_service, body)
    paid_service.stripe_shim.set_delivery(duplicate=True, shuffle=True)
    try:
        requests.post(
            verified["next_step"]["checkout_url"] + "/pay",
            headers={"Accept": "application/json"},
            timeout=30,
        )
        paid_service.stripe_shim.flush()
    finally:
        paid_service.stripe_shim.set_delivery()

    profile = _wait_for(paid_service, verified["subscriber_id"], "active")
    assert profile["monitored"] == {"BOOL": True}
    assert "Open the payment link" in verified["next_step"]["message"]
