"""The main table's writes for signup: limit counters, signups, codes and the verify transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from idsentry.adapters.dynamo import (
    cancellation_codes,
    from_item,
    is_condition_failure,
    key,
    to_item,
)


class TransactionConflictError(RuntimeError):
    """A transaction was cancelled for a reason other than a named condition; retry it whole."""

    def __init__(self, codes: list[str]) -> None:
        super().__init__(f"transaction cancelled: {codes}")
        self.codes = codes


class ConditionFailedError(RuntimeError):
    """A named condition of a transaction failed. `name` identifies the write."""

    def __init__(self, name: str) -> None:
        super().__init__(f"condition failed: {name}")
        self.name = name


@dataclass
class Write:
    """One write of a transaction: a Put, Update, Delete or ConditionCheck, with a name for errors."""

    name: str
    operation: str  # "Put", "Update", "Delete" or "ConditionCheck"
    body: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    # Another table of the same account; None is the main table.
    table: str | None = None


class MainTable:
    """Typed access to the main table through the low-level client."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.name = table_name
        self._client = client

    def client(self) -> Any:
        """Return the DynamoDB client, creating it on first use."""
        if self._client is None:
            from idsentry.adapters.aws import client

            self._client = client("dynamodb")
        return self._client

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """Read one item with a strongly consistent read."""
        response = self.client().get_item(TableName=self.name, Key=key(pk, sk), ConsistentRead=True)
        item = response.get("Item")
        return from_item(item) if item else None

    def get_partition(self, pk: str) -> dict[str, dict[str, Any]]:
        """Read every item of one partition with a consistent Query; returns them by sort key."""
        items: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        while True:
            response = self.client().query(**request)
            for raw in response.get("Items", []):
                item = from_item(raw)
                items[item["sk"]] = item
            if "LastEvaluatedKey" not in response:
                return items
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get_prefix(self, pk: str, sk_prefix: str) -> dict[str, dict[str, Any]]:
        """Read the items of one partition whose sort key starts with `sk_prefix`, by sort key."""
        items: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": to_item({":pk": pk, ":prefix": sk_prefix}),
            "ConsistentRead": True,
        }
        while True:
            response = self.client().query(**request)
            for raw in response.get("Items", []):
                item = from_item(raw)
                items[item["sk"]] = item
            if "LastEvaluatedKey" not in response:
                return items
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Read up to 100 distinct items in one BatchGetItem, retrying unprocessed keys.

        DynamoDB returns unprocessed keys when it throttles, so each retry waits longer, with
        full jitter; BatchIncompleteError is raised if keys are still unprocessed after
        MAX_ATTEMPTS requests.
        """
        from idsentry.adapters.batch import back_off

        unique = list(dict.fromkeys(keys))
        if len(unique) > 100:
            raise ValueError("BatchGetItem reads at most 100 keys")
        found: dict[tuple[str, str], dict[str, Any]] = {}
        pending: dict[str, Any] = {
            self.name: {"Keys": [key(pk, sk) for pk, sk in unique], "ConsistentRead": True}
        }
        attempt = 0
        while pending:
            response = self.client().batch_get_item(RequestItems=pending)
            for raw in response.get("Responses", {}).get(self.name, []):
                item = from_item(raw)
                found[(item["pk"], item["sk"])] = item
            pending = response.get("UnprocessedKeys") or {}
            if pending:
                attempt = back_off(self.name, attempt)
        return found

    def query_index(
        self, index: str, pk_value: str, sk_upto: str, limit: int
    ) -> list[dict[str, Any]]:
        """Return up to `limit` items of an overloaded index partition whose sort key is <= `sk_upto`."""
        response = self.client().query(
            TableName=self.name,
            IndexName=index,
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk <= :upto",
            ExpressionAttributeValues=to_item({":pk": pk_value, ":upto": sk_upto}),
            Limit=limit,
        )
        return [from_item(item) for item in response.get("Items", [])]

    def put(
        self,
        item: dict[str, Any],
        condition: str | None = None,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        """Put an item; returns False when `condition` failed."""
        request: dict[str, Any] = {"TableName": self.name, "Item": to_item(item)}
        if condition:
            request["ConditionExpression"] = condition
        if values:
            request["ExpressionAttributeValues"] = to_item(values)
        if names:
            request["ExpressionAttributeNames"] = names
        try:
            self.client().put_item(**request)
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def update(
        self,
        pk: str,
        sk: str,
        expression: str,
        values: dict[str, Any] | None = None,
        condition: str | None = None,
        names: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """Update an item and return its new attributes, or None when `condition` failed."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": key(pk, sk),
            "UpdateExpression": expression,
            "ReturnValues": "ALL_NEW",
        }
        if condition:
            request["ConditionExpression"] = condition
        if values:
            request["ExpressionAttributeValues"] = to_item(values)
        if names:
            request["ExpressionAttributeNames"] = names
        try:
            response = self.client().update_item(**request)
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        return from_item(response["Attributes"])

    def delete(
        self,
        pk: str,
        sk: str,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> bool:
        """Delete an item if it exists; returns False when `condition` failed."""
        request: dict[str, Any] = {"TableName": self.name, "Key": key(pk, sk)}
        if condition:
            request["ConditionExpression"] = condition
        if values:
            request["ExpressionAttributeValues"] = to_item(values)
        try:
            self.client().delete_item(**request)
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def transact(self, writes: Sequence[Write]) -> None:
        """Run the writes as one transaction.

        Raises ConditionFailedError naming the first write whose condition failed, or
        TransactionConflictError for any other cancellation (conflicts, throttling), which is
        safe to retry because nothing was written.
        """
        items = []
        for write in writes:
            body = {"TableName": write.table or self.name, **write.body}
            if write.values:
                body["ExpressionAttributeValues"] = to_item(write.values)
            items.append({write.operation: body})

        try:
            self.client().transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            codes = cancellation_codes(exc)
            for write, code in zip(writes, codes, strict=False):
                if code == "ConditionalCheckFailed":
                    raise ConditionFailedError(write.name) from exc
            raise TransactionConflictError(codes) from exc


def put_write(
    name: str,
    item: dict[str, Any],
    condition: str | None = None,
    values: dict[str, Any] | None = None,
) -> Write:
    """Build a transaction Put."""
    body: dict[str, Any] = {"Item": to_item(item)}
    if condition:
        body["ConditionExpression"] = condition
    return Write(name, "Put", body, values or {})


def update_write(
    name: str,
    pk: str,
    sk: str,
    expression: str,
    values: dict[str, Any] | None = None,
    condition: str | None = None,
    names: dict[str, str] | None = None,
) -> Write:
    """Build a transaction Update."""
    body: dict[str, Any] = {"Key": key(pk, sk), "UpdateExpression": expression}
    if condition:
        body["ConditionExpression"] = condition
    if names:
        body["ExpressionAttributeNames"] = names
    return Write(name, "Update", body, values or {})


def delete_write(
    name: str, pk: str, sk: str, condition: str | None = None, values: dict[str, Any] | None = None
) -> Write:
    """Build a transaction Delete."""
    body: dict[str, Any] = {"Key": key(pk, sk)}
    if condition:
        body["ConditionExpression"] = condition
    return Write(name, "Delete", body, values or {})


def counter_write(name: str, pk: str, sk: str, limit: int, expires_at: int) -> Write:
    """Build an Update that adds one to a counter only while it is below `limit`."""
    return update_write(
        name,
        pk,
        sk,
        "ADD #count :one SET expires_at = if_not_exists(expires_at, :expires_at)",
        values={":one": 1, ":limit": limit, ":expires_at": expires_at},
        condition="attribute_not_exists(#count) OR #count < :limit",
        names={"#count": "count"},
    )
