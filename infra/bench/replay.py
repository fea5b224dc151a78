"""Replay plans: the AWS calls a measured process made, rebuilt with bench-only keys and targets.

The baseline process of the cold-start bench makes the same sequence of operations as the
signup function, on the same tables, KMS key and secret, with parameters that succeed
against moto but touch no product data:

- DynamoDB reads and writes use new keys that start with `BENCH#`, which no product key
  does, and transaction items mirror the recorded kinds (a counter update for Update, a
  conditional put for Put).
- Messages go to a bench-only SQS queue and events to a bench-only EventBridge bus, both
  created by the bench, so no consumer ever processes them as jobs or events.
- A KMS Decrypt unwraps a data key that the bench generated for a `bench_` owner id while it
  built the plan.
- Write requests are padded to the recorded request body size, so moto parses and stores as
  many bytes as it did for the function.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.bench.child import BYTES_KEY

BENCH_KEY_PREFIX = "BENCH#"
BENCH_QUEUE_NAME = "idsentry-bench-replay"
BENCH_BUS_NAME = "idsentry-bench-replay"
PADDING_ATTRIBUTE = "bench_padding"
RANGE_KEY_VALUES = {"S": {"S": "BENCH"}, "N": {"N": "0"}}
# Bench items carry an expiry time one day ahead, like every expiring item of the tables.
ITEM_TTL_SECONDS = 24 * 3600


class ReplayError(RuntimeError):
    """A recorded call has no replay, or names a table the bench does not know."""


@dataclass(frozen=True)
class KeySchema:
    """The key attributes of one DynamoDB table: names and attribute types (S, N or B)."""

    hash_name: str
    hash_type: str
    range_name: str | None = None
    range_type: str | None = None


@dataclass(frozen=True)
class ReplayTargets:
    """Destinations of replayed calls: the key schema of each table, the bench queue and bus."""

    tables: dict[str, KeySchema]
    queue_url: str
    bus_name: str


def prepare_targets(dynamodb: Any, sqs: Any, events: Any, table_names: list[str]) -> ReplayTargets:
    """Create the bench queue and bus (idempotent) and read the key schema of each table."""
    tables = {}
    for name in table_names:
        table = dynamodb.describe_table(TableName=name)["Table"]
        types = {
            definition["AttributeName"]: definition["AttributeType"]
            for definition in table["AttributeDefinitions"]
        }
        keys = {element["KeyType"]: element["AttributeName"] for element in table["KeySchema"]}
        range_name = keys.get("RANGE")
        tables[name] = KeySchema(
            hash_name=keys["HASH"],
            hash_type=types[keys["HASH"]],
            range_name=range_name,
            range_type=types[range_name] if range_name else None,
        )

    queue_url = sqs.create_queue(QueueName=BENCH_QUEUE_NAME)["QueueUrl"]
    existing = events.list_event_buses(NamePrefix=BENCH_BUS_NAME)["EventBuses"]
    if not any(bus["Name"] == BENCH_BUS_NAME for bus in existing):
        events.create_event_bus(Name=BENCH_BUS_NAME)
    return ReplayTargets(tables=tables, queue_url=queue_url, bus_name=BENCH_BUS_NAME)


def recorded_tables(calls: list[dict[str, Any]]) -> list[str]:
    """Return every DynamoDB table the recorded calls name, in first-use order."""
    names: dict[str, None] = {}
    for call in calls:
        if call["service"] != "dynamodb":
            continue
        summary = call["summary"]
        if "table" in summary:
            names[summary["table"]] = None
        for table in summary.get("tables", {}):
            names[table] = None
        for _, table in summary.get("items", []):
            names[table] = None
    return list(names)


def _bench_value(attribute_type: str, token: uuid.UUID) -> dict[str, str]:
    if attribute_type == "S":
        return {"S": BENCH_KEY_PREFIX + str(token)}
    if attribute_type == "N":
        return {"N": str(token.int % 10**15)}
    raise ReplayError(f"key attribute type {attribute_type} has no bench key; add one in replay.py")


class _Builder:
    """Turn recorded call summaries into call parameters against the replay targets."""

    def __init__(self, targets: ReplayTargets, clients: Callable[[str], Any]) -> None:
        self.targets = targets
        self.clients = clients
        self.expires_at = int(datetime.now(UTC).timestamp()) + ITEM_TTL_SECONDS

    def schema(self, table: str) -> KeySchema:
        if table not in self.targets.tables:
            raise ReplayError(f"table {table} was not prepared for replay")
        return self.targets.tables[table]

    def key(self, table: str) -> dict[str, Any]:
        schema = self.schema(table)
        key = {schema.hash_name: _bench_value(schema.hash_type, uuid.uuid4())}
        # The hash key is new each time, so a short fixed sort key keeps the request small.
        if schema.range_name and schema.range_type:
            if schema.range_type not in RANGE_KEY_VALUES:
                raise ReplayError(
                    f"sort key type {schema.range_type} has no bench key; add one in replay.py"
                )
            key[schema.range_name] = RANGE_KEY_VALUES[schema.range_type]
        return key

    def item(self, table: str, padding: int) -> dict[str, Any]:
        return {
            **self.key(table),
            "expires_at": {"N": str(self.expires_at)},
            PADDING_ATTRIBUTE: {"S": "x" * max(padding, 1)},
        }

    def absent(self, table: str) -> str:
        return f"attribute_not_exists({self.schema(table).hash_name})"


def _get_secret(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    return {"SecretId": summary["secret_id"]}


def _generate_data_key(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    return {
        "KeyId": summary["key_id"],
        "KeySpec": summary.get("key_spec") or "AES_256",
        "EncryptionContext": {"owner_id": "bench_" + uuid.uuid4().hex},
    }


def _decrypt(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    context = {"owner_id": "bench_" + uuid.uuid4().hex}
    generated = builder.clients("kms").generate_data_key(
        KeyId=summary["key_id"], KeySpec="AES_256", EncryptionContext=context
    )
    blob = base64.b64encode(generated["CiphertextBlob"]).decode("ascii")
    return {
        "CiphertextBlob": {BYTES_KEY: blob},
        "KeyId": summary["key_id"],
        "EncryptionContext": context,
    }


def _batch_get(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    return {
        "RequestItems": {
            table: {"Keys": [builder.key(table) for _ in range(count)], "ConsistentRead": True}
            for table, count in summary["tables"].items()
        }
    }


def _get_item(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    table = summary["table"]
    return {"TableName": table, "Key": builder.key(table), "ConsistentRead": True}


def _put_item(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    table = summary["table"]
    return {
        "TableName": table,
        "Item": builder.item(table, padding),
        "ConditionExpression": builder.absent(table),
    }


def _update_item(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    table = summary["table"]
    return {
        "TableName": table,
        "Key": builder.key(table),
        "UpdateExpression": f"SET {PADDING_ATTRIBUTE} = :padding",
        "ExpressionAttributeValues": {":padding": {"S": "x" * max(padding, 1)}},
        "ReturnValues": "ALL_NEW",
    }


def _delete_item(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    table = summary["table"]
    return {"TableName": table, "Key": builder.key(table)}


def _transact_write(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    puts = [kind for kind, _ in summary["items"]].count("Put")
    share = padding // puts if puts else 0
    items: list[dict[str, Any]] = []
    for kind, table in summary["items"]:
        if kind == "Put":
            body = {
                "TableName": table,
                "Item": builder.item(table, share),
                "ConditionExpression": builder.absent(table),
            }
        elif kind == "Update":
            # The shape of a limit counter: add one while below the limit.
            body = {
                "TableName": table,
                "Key": builder.key(table),
                "UpdateExpression": "ADD #count :one SET expires_at = :expires_at",
                "ConditionExpression": "attribute_not_exists(#count) OR #count < :limit",
                "ExpressionAttributeNames": {"#count": "count"},
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":limit": {"N": "100000"},
                    ":expires_at": {"N": str(builder.expires_at)},
                },
            }
        elif kind == "Delete":
            body = {"TableName": table, "Key": builder.key(table)}
        elif kind == "ConditionCheck":
            body = {
                "TableName": table,
                "Key": builder.key(table),
                "ConditionExpression": builder.absent(table),
            }
        else:
            raise ReplayError(f"transaction item kind {kind} has no replay; add one in replay.py")
        items.append({kind: body})
    return {"TransactItems": items}


def _send_message(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    return {
        "QueueUrl": builder.targets.queue_url,
        "MessageBody": json.dumps({"bench": "x" * max(padding, 1)}),
    }


def _send_message_batch(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    count = max(summary["entries"], 1)
    return {
        "QueueUrl": builder.targets.queue_url,
        "Entries": [
            {"Id": str(index), "MessageBody": json.dumps({"bench": "x" * max(padding // count, 1)})}
            for index in range(count)
        ],
    }


def _put_events(builder: _Builder, summary: dict[str, Any], padding: int) -> dict[str, Any]:
    count = max(summary["entries"], 1)
    return {
        "Entries": [
            {
                "EventBusName": builder.targets.bus_name,
                "Source": "idsentry.bench",
                "DetailType": "Bench.Replayed",
                "Detail": json.dumps({"bench": "x" * max(padding // count, 1)}),
            }
            for _ in range(count)
        ]
    }


Replay = Callable[[_Builder, dict[str, Any], int], dict[str, Any]]

# (service, operation) → (boto3 method name, parameter builder, whether to pad to size).
REPLAYS: dict[tuple[str, str], tuple[str, Replay, bool]] = {
    ("secretsmanager", "GetSecretValue"): ("get_secret_value", _get_secret, False),
    ("kms", "GenerateDataKey"): ("generate_data_key", _generate_data_key, False),
    ("kms", "Decrypt"): ("decrypt", _decrypt, False),
    ("dynamodb", "BatchGetItem"): ("batch_get_item", _batch_get, False),
    ("dynamodb", "GetItem"): ("get_item", _get_item, False),
    ("dynamodb", "PutItem"): ("put_item", _put_item, True),
    ("dynamodb", "UpdateItem"): ("update_item", _update_item, True),
    ("dynamodb", "DeleteItem"): ("delete_item", _delete_item, False),
    ("dynamodb", "TransactWriteItems"): ("transact_write_items", _transact_write, True),
    ("sqs", "SendMessage"): ("send_message", _send_message, True),
    ("sqs", "SendMessageBatch"): ("send_message_batch", _send_message_batch, True),
    ("events", "PutEvents"): ("put_events", _put_events, True),
}


def request_size(client: Any, operation: str, params: dict[str, Any]) -> int:
    """Return the request body size in bytes that client's protocol serializer makes of params."""
    from botocore.serialize import create_serializer

    service_model = client.meta.service_model
    serializer = create_serializer(service_model.metadata["protocol"])
    request = serializer.serialize_to_request(params, service_model.operation_model(operation))
    body = request["body"]
    return len(body.encode("utf-8") if isinstance(body, str) else body)


