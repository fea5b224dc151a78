"""DynamoDB helpers: item (de)serialisation and reading transaction cancellation reasons."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Serialise a plain dict (ints, strs, bools, lists, dicts; None values dropped) to attribute values."""
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Deserialise attribute values; whole-number Decimals become ints."""
    return {key: _plain(_deserializer.deserialize(value)) for key, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(element) for element in value]
    if isinstance(value, dict):
        return {key: _plain(element) for key, element in value.items()}
    if isinstance(value, set):
        return {_plain(element) for element in value}
    return value


def key(pk: str, sk: str) -> dict[str, Any]:
    """Return the main table's key attribute values."""
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def cancellation_codes(exc: ClientError) -> list[str]:
    """Return each transaction item's cancellation code ("None" for items that were fine)."""
    reasons = exc.response.get("CancellationReasons", [])
    return [reason.get("Code", "None") for reason in reasons]


def is_condition_failure(exc: ClientError) -> bool:
    """Return whether a single-item write failed its condition expression."""
    return bool(exc.response["Error"]["Code"] == "ConditionalCheckFailedException")
