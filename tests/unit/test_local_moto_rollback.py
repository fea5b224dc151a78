"""moto's TransactWriteItems with the local stack's item-level rollback: same outcomes, no table copies."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.local.moto_app import item_level_transaction_rollback

pytestmark = pytest.mark.unit

RANGE_TABLE = "main"
HASH_TABLE = "keys"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    item_level_transaction_rollback()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=RANGE_TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.create_table(
            TableName=HASH_TABLE,
            KeySchema=[{"AttributeName": "owner_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "owner_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(
            TableName=RANGE_TABLE,
            Item={"pk": {"S": "A"}, "sk": {"S": "X"}, "count": {"N": "1"}},
        )
        client.put_item(TableName=RANGE_TABLE, Item={"pk": {"S": "B"}, "sk": {"S": "X"}})
        client.put_item(TableName=HASH_TABLE, Item={"owner_id": {"S": "k1"}, "v": {"S": "old"}})
        yield client


def _writes(condition_on_missing: str) -> list[dict[str, Any]]:
    return [
        {
            "Update": {
                "TableName": RANGE_TABLE,
                "Key": {"pk": {"S": "A"}, "sk": {"S": "X"}},
                "UpdateExpression": "ADD #count :one",
                "ExpressionAttributeNames": {"#count": "count"},
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
        {"Put": {"TableName": RANGE_TABLE, "Item": {"pk": {"S": "C"}, "sk": {"S": "X"}}}},
        {"Delete": {"TableName": RANGE_TABLE, "Key": {"pk": {"S": "B"}, "sk": {"S": "X"}}}},
        {"Put": {"TableName": HASH_TABLE, "Item": {"owner_id": {"S": "k1"}, "v": {"S": "new"}}}},
        {"Put": {"TableName": HASH_TABLE, "Item": {"owner_id": {"S": "k2"}}}},
        {
            "ConditionCheck": {
                "TableName": RANGE_TABLE,
                "Key": {"pk": {"S": "D"}, "sk": {"S": "X"}},
                "ConditionExpression": condition_on_missing,
            }
        },
    ]


def _get(client: Any, table: str, **key: str) -> dict[str, Any] | None:
    response = client.get_item(
        TableName=table, Key={name: {"S": value} for name, value in key.items()}
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


def test_cancelled_transaction_restores_items(dynamodb: Any) -> None:
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=_writes("attribute_exists(pk)"))

    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _get(dynamodb, RANGE_TABLE, pk="A", sk="X") == {
        "pk": {"S": "A"},
        "sk": {"S": "X"},
        "count": {"N": "1"},
    }
    assert _get(dynamodb, RANGE_TABLE, pk="B", sk="X") is not None
    assert _get(dynamodb, RANGE_TABLE, pk="C", sk="X") is None
    assert _get(dynamodb, HASH_TABLE, owner_id="k1") == {
        "owner_id": {"S": "k1"},
        "v": {"S": "old"},
    }
    assert _get(dynamodb, HASH_TABLE, owner_id="k2") is None


def test_committed_transaction_applies_items(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=_writes("attribute_not_exists(pk)"))

    counted = _get(dynamodb, RANGE_TABLE, pk="A", sk="X")
    assert counted is not None and counted["count"] == {"N": "2"}
    assert _get(dynamodb, RANGE_TABLE, pk="B", sk="X") is None
    assert _get(dynamodb, RANGE_TABLE, pk="C", sk="X") is not None
    assert _get(dynamodb, HASH_TABLE, owner_id="k1") == {
        "owner_id": {"S": "k1"},
        "v": {"S": "new"},
    }
    assert _get(dynamodb, HASH_TABLE, owner_id="k2") is not None


def test_transactions_copy_no_table(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import Table

    copied: list[str] = []
    real_deepcopy = copy.deepcopy

    def recording_deepcopy(value: Any, *args: Any) -> Any:
        if isinstance(value, Table):
            copied.append(value.name)
        return real_deepcopy(value, *args)

    monkeypatch.setattr(copy, "deepcopy", recording_deepcopy)

    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=_writes("attribute_exists(pk)"))
    dynamodb.transact_write_items(TransactItems=_writes("attribute_not_exists(pk)"))

    assert copied == []