def build_plan(
    calls: list[dict[str, Any]], targets: ReplayTargets, clients: Callable[[str], Any]
) -> list[dict[str, Any]]:
    """Return one replay call (service, boto3 method, parameters) per recorded call, in order.

    Every call gets new bench keys, so a plan can be built and replayed once per run.
    `clients(service)` returns a client whose serializer measures the padded request size, and
    whose KMS client generates the data keys that replayed Decrypt calls unwrap. Blob
    parameters are written as {BYTES_KEY: base64} for the JSON spec; `child.decode_bytes`
    turns them back into bytes.
    """
    builder = _Builder(targets, clients)
    plan = []
    for call in calls:
        operation = (call["service"], call["operation"])
        if operation not in REPLAYS:
            raise ReplayError(
                f"{call['service']}:{call['operation']} has no replay, so the baseline cannot "
                "make the same requests; add it to REPLAYS in infra/bench/replay.py"
            )
        method, replay, padded = REPLAYS[operation]
        params = replay(builder, call["summary"], 1)
        if padded:
            # Padding is ASCII, one body byte per character, so one correction brings a
            # smaller body up to the recorded size, within a byte per padded item. A body
            # that is already larger stays as it is.
            size = request_size(clients(call["service"]), call["operation"], params)
            missing = call["request_bytes"] - size
            if missing > 0:
                params = replay(builder, call["summary"], 1 + missing)
        plan.append({"service": call["service"], "method": method, "params": params})
    return plan
