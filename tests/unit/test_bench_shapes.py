"""Shapes of DynamoDB items and requests, from which the cold-start baseline builds its requests."""

from __future__ import annotations

import base64

from infra.bench.child import (
    BYTES_KEY,
    decode_bytes,
    item_shape,
    params_shape,
    response_shapes,
    value_shape,
)


def test_scalars_keep_size_not_content() -> None:
    item = {"name": {"S": "张三"}, "amount": {"N": "-12.50"}, "key": {"B": b"\x01\x02\x03"}}

    shape = item_shape(item)

    assert shape["name"] == {"S": "x" * 6}
    assert shape["amount"] == {"N": "111111"}
    assert decode_bytes(shape["key"]) == {"B": b"\0\0\0"}


def test_sets_stay_distinct() -> None:
    shape = item_shape(
        {
            "ids": {"SS": ["a", "b", "c"]},
            "counts": {"NS": ["1", "2"]},
            "blobs": {"BS": [b"a", b"b"]},
        }
    )

    assert len(set(shape["ids"]["SS"])) == 3
    assert len(set(shape["counts"]["NS"])) == 2
    assert all(float(number) for number in shape["counts"]["NS"])
    assert len({entry[BYTES_KEY] for entry in shape["blobs"]["BS"]}) == 2


def test_nested_values_keep_structure() -> None:
    value = {"M": {"list": {"L": [{"S": "ab"}, {"BOOL": True}, {"NULL": True}]}}}

    assert value_shape(value) == {
        "M": {"list": {"L": [{"S": "xx"}, {"BOOL": True}, {"NULL": True}]}}
    }


def test_update_shape_keeps_expressions() -> None:
    params = {
        "TableName": "idsentry-local",
        "Key": {"pk": {"S": "SUB#sbr_1"}, "sk": {"S": "PROFILE"}},
        "UpdateExpression": "SET #s = :status",
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":status": {"S": "active"}},
        "ReturnValues": "ALL_NEW",
    }

    shape = params_shape("UpdateItem", params)

    assert shape is not None
    assert shape["UpdateExpression"] == "SET #s = :status"
    assert shape["ConditionExpression"] == "attribute_exists(pk)"
    assert shape["ExpressionAttributeNames"] == {"#s": "status"}
    assert shape["ExpressionAttributeValues"] == {":status": {"S": "xxxxxx"}}
    assert shape["Key"] == {"pk": {"S": "x" * 9}, "sk": {"S": "x" * 7}}


def test_batch_shapes_per_table() -> None:
    params = {
        "RequestItems": {
            "idsentry-local": {
                "Keys": [{"pk": {"S": "A"}, "sk": {"S": "B"}}],
                "ConsistentRead": True,
            }
        }
    }
    parsed = {"Responses": {"idsentry-local": [{"pk": {"S": "A"}, "sk": {"S": "B"}}]}}

    shape = params_shape("BatchGetItem", params)
    returned = response_shapes("BatchGetItem", parsed)

    assert shape == {
        "RequestItems": {
            "idsentry-local": {
                "ConsistentRead": True,
                "Keys": [{"pk": {"S": "x"}, "sk": {"S": "x"}}],
            }
        }
    }
    assert returned == {"idsentry-local": [{"pk": {"S": "x"}, "sk": {"S": "x"}}]}


def test_batch_write_shapes_puts_and_deletes() -> None:
    params = {
        "RequestItems": {
            "t": [
                {"PutRequest": {"Item": {"pk": {"S": "ab"}}}},
                {"DeleteRequest": {"Key": {"pk": {"S": "c"}}}},
            ]
        }
    }

    assert params_shape("BatchWriteItem", params) == {
        "RequestItems": {
            "t": [
                {"PutRequest": {"Item": {"pk": {"S": "xx"}}}},
                {"DeleteRequest": {"Key": {"pk": {"S": "x"}}}},
            ]
        }
    }


def test_response_shapes_of_writes_and_misses() -> None:
    assert response_shapes("GetItem", {}) == []
    assert response_shapes("UpdateItem", {"Attributes": {"n": {"N": "5"}}}) == [{"n": {"N": "1"}}]
    assert response_shapes("PutItem", {}) is None
    assert response_shapes(
        "TransactGetItems", {"Responses": [{}, {"Item": {"a": {"S": "b"}}}]}
    ) == [
        None,
        {"a": {"S": "x"}},
    ]


def test_shape_survives_json() -> None:
    shape = item_shape({"key": {"B": b"abcd"}})

    assert base64.b64decode(shape["key"]["B"][BYTES_KEY]) == b"\0" * 4
