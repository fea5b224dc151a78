"""The daily check through the local stack: planner, workers, breach index and the HIBP emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from idsentry.services import breach_check, signup
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_signup_service import Harness, _clear_table

pytestmark = pytest.mark.integration

EMAIL = "wang@example.com"
SCHEDULE = "idsentry-local-breach-check"


@pytest.fixture
def harness(local_service: LocalService) -> Iterator[Harness]:
    assert local_service.hibp is not None
    local_service.hibp.reset()
    yield Harness(local_service, MovableClock())
    _clear_table(local_service)
    _clear_index(local_service)


def _clear_index(service: LocalService) -> None:
    assert service.stack is not None
    client = service.stack.runtime.client("dynamodb")
    table = service.stack.runtime.environment["BREACH_INDEX_TABLE"]
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})


def _monitored_subscriber(harness: Harness) -> str:
    """Return a verified, paying subscriber whose e-mail address is confirmed."""
    signup_id = harness.create("wang")
    subscriber_id = str(
        signup.verify_signup(harness.deps, signup_id, harness.send_code(signup_id))["subscriber_id"]
    )
    harness.table.update(
        f"SUB#{subscriber_id}",
        "PROFILE",
        "SET monitored = :true, gsi1pk = :entitled, gsi1sk = :id, email_confirmed_at = :at",
        values={":true": True, ":entitled": "ENTITLED", ":id": subscriber_id, ":at": 1_796_000_000},
    )
    harness.table.update(
        f"SUB#{subscriber_id}", "IDENT#email", "SET confirmed = :true", values={":true": True}
    )
    return subscriber_id


def _index_mobile(harness: Harness, subscriber_id: str, breach: str) -> None:
    assert harness.service.stack is not None
    mobile = harness.table.get(f"SUB#{subscriber_id}", "IDENT#mobile")
    assert mobile is not None
    version, value = next(iter(mobile["fingerprints"].items()))
    harness.dynamodb.put_item(
        TableName=harness.service.stack.runtime.environment["BREACH_INDEX_TABLE"],
        Item={"pk": {"S": f"mobile#{version}#{value}"}, "sk": {"S": breach}},
    )


def _run(harness: Harness) -> None:
    assert harness.service.stack is not None
    harness.service.stack.runtime.fire_schedule(SCHEDULE)
    harness.service.stack.runtime.run_until_idle()


def _exposures(harness: Harness, subscriber_id: str) -> dict[str, dict[str, Any]]:
    items = harness.table.get_partition(f"SUB#{subscriber_id}")
    return {
        sk.removeprefix("EXPOSURE#"): item
        for sk, item in items.items()
        if sk.startswith("EXPOSURE#")
    }


def _hibp_lookups(harness: Harness) -> int:
    assert harness.service.hibp is not None
    requests = harness.service.hibp.requests()["requests"]
    return sum(1 for request in requests if request["endpoint"] == "breachedaccount")


def test_daily_run_finds_index_and_hibp(harness: Harness) -> None:
    assert harness.service.hibp is not None
    subscriber_id = _monitored_subscriber(harness)
    _index_mobile(harness, subscriber_id, "OldLeak2025")
    harness.service.hibp.add_account(EMAIL, ["ExampleForum2026", "ExampleSpamList2026"])

    _run(harness)

    exposures = _exposures(harness, subscriber_id)
    assert sorted(exposures) == ["ExampleForum2026", "OldLeak2025"]
    assert exposures["OldLeak2025"]["found_by"] == "index"
    assert exposures["ExampleForum2026"]["found_by"] == "hibp"
    assert all(item["announced"] is True for item in exposures.values())
    email = harness.table.get(f"SUB#{subscriber_id}", "IDENT#email")
    assert email is not None and email["hibp_status"] == "breached"
    assert harness.table.get("BREACH#ExampleForum2026", "BREACH") is not None


def test_second_run_repeats_nothing(harness: Harness) -> None:
    assert harness.service.hibp is not None
    subscriber_id = _monitored_subscriber(harness)
    _index_mobile(harness, subscriber_id, "OldLeak2025")
    harness.service.hibp.add_account(EMAIL, ["ExampleForum2026"])
    _run(harness)
    first = _exposures(harness, subscriber_id)
    lookups = _hibp_lookups(harness)

    _run(harness)

    assert _exposures(harness, subscriber_id) == first
    # No breach was added to the catalogue since the last lookup, so HIBP is not asked again.
    assert _hibp_lookups(harness) == lookups


def test_crash_before_announcing_repaired(harness: Harness) -> None:
    subscriber_id = _monitored_subscriber(harness)
    _index_mobile(harness, subscriber_id, "OldLeak2025")
    # A worker recorded the exposure and died before it sent the event.
    harness.table.put(
        {
            "pk": f"SUB#{subscriber_id}",
            "sk": "EXPOSURE#OldLeak2025",
            "breach_name": "OldLeak2025",
            "found_by": "index",
            "announced": False,
            "announcing_at": 1,
            "matched_kinds": {"mobile"},
        }
    )

    _run(harness)

    exposure = _exposures(harness, subscriber_id)["OldLeak2025"]
    assert exposure["announced"] is True


def test_unauthorized_key_is_unknown(harness: Harness) -> None:
    assert harness.service.hibp is not None
    subscriber_id = _monitored_subscriber(harness)
    harness.service.hibp.add_account(EMAIL, ["ExampleForum2026"])
    # The planner's catalogue sync gets the first failure, the worker's lookup the second.
    harness.service.hibp.fail_next(2, status=401)

    _run(harness)

    email = harness.table.get(f"SUB#{subscriber_id}", "IDENT#email")
    assert email is not None
    assert email["hibp_status"] == "unknown"
    assert "hibp_checked_at" not in email
    assert "ExampleForum2026" not in _exposures(harness, subscriber_id)


def test_unavailable_hibp_retried(harness: Harness) -> None:
    assert harness.service.hibp is not None
    subscriber_id = _monitored_subscriber(harness)
    harness.service.hibp.add_account(EMAIL, ["ExampleForum2026"])
    harness.service.hibp.fail_next(2, status=503)

    _run(harness)
    # The failed job becomes visible again after the local 1 s visibility timeout.
    give_up = time.monotonic() + 30
    while "ExampleForum2026" not in _exposures(harness, subscriber_id):
        assert time.monotonic() < give_up, "the retried check found nothing within 30 s"
        time.sleep(0.5)
        assert harness.service.stack is not None
        harness.service.stack.runtime.run_until_idle()

    email = harness.table.get(f"SUB#{subscriber_id}", "IDENT#email")
    assert email is not None and email["hibp_status"] == "breached"


def test_pages_chain_through_every_subscriber(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    wang = _monitored_subscriber(harness)
    _index_mobile(harness, wang, "OldLeak2025")
    signup_id = harness.create("alice")
    alice = str(
        signup.verify_signup(harness.deps, signup_id, harness.send_code(signup_id))["subscriber_id"]
    )
    harness.table.update(
        f"SUB#{alice}",
        "PROFILE",
        "SET monitored = :true, gsi1pk = :entitled, gsi1sk = :id",
        values={":true": True, ":entitled": "ENTITLED", ":id": alice},
    )
    _index_mobile(harness, alice, "OldLeak2025")
    # One subscriber per page: the run must follow the page jobs to the end.
    monkeypatch.setattr(breach_check, "PAGE_SIZE", 1)

    _run(harness)

    assert "OldLeak2025" in _exposures(harness, wang)
    assert "OldLeak2025" in _exposures(harness, alice)
