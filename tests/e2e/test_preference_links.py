"""One-click unsubscribe and SES bounces over the local HTTP stack and its pollers."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from idsentry.clock import epoch, utc_now
from idsentry.crypto import Pepper
from idsentry.services.unsubscribe import preference_url
from infra.local.service import LocalService
from tests.e2e.conftest import sign_up_and_verify, signup_body, wait_for_emails

pytestmark = pytest.mark.e2e

SES_SAMPLES = Path(__file__).resolve().parents[2] / "events" / "ses"


def _prefs(service: LocalService, subscriber_id: str) -> dict[str, Any] | None:
    assert service.stack is not None
    response = service.stack.runtime.client("dynamodb").get_item(
        TableName="idsentry-local",
        Key={"pk": {"S": f"SUB#{subscriber_id}"}, "sk": {"S": "PREFS"}},
        ConsistentRead=True,
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


def _wait_for_email_state(
    service: LocalService, subscriber_id: str, state: str, deadline_s: float = 20.0
) -> dict[str, Any]:
    """Return the preferences item once its e-mail state is `state`, or fail after the deadline."""
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        item = _prefs(service, subscriber_id)
        if item is not None and item.get("email_state") == {"S": state}:
            return item
        time.sleep(0.1)
    raise AssertionError(f"e-mail state did not become {state} within {deadline_s} s")


def _subscriber_with_confirmed_email(service: LocalService) -> tuple[str, str]:
    body = signup_body()
    subscriber_id = str(sign_up_and_verify(service, body)["subscriber_id"])
    confirmation = wait_for_emails(service, 1)[-1]
    link = re.search(r'href="([^"]+)"', confirmation["body"])
    assert link is not None
    assert "list-unsubscribe" not in confirmation["headers"]
    assert requests.get(link.group(1), timeout=30).status_code == 200
    return subscriber_id, body["email"]


def test_one_click_and_bounce(service: LocalService) -> None:
    subscriber_id, address = _subscriber_with_confirmed_email(service)
    pepper = Pepper.from_secret(service.pepper)
    url = preference_url(pepper, service.base_url, subscriber_id, "email:alerts", epoch(utc_now()))
    before = _prefs(service, subscriber_id)

    page = requests.get(url, timeout=30)
    after_get = _prefs(service, subscriber_id)
    one_click = requests.post(
        url,
        data="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )

    item = _prefs(service, subscriber_id)
    assert page.status_code == 200
    assert after_get == before
    assert one_click.status_code == 200
    assert item is not None
    assert item["email_lists_off"] == {"SS": ["alerts"]}

    # SES publishes a permanent bounce for the address; the rule routes it to the consumer.
    event = json.loads((SES_SAMPLES / "email_bounced_permanent.json").read_text(encoding="utf-8"))
    detail = event["detail"]
    detail["mail"]["messageId"] = f"0100019a-{uuid.uuid4()}-000000"
    detail["mail"]["destination"] = [address]
    detail["mail"]["tags"]["ses:configuration-set"] = ["idsentry-local"]
    detail["bounce"]["bouncedRecipients"][0]["emailAddress"] = address
    assert service.stack is not None
    response = service.stack.runtime.client("events").put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0

    suppressed = _wait_for_email_state(service, subscriber_id, "suppressed")
    assert suppressed["email_state_reason"] == {"S": "bounce:Permanent:General"}
    assert suppressed["email_lists_off"] == {"SS": ["alerts"]}
