"""Exposures found together are announced in PutEvents requests of 10, and exactly once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from idsentry.adapters.bus import EventPublisher, PublishError
from idsentry.adapters.table import MainTable
from idsentry.services.exposures import Finding, record_exposures
from infra.local.service import LocalService

pytestmark = pytest.mark.integration

NOW = 1_796_000_000


class EventsClient:
    """An EventBridge client that keeps the entries and rejects those of chosen event ids."""

    def __init__(self, rejected: Sequence[str] = ()) -> None:
        self.requests: list[list[dict[str, Any]]] = []
        self.rejected = set(rejected)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.requests.append(Entries)
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "rejected by the test"}
            if json.loads(entry["Detail"])["event_id"] in self.rejected
            else {"EventId": uuid.uuid4().hex}
            for entry in Entries
        ]
        failed = sum(1 for result in results if "ErrorCode" in result)
        return {"FailedEntryCount": failed, "Entries": results}


def _table(service: LocalService) -> MainTable:
    assert service.stack is not None
    runtime = service.stack.runtime
    return MainTable(runtime.environment["TABLE_NAME"], runtime.client("dynamodb"))


def _findings(count: int) -> list[Finding]:
    breach = f"BatchShop{uuid.uuid4().hex[:8]}"
    return [
        Finding(f"sbr_batch{index:04d}", breach, frozenset({"mobile"})) for index in range(count)
    ]


def _announced(table: MainTable, finding: Finding) -> bool:
    item = table.get(f"SUB#{finding.subscriber_id}", f"EXPOSURE#{finding.breach_name}") or {}
    return bool(item.get("announced"))


def test_findings_share_put_events_requests(local_service: LocalService) -> None:
    table = _table(local_service)
    client = EventsClient()
    findings = _findings(23)

    announced = record_exposures(table, EventPublisher("bus", client), findings, "dataset", NOW)

    assert announced == 23
    assert [len(entries) for entries in client.requests] == [10, 10, 3]
    assert all(_announced(table, finding) for finding in findings)


def test_second_run_announces_nothing(local_service: LocalService) -> None:
    table = _table(local_service)
    findings = _findings(5)
    record_exposures(table, EventPublisher("bus", EventsClient()), findings, "dataset", NOW)
    client = EventsClient()

    announced = record_exposures(table, EventPublisher("bus", client), findings, "index", NOW + 5)

    assert announced == 0
    assert client.requests == []


def test_rejected_entry_announced_on_retry(local_service: LocalService) -> None:
    table = _table(local_service)
    findings = _findings(3)
    rejected = findings[1]
    rejected_id = f"evt_exposure_{rejected.subscriber_id}_{rejected.breach_name}"

    with pytest.raises(PublishError):
        record_exposures(
            table, EventPublisher("bus", EventsClient([rejected_id])), findings, "dataset", NOW
        )

    assert _announced(table, findings[0])
    assert not _announced(table, rejected)
    assert _announced(table, findings[2])

    # A claim older than a minute belongs to a caller that failed, so the retry takes it over.
    client = EventsClient()
    retried = record_exposures(table, EventPublisher("bus", client), findings, "dataset", NOW + 61)
    assert retried == 1
    assert [json.loads(entry["Detail"])["event_id"] for entry in client.requests[0]] == [
        rejected_id
    ]
    assert _announced(table, rejected)
