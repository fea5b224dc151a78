"""Batch writes and reads: limits, duplicate keys and unprocessed parts, with botocore's Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from idsentry.adapters.batch import MAX_ATTEMPTS, BatchIncompleteError, BatchTable
from idsentry.adapters.table import MainTable

pytestmark = pytest.mark.unit

TABLE = "idsentry-test-breach-index"


@pytest.fixture
def client() -> Any:
    # The Stubber replies to every call, so no request leaves the process.
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _item(n: int) -> dict[str, Any]:
    return {"pk": f"email#1#{n:064x}", "sk": "breach-a", "expires_at": 1_900_000_000}


def _put(n: int) -> dict[str, Any]:
    return {
        "PutRequest": {
            "Item": {
                "pk": {"S": f"email#1#{n:064x}"},
                "sk": {"S": "breach-a"},
                "expires_at": {"N": "1900000000"},
            }
        }
    }


def _key(n: int) -> dict[str, Any]:
    return {"pk": {"S": f"WATCH#{n}"}, "sk": {"S": "WATCH"}}


def test_writes_split_by_25(client: Any, stubber: Stubber) -> None:
    for start, end in ((0, 25), (25, 50), (50, 60)):
        stubber.add_response(
            "batch_write_item",
            {"UnprocessedItems": {}},
            {"RequestItems": {TABLE: [_put(n) for n in range(start, end)]}},
        )

    written = BatchTable(TABLE, client, sleep=lambda _: None).put_many(_item(n) for n in range(60))

    assert written == 60


def test_duplicate_rows_written_once(client: Any, stubber: Stubber) -> None:
    stubber.add_response(
        "batch_write_item",
        {"UnprocessedItems": {}},
        {"RequestItems": {TABLE: [_put(0), _put(1)]}},
    )

    written = BatchTable(TABLE, client, sleep=lambda _: None).put_many(
        [_item(0), _item(1), _item(0), _item(1)]
    )

    assert written == 2


def test_unprocessed_items_retried(client: Any, stubber: Stubber) -> None:
    stubber.add_response(
        "batch_write_item",
        {"UnprocessedItems": {TABLE: [_put(2)]}},
        {"RequestItems": {TABLE: [_put(n) for n in range(3)]}},
    )
    stubber.add_response(
        "batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {TABLE: [_put(2)]}}
    )
    slept: list[float] = []
    table = BatchTable(TABLE, client, sleep=slept.append)

    table.put_many(_item(n) for n in range(3))

    assert len(slept) == 1
    assert (table.stats.write_requests, table.stats.retries) == (2, 1)


def test_endless_unprocessed_items_raise(client: Any, stubber: Stubber) -> None:
    for _ in range(10):
        stubber.add_response(
            "batch_write_item",
            {"UnprocessedItems": {TABLE: [_put(0)]}},
            {"RequestItems": {TABLE: [_put(0)]}},
        )

    with pytest.raises(BatchIncompleteError):
        BatchTable(TABLE, client, sleep=lambda _: None).put_many([_item(0)])


def test_reads_split_by_100(client: Any, stubber: Stubber) -> None:
    stubber.add_response(
        "batch_get_item",
        {"Responses": {TABLE: [{"pk": {"S": "WATCH#3"}, "sk": {"S": "WATCH"}}]}},
        {"RequestItems": {TABLE: {"Keys": [_key(n) for n in range(100)]}}},
    )
    stubber.add_response(
        "batch_get_item",
        {"Responses": {TABLE: []}},
        {"RequestItems": {TABLE: {"Keys": [_key(n) for n in range(100, 150)]}}},
    )

    found = BatchTable(TABLE, client, sleep=lambda _: None).get_many(
        (f"WATCH#{n}", "WATCH") for n in range(150)
    )

    assert list(found) == [("WATCH#3", "WATCH")]


def test_duplicate_keys_asked_once(client: Any, stubber: Stubber) -> None:
    stubber.add_response(
        "batch_get_item",
        {"Responses": {TABLE: []}},
        {"RequestItems": {TABLE: {"Keys": [_key(1), _key(2)]}}},
    )

    found = BatchTable(TABLE, client, sleep=lambda _: None).get_many(
        [("WATCH#1", "WATCH"), ("WATCH#2", "WATCH"), ("WATCH#1", "WATCH")]
    )

    assert found == {}


def test_unprocessed_keys_retried(client: Any, stubber: Stubber) -> None:
    stubber.add_response(
        "batch_get_item",
        {
            "Responses": {TABLE: [{"pk": {"S": "WATCH#1"}, "sk": {"S": "WATCH"}}]},
            "UnprocessedKeys": {TABLE: {"Keys": [_key(2)]}},
        },
        {"RequestItems": {TABLE: {"Keys": [_key(1), _key(2)]}}},
    )
    stubber.add_response(
        "batch_get_item",
        {"Responses": {TABLE: [{"pk": {"S": "WATCH#2"}, "sk": {"S": "WATCH"}}]}},
        {"RequestItems": {TABLE: {"Keys": [_key(2)]}}},
    )
    table = BatchTable(TABLE, client, sleep=lambda _: None)

    found = table.get_many([("WATCH#1", "WATCH"), ("WATCH#2", "WATCH")])

    assert sorted(found) == [("WATCH#1", "WATCH"), ("WATCH#2", "WATCH")]
    assert table.stats.get_requests == 2


def test_main_table_retries_unprocessed_keys_after_a_wait(
    client: Any, stubber: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("idsentry.adapters.batch.time.sleep", waits.append)
    request = {TABLE: {"Keys": [_key(1), _key(2)], "ConsistentRead": True}}
    unprocessed = {TABLE: {"Keys": [_key(2)], "ConsistentRead": True}}
    stubber.add_response(
        "batch_get_item",
        {
            "Responses": {TABLE: [{"pk": {"S": "WATCH#1"}, "sk": {"S": "WATCH"}}]},
            "UnprocessedKeys": unprocessed,
        },
        {"RequestItems": request},
    )
    stubber.add_response(
        "batch_get_item",
        {"Responses": {TABLE: [{"pk": {"S": "WATCH#2"}, "sk": {"S": "WATCH"}}]}},
        {"RequestItems": unprocessed},
    )

    found = MainTable(TABLE, client).get_many([("WATCH#1", "WATCH"), ("WATCH#2", "WATCH")])

    assert sorted(found) == [("WATCH#1", "WATCH"), ("WATCH#2", "WATCH")]
    assert len(waits) == 1


def test_main_table_gives_up_on_unprocessed_keys(
    client: Any, stubber: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("idsentry.adapters.batch.time.sleep", lambda _: None)
    unprocessed = {TABLE: {"Keys": [_key(1)], "ConsistentRead": True}}
    for _ in range(MAX_ATTEMPTS):
        stubber.add_response(
            "batch_get_item",
            {"Responses": {TABLE: []}, "UnprocessedKeys": unprocessed},
            {"RequestItems": unprocessed},
        )

    with pytest.raises(BatchIncompleteError):
        MainTable(TABLE, client).get_many([("WATCH#1", "WATCH")])
