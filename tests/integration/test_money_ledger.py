"""The finance ledger route against moto: one UTC day, in pages, through the admin function."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idsentry.adapters.table import MainTable
from idsentry.ids import new_id
from infra.local.service import LocalService
from tests.integration.test_signup_service import _clear_table

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "http" / "admin_ledger_day.json"
DAY = "20261204"
# 2026-12-04T00:00:00Z and the next day.
DAY_START = 1796342400
NEXT_DAY_START = DAY_START + 86400


def ledger_item(owner_pk: str, created: int, kind: str, object_id: str) -> dict[str, Any]:
    """Build a ledger item in the shape billing writes."""
    day = "20261204" if created < NEXT_DAY_START else "20261205"
    return {
        "pk": owner_pk,
        "sk": f"LEDGER#{created:010d}#{kind}#{object_id}",
        "kind": kind,
        "amount": 1500,
        "currency": "cny",
        "created": created,
        "stripe_ids": {"invoice": object_id},
        "gsi1pk": f"LEDGER#{day}",
        "gsi1sk": f"{created:010d}#{kind}#{object_id}",
    }


def ledger_event(day: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text(encoding="utf-8")))
    event["requestContext"]["requestId"] = new_id("req")
    event["rawPath"] = f"/v1/admin/ledger/{day}"
    event["pathParameters"] = {"day": day}
    event["queryStringParameters"] = query or {}
    event["rawQueryString"] = "&".join(f"{name}={value}" for name, value in (query or {}).items())
    return event


@pytest.fixture
def table(local_service: LocalService) -> Iterator[MainTable]:
    assert local_service.stack is not None
    runtime = local_service.stack.runtime
    yield MainTable(runtime.environment["TABLE_NAME"], runtime.client("dynamodb"))
    _clear_table(local_service)


def invoke(service: LocalService, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    assert service.stack is not None
    response = service.stack.runtime.invoke("AdminApiFunction", event)
    return response["statusCode"], json.loads(response["body"])


def test_ledger_day_pages(local_service: LocalService, table: MainTable) -> None:
    subscriber_pk = f"SUB#{new_id('sbr')}"
    created = [DAY_START + 60 * minute for minute in range(5)]
    for moment in created:
        table.put(ledger_item(subscriber_pk, moment, "invoice_paid", f"in_{moment}"))
    table.put(ledger_item("ARCHIVE#psd_0001", DAY_START + 3600, "refund", "re_1"))
    table.put(ledger_item(subscriber_pk, NEXT_DAY_START + 5, "invoice_paid", "in_next"))

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "2"} if cursor is None else {"limit": "2", "cursor": cursor}
        status, body = invoke(local_service, ledger_event(DAY, query))
        assert status == 200
        assert body["day"] == DAY
        seen.extend(body["items"])
        pages += 1
        cursor = body["cursor"]
        if cursor is None:
            break

    assert pages >= 3
    assert [item["created"] for item in seen] == sorted([*created, DAY_START + 3600])
    refund = next(item for item in seen if item["kind"] == "refund")
    assert refund["owner"] == {"kind": "archive", "id": "psd_0001"}
    assert seen[0]["owner"] == {"kind": "sub", "id": subscriber_pk.removeprefix("SUB#")}
    assert seen[0]["amount"] == 1500
    assert "gsi1pk" not in seen[0]


@pytest.mark.parametrize(
    ("day", "query", "field"),
    [
        ("2026-12-04", {}, "day"),
        ("20261304", {}, "day"),
        (DAY, {"limit": "0"}, "limit"),
        (DAY, {"limit": "101"}, "limit"),
        (DAY, {"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_ledger_day_bad_input(
    local_service: LocalService, table: MainTable, day: str, query: dict[str, str], field: str
) -> None:
    status, body = invoke(local_service, ledger_event(day, query))

    assert status == 400
    assert body["error"]["field"] == field


def test_ledger_cursor_other_day(local_service: LocalService, table: MainTable) -> None:
    subscriber_pk = f"SUB#{new_id('sbr')}"
    for minute in range(3):
        table.put(
            ledger_item(subscriber_pk, DAY_START + 60 * minute, "invoice_paid", f"in_{minute}")
        )
    _, first = invoke(local_service, ledger_event(DAY, {"limit": "1"}))
    assert first["cursor"] is not None

    status, body = invoke(
        local_service, ledger_event("20261205", {"limit": "1", "cursor": first["cursor"]})
    )

    assert status == 400
    assert body["error"]["field"] == "cursor"
