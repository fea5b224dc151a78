"""Replay plans: the AWS calls a measured process made, rebuilt with bench-only keys and targets.

The baseline process of the cold-start bench makes the same sequence of operations as the
function, on the same tables, KMS keys, secrets, buckets and SES sender, with parameters that
succeed (or fail with the same error code) against moto but touch no product data:

- DynamoDB reads and writes use new keys that start with `BENCH#`, which no product key
  does, and transaction items mirror the recorded kinds (a counter update for Update, a
  conditional put for Put). A read that returned items reads as many bench items of about the
  same size, which the bench writes while it builds the plan. A Query reads a bench partition
  of the table or of the same index, which contains as many items as the function's did.
- Messages go to a bench-only SQS queue and events to a bench-only EventBridge bus, both
  created by the bench, so no consumer ever processes them as jobs or events.
- A KMS Decrypt unwraps a data key that the bench generated for a `bench_` owner id while it
  built the plan.
- S3 objects are written and read under the `bench-replay/` prefix of the same bucket, with
  the same server-side encryption. E-mails go from the same sender to a bench address.
- Write requests are padded to the recorded request body size, so moto parses and stores as
  many bytes as it did for the function.
- A call that failed with an error code (a conditional write that found its condition false,
  an address that was not suppressed) is replayed so that it fails with the same code, and
  the plan step names that code for the baseline process to expect.

A DynamoDB call recorded with shapes (`child.params_shape`, `child.response_shapes`) is
replayed with the same structure instead: its reads find items of the same attributes, types
and sizes, and its writes send the function's own expressions and options with values of the
same types and sizes. moto's time for a request depends on that structure, so a baseline of
padded items would leave part of moto's work in the function's figure. A shaped write is used
only when a trial on another new bench key ends as the function's call did (the same error
code, or none). Otherwise the call is replayed as above. Each plan step records which way it
was built ("shaped").
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.bench.child import BYTES_KEY, decode_bytes

BENCH_KEY_PREFIX = "BENCH#"
BENCH_QUEUE_NAME = "idsentry-bench-replay"
BENCH_BUS_NAME = "idsentry-bench-replay"
BENCH_OBJECT_PREFIX = "bench-replay/"
BENCH_EMAIL_DOMAIN = "bench.example.com"
PADDING_ATTRIBUTE = "bench_padding"
RANGE_KEY_VALUES = {"S": {"S": "BENCH"}, "N": {"N": "0"}}
# Bench items carry an expiry time one day ahead, like every expiring item of the tables.
ITEM_TTL_SECONDS = 24 * 3600
# Bytes of a DynamoDB JSON response around its items, and of each item besides its padding.
READ_OVERHEAD_BYTES = 120
BATCH_WRITE_LIMIT = 25
CONDITION_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELED = "TransactionCanceledException"


class ReplayError(RuntimeError):
    """A recorded call has no replay, or names a table the bench does not know."""


@dataclass(frozen=True)
class KeySchema:
    """The key attributes of one DynamoDB table: names and attribute types (S, N or B).

    `indexes` maps each global secondary index to its own key schema.
    """

    hash_name: str
    hash_type: str
    range_name: str | None = None
    range_type: str | None = None
    indexes: dict[str, KeySchema] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplayTargets:
    """Destinations of replayed calls: the key schema of each table, the bench queue and bus."""

    tables: dict[str, KeySchema]
    queue_url: str
    bus_name: str


def _schema(elements: list[dict[str, str]], types: dict[str, str]) -> KeySchema:
    keys = {element["KeyType"]: element["AttributeName"] for element in elements}
    range_name = keys.get("RANGE")
    return KeySchema(
        hash_name=keys["HASH"],
        hash_type=types[keys["HASH"]],
        range_name=range_name,
        range_type=types[range_name] if range_name else None,
    )


def prepare_targets(dynamodb: Any, sqs: Any, events: Any, table_names: list[str]) -> ReplayTargets:
    """Create the bench queue and bus (idempotent) and read the key schema of each table."""
    tables = {}
    for name in table_names:
        table = dynamodb.describe_table(TableName=name)["Table"]
        types = {
            definition["AttributeName"]: definition["AttributeType"]
            for definition in table["AttributeDefinitions"]
        }
        schema = _schema(table["KeySchema"], types)
        for index in table.get("GlobalSecondaryIndexes") or []:
            schema.indexes[index["IndexName"]] = _schema(index["KeySchema"], types)
        tables[name] = schema

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


def _range_value(schema: KeySchema) -> dict[str, str]:
    assert schema.range_type is not None
    if schema.range_type not in RANGE_KEY_VALUES:
        raise ReplayError(
            f"sort key type {schema.range_type} has no bench key; add one in replay.py"
        )
    return RANGE_KEY_VALUES[schema.range_type]


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
        if schema.range_name:
            key[schema.range_name] = _range_value(schema)
        return key

    def item(self, table: str, padding: int) -> dict[str, Any]:
        return {
            **self.key(table),
            "expires_at": {"N": str(self.expires_at)},
            PADDING_ATTRIBUTE: {"S": "x" * max(padding, 1)},
        }

    def absent(self, table: str) -> str:
        return f"attribute_not_exists({self.schema(table).hash_name})"

    def present(self, table: str) -> str:
        """Return a condition that is false for every new bench key."""
        return f"attribute_exists({self.schema(table).hash_name})"

    def write_items(self, table: str, items: list[dict[str, Any]]) -> None:
        """Write bench items now, for a replayed read to find. Binary values may be encoded."""
        dynamodb = self.clients("dynamodb")
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            chunk = items[start : start + BATCH_WRITE_LIMIT]
            pending: dict[str, Any] = {
                table: [{"PutRequest": {"Item": decode_bytes(item)}} for item in chunk]
            }
            while pending:
                response = dynamodb.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}

    def found_items(self, table: str, keys: list[dict[str, Any]], size: int) -> None:
        """Write bench items under keys, each padded so that a read returns about `size` bytes."""
        self.write_items(
            table,
            [
                {
                    **key,
                    "expires_at": {"N": str(self.expires_at)},
                    PADDING_ATTRIBUTE: {"S": "x" * max(size, 1)},
                }
                for key in keys
            ],
        )

    def bench_email(self) -> str:
        return f"bench-{uuid.uuid4().hex}@{BENCH_EMAIL_DOMAIN}"

    def shaped_item(self, table: str, shape: dict[str, Any], key: dict[str, Any]) -> dict[str, Any]:
        """Return an item of the recorded shape under `key`, expiring like every bench item."""
        item = {**shape, **key}
        if "expires_at" in item:
            item["expires_at"] = {"N": str(self.expires_at)}
        return item

    def ends_as(self, method: str, params: dict[str, Any], error_code: str | None) -> bool:
        """Make the call once and return whether it ended with `error_code` (None: success)."""
        from botocore.exceptions import ClientError

        try:
            getattr(self.clients("dynamodb"), method)(**decode_bytes(params))
        except ClientError as exc:
            return exc.response.get("Error", {}).get("Code") == error_code
        return error_code is None


def _item_size(call: dict[str, Any]) -> int:
    """Return the padding per item that makes a replayed read about as large as the recorded one."""
    returned = int(call.get("returned") or 0)
    if returned == 0:
        return 1
    return max(1, (int(call.get("response_bytes") or 0) - READ_OVERHEAD_BYTES) // returned)


def _get_secret(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    return {"SecretId": call["summary"]["secret_id"]}


def _generate_data_key(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    summary = call["summary"]
    return {
        "KeyId": summary["key_id"],
        "KeySpec": summary.get("key_spec") or "AES_256",
        "EncryptionContext": {"owner_id": "bench_" + uuid.uuid4().hex},
    }


def _decrypt(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    summary = call["summary"]
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


def _get_public_key(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    return {"KeyId": call["summary"]["key_id"]}


def _batch_get(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    found = int(call.get("returned") or 0)
    size = _item_size(call)
    request_items = {}
    for table, count in call["summary"]["tables"].items():
        keys = [builder.key(table) for _ in range(count)]
        present, found = keys[: min(found, count)], found - min(found, count)
        builder.found_items(table, present, size)
        request_items[table] = {"Keys": keys, "ConsistentRead": True}
    return {"RequestItems": request_items}


def _get_item(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    table = call["summary"]["table"]
    key = builder.key(table)
    if call.get("returned"):
        builder.found_items(table, [key], _item_size(call))
    return {"TableName": table, "Key": key, "ConsistentRead": True}


def _query(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    summary = call["summary"]
    table = summary["table"]
    index = summary.get("index")
    size = _item_size(call)
    items = [builder.item(table, size) for _ in range(int(call.get("returned") or 0))]
    schema, partition = _bench_partition(builder, call, items)

    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#bench_key = :bench_key",
        "ExpressionAttributeNames": {"#bench_key": schema.hash_name},
        "ExpressionAttributeValues": {":bench_key": partition},
    }
    if index:
        params["IndexName"] = index
    else:
        params["ConsistentRead"] = True
    return params


def _bench_partition(
    builder: _Builder, call: dict[str, Any], items: list[dict[str, Any]]
) -> tuple[KeySchema, dict[str, str]]:
    """Write `items` into a new bench partition of the queried table or index.

    Returns the key schema that the query uses and the partition's key value. Each item gets
    the partition key and a sort key of its own.
    """
    table = call["summary"]["table"]
    index = call["summary"].get("index")
    table_schema = builder.schema(table)
    if index and index not in table_schema.indexes:
        raise ReplayError(f"index {index} of table {table} was not prepared for replay")
    schema = table_schema.indexes[index] if index else table_schema
    partition = _bench_value(schema.hash_type, uuid.uuid4())
    for number, item in enumerate(items):
        item[schema.hash_name] = partition
        if schema.range_name and schema.range_type == "S":
            item[schema.range_name] = {"S": f"BENCH#{number:06d}"}
        elif schema.range_name:
            item[schema.range_name] = {"N": str(number)}
    builder.write_items(table, items)
    return schema, partition


def _put_item(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    table = call["summary"]["table"]
    failing = call.get("error_code") == CONDITION_FAILED
    return {
        "TableName": table,
        "Item": builder.item(table, padding),
        "ConditionExpression": builder.present(table) if failing else builder.absent(table),
    }


def _update_item(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    table = call["summary"]["table"]
    params: dict[str, Any] = {
        "TableName": table,
        "Key": builder.key(table),
        "UpdateExpression": f"SET {PADDING_ATTRIBUTE} = :padding",
        "ExpressionAttributeValues": {":padding": {"S": "x" * max(padding, 1)}},
        "ReturnValues": "ALL_NEW",
    }
    if call.get("error_code") == CONDITION_FAILED:
        params["ConditionExpression"] = builder.present(table)
    return params


def _delete_item(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    table = call["summary"]["table"]
    params: dict[str, Any] = {"TableName": table, "Key": builder.key(table)}
    if call.get("error_code") == CONDITION_FAILED:
        params["ConditionExpression"] = builder.present(table)
    return params


def _batch_write(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    counts = call["summary"]["tables"]
    total = max(sum(counts.values()), 1)
    return {
        "RequestItems": {
            table: [
                {"PutRequest": {"Item": builder.item(table, padding // total)}}
                for _ in range(count)
            ]
            for table, count in counts.items()
        }
    }


def _transact_get(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    return {
        "TransactItems": [
            {"Get": {"TableName": table, "Key": builder.key(table)}}
            for _, table in call["summary"]["items"]
        ]
    }


def _transact_write(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    summary = call["summary"]
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
    if call.get("error_code") == TRANSACTION_CANCELED:
        # A condition that no new bench key meets cancels the transaction, as the function's did.
        first_kind, first_table = summary["items"][0]
        items[0][first_kind]["ConditionExpression"] = builder.present(first_table)
    return {"TransactItems": items}


def _send_message(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    return {
        "QueueUrl": builder.targets.queue_url,
        "MessageBody": json.dumps({"bench": "x" * max(padding, 1)}),
    }


def _send_message_batch(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    count = max(call["summary"]["entries"], 1)
    return {
        "QueueUrl": builder.targets.queue_url,
        "Entries": [
            {"Id": str(index), "MessageBody": json.dumps({"bench": "x" * max(padding // count, 1)})}
            for index in range(count)
        ],
    }


def _put_events(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    summary = call["summary"]
    count = max(summary["entries"], 1)
    detail_types = summary.get("detail_types") or ["Bench.Replayed"]
    return {
        "Entries": [
            {
                "EventBusName": builder.targets.bus_name,
                "Source": "idsentry.bench",
                "DetailType": detail_types[number % len(detail_types)],
                "Detail": json.dumps({"bench": "x" * max(padding // count, 1)}),
            }
            for number in range(count)
        ]
    }


def _encryption(summary: dict[str, Any]) -> dict[str, Any]:
    params = {}
    if summary.get("sse"):
        params["ServerSideEncryption"] = summary["sse"]
    if summary.get("kms_key"):
        params["SSEKMSKeyId"] = summary["kms_key"]
    return params


def _put_object(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    summary = call["summary"]
    return {
        "Bucket": summary["bucket"],
        "Key": f"{BENCH_OBJECT_PREFIX}{uuid.uuid4().hex}",
        "Body": {BYTES_KEY: base64.b64encode(b"x" * max(padding, 1)).decode("ascii")},
        **_encryption(summary),
    }


def _get_object(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    summary = call["summary"]
    key = f"{BENCH_OBJECT_PREFIX}{uuid.uuid4().hex}"
    if not call.get("error_code"):
        builder.clients("s3").put_object(
            Bucket=summary["bucket"],
            Key=key,
            Body=b"x" * max(int(call.get("response_bytes") or 0), 1),
            **_encryption(summary),
        )
    return {"Bucket": summary["bucket"], "Key": key}


def _head_object(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    summary = call["summary"]
    key = f"{BENCH_OBJECT_PREFIX}{uuid.uuid4().hex}"
    if not call.get("error_code"):
        builder.clients("s3").put_object(
            Bucket=summary["bucket"], Key=key, Body=b"x", **_encryption(summary)
        )
    return {"Bucket": summary["bucket"], "Key": key}


def _delete_objects(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    summary = call["summary"]
    objects = [
        {"Key": f"{BENCH_OBJECT_PREFIX}{uuid.uuid4().hex}"}
        for _ in range(max(int(summary.get("objects") or 1), 1))
    ]
    return {"Bucket": summary["bucket"], "Delete": {"Objects": objects, "Quiet": True}}


def _delete_object(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    return {"Bucket": call["summary"]["bucket"], "Key": f"{BENCH_OBJECT_PREFIX}{uuid.uuid4().hex}"}


def _list_object_versions(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    return {
        "Bucket": call["summary"]["bucket"],
        "Prefix": f"{BENCH_OBJECT_PREFIX}{uuid.uuid4().hex}/",
    }


def _send_email(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    summary = call["summary"]
    params: dict[str, Any] = {
        "FromEmailAddress": summary["from"],
        "Destination": {"ToAddresses": [builder.bench_email()]},
        "Content": {
            "Simple": {
                "Subject": {"Data": "bench", "Charset": "UTF-8"},
                "Body": {"Text": {"Data": "x" * max(padding, 1), "Charset": "UTF-8"}},
            }
        },
    }
    if summary.get("configuration_set"):
        params["ConfigurationSetName"] = summary["configuration_set"]
    return params


def _delete_suppressed(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    address = builder.bench_email()
    if not call.get("error_code"):
        builder.clients("sesv2").put_suppressed_destination(EmailAddress=address, Reason="BOUNCE")
    return {"EmailAddress": address}


def _put_suppressed(builder: _Builder, call: dict[str, Any], padding: int) -> dict[str, Any]:
    return {
        "EmailAddress": builder.bench_email(),
        "Reason": call["summary"].get("reason") or "BOUNCE",
    }


# ---------------------------------------------------------------------------- shaped replays

# Builds a call's parameters from its shapes, or returns None to replay it padded instead.
ShapedReplay = Callable[[_Builder, dict[str, Any]], dict[str, Any] | None]


def _used_names(names: dict[str, str] | None, *expressions: str | None) -> dict[str, str]:
    """Return the expression attribute names that the expressions kept in a replay use."""
    text = " ".join(expression for expression in expressions if expression)
    return {name: value for name, value in (names or {}).items() if name in text}


def _read_options(shape: dict[str, Any]) -> dict[str, Any]:
    """Return a read's projection and consistency options from its recorded shape."""
    options: dict[str, Any] = {}
    projection = shape.get("ProjectionExpression")
    if projection:
        options["ProjectionExpression"] = projection
        names = _used_names(shape.get("ExpressionAttributeNames"), projection)
        if names:
            options["ExpressionAttributeNames"] = names
    if "ConsistentRead" in shape:
        options["ConsistentRead"] = shape["ConsistentRead"]
    return options


def _shaped_get_item(builder: _Builder, call: dict[str, Any]) -> dict[str, Any] | None:
    found = call.get("returned_shapes")
    if found is None:
        return None
    table = call["summary"]["table"]
    key = builder.key(table)
    if found:
        builder.write_items(table, [builder.shaped_item(table, found[0], key)])
    return {"TableName": table, "Key": key, **_read_options(call["shape"])}


def _shaped_batch_get(builder: _Builder, call: dict[str, Any]) -> dict[str, Any] | None:
    found = call.get("returned_shapes")
    if found is None:
        return None
    request_items = {}
    for table, entry in call["shape"]["RequestItems"].items():
        keys = [builder.key(table) for _ in entry["Keys"]]
        shapes = found.get(table) or []
        builder.write_items(
            table,
            [
                builder.shaped_item(table, shape, key)
                for shape, key in zip(shapes, keys[: len(shapes)], strict=True)
            ],
        )
        request_items[table] = {"Keys": keys, **_read_options(entry)}
    return {"RequestItems": request_items}


def _shaped_query(builder: _Builder, call: dict[str, Any]) -> dict[str, Any] | None:
    """Query a bench partition with items of the shapes that the function's query returned.

    The key condition names only the partition (the function's sort key condition and filter
    compare values that the shapes no longer have), and the projection is the function's.
    """
    found = call.get("returned_shapes")
    if found is None:
        return None
    shape = call["shape"]
    table = call["summary"]["table"]
    index = call["summary"].get("index")
    items = [builder.shaped_item(table, item, builder.key(table)) for item in found]
    schema, partition = _bench_partition(builder, call, items)

    options = _read_options(shape)
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#bench_key = :bench_key",
        "ExpressionAttributeNames": {
            **options.pop("ExpressionAttributeNames", {}),
            "#bench_key": schema.hash_name,
        },
        "ExpressionAttributeValues": {":bench_key": partition},
        **options,
    }
    if index:
        params["IndexName"] = index
    if "ScanIndexForward" in shape:
        params["ScanIndexForward"] = shape["ScanIndexForward"]
    return params


def _write_options(shape: dict[str, Any]) -> dict[str, Any]:
    """Return a write's expressions, names, values and return options from its shape."""
    copied = (
        "UpdateExpression",
        "ConditionExpression",
        "ReturnValues",
        "ReturnValuesOnConditionCheckFailure",
    )
    options = {name: shape[name] for name in copied if name in shape}
    expressions = (shape.get("UpdateExpression"), shape.get("ConditionExpression"))
    names = _used_names(shape.get("ExpressionAttributeNames"), *expressions)
    if names:
        options["ExpressionAttributeNames"] = names
    if shape.get("ExpressionAttributeValues"):
        options["ExpressionAttributeValues"] = shape["ExpressionAttributeValues"]
    return options


def _write_body(builder: _Builder, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Return one write (or transaction item) of the recorded shape under a new bench key."""
    table = body["TableName"]
    key = builder.key(table)
    params: dict[str, Any] = {"TableName": table, **_write_options(body)}
    if kind in ("PutItem", "Put"):
        params["Item"] = builder.shaped_item(table, body["Item"], key)
    else:
        params["Key"] = key
    return params


def _seeded(builder: _Builder, call: dict[str, Any], params: dict[str, Any]) -> None:
    """Write the item that the function's write returned under the params' key, as its state."""
    returned = call.get("returned_shapes") or []
    table = params["TableName"]
    schema = builder.schema(table)
    key_names = {schema.hash_name, schema.range_name}
    key = params.get("Key") or {
        name: value for name, value in params["Item"].items() if name in key_names
    }
    builder.write_items(table, [builder.shaped_item(table, returned[0], key)])


def _trial_write(
    builder: _Builder, call: dict[str, Any], method: str, make: Callable[[], dict[str, Any]]
) -> dict[str, Any] | None:
    """Return params from `make` that end as the function's call did, tried on new keys first.

    When a trial on new keys ends otherwise and the function's write returned its item, a
    second trial first writes an item of that shape under the key, as the state the write
    found. None when neither ends as the function's call did.
    """
    expected = call.get("error_code")
    if builder.ends_as(method, make(), expected):
        return make()
    # A transaction's response returns no items, so only a single write can be seeded.
    if not call.get("returned_shapes"):
        return None
    trial = make()
    _seeded(builder, call, trial)
    if not builder.ends_as(method, trial, expected):
        return None
    params = make()
    _seeded(builder, call, params)
    return params


def _shaped_single_write(method: str) -> ShapedReplay:
    def replay(builder: _Builder, call: dict[str, Any]) -> dict[str, Any] | None:
        return _trial_write(
            builder, call, method, lambda: _write_body(builder, call["operation"], call["shape"])
        )

    return replay


def _shaped_transact_write(builder: _Builder, call: dict[str, Any]) -> dict[str, Any] | None:
    def make() -> dict[str, Any]:
        return {
            "TransactItems": [
                {kind: _write_body(builder, kind, body) for kind, body in entry.items()}
                for entry in call["shape"]["TransactItems"]
            ]
        }

    return _trial_write(builder, call, "transact_write_items", make)


def _shaped_batch_write(builder: _Builder, call: dict[str, Any]) -> dict[str, Any] | None:
    request_items: dict[str, list[dict[str, Any]]] = {}
    for table, requests in call["shape"]["RequestItems"].items():
        request_items[table] = []
        for request in requests:
            ((kind, body),) = request.items()
            key = builder.key(table)
            if kind == "PutRequest":
                body = {"Item": builder.shaped_item(table, body["Item"], key)}
            else:
                body = {"Key": key}
            request_items[table].append({kind: body})
    return {"RequestItems": request_items}


def _shaped_transact_get(builder: _Builder, call: dict[str, Any]) -> dict[str, Any] | None:
    found = call.get("returned_shapes")
    entries = call["shape"]["TransactItems"]
    if found is None or len(found) != len(entries):
        return None
    items = []
    for entry, item_shape in zip(entries, found, strict=True):
        body = entry["Get"]
        table = body["TableName"]
        key = builder.key(table)
        if item_shape is not None:
            builder.write_items(table, [builder.shaped_item(table, item_shape, key)])
        get: dict[str, Any] = {"TableName": table, "Key": key}
        projection = _read_options(body)
        projection.pop("ConsistentRead", None)
        items.append({"Get": {**get, **projection}})
    return {"TransactItems": items}


# The DynamoDB operations that a call recorded with shapes is replayed from.
SHAPED_REPLAYS: dict[str, ShapedReplay] = {
    "GetItem": _shaped_get_item,
    "BatchGetItem": _shaped_batch_get,
    "Query": _shaped_query,
    "TransactGetItems": _shaped_transact_get,
    "PutItem": _shaped_single_write("put_item"),
    "UpdateItem": _shaped_single_write("update_item"),
    "DeleteItem": _shaped_single_write("delete_item"),
    "TransactWriteItems": _shaped_transact_write,
    "BatchWriteItem": _shaped_batch_write,
}


Replay = Callable[[_Builder, dict[str, Any], int], dict[str, Any]]

# (service, operation) → (boto3 method name, parameter builder, whether to pad to size).
REPLAYS: dict[tuple[str, str], tuple[str, Replay, bool]] = {
    ("secretsmanager", "GetSecretValue"): ("get_secret_value", _get_secret, False),
    ("kms", "GenerateDataKey"): ("generate_data_key", _generate_data_key, False),
    ("kms", "Decrypt"): ("decrypt", _decrypt, False),
    ("kms", "GetPublicKey"): ("get_public_key", _get_public_key, False),
    ("dynamodb", "BatchGetItem"): ("batch_get_item", _batch_get, False),
    ("dynamodb", "GetItem"): ("get_item", _get_item, False),
    ("dynamodb", "Query"): ("query", _query, False),
    ("dynamodb", "PutItem"): ("put_item", _put_item, True),
    ("dynamodb", "UpdateItem"): ("update_item", _update_item, True),
    ("dynamodb", "DeleteItem"): ("delete_item", _delete_item, False),
    ("dynamodb", "BatchWriteItem"): ("batch_write_item", _batch_write, True),
    ("dynamodb", "TransactGetItems"): ("transact_get_items", _transact_get, False),
    ("dynamodb", "TransactWriteItems"): ("transact_write_items", _transact_write, True),
    ("sqs", "SendMessage"): ("send_message", _send_message, True),
    ("sqs", "SendMessageBatch"): ("send_message_batch", _send_message_batch, True),
    ("events", "PutEvents"): ("put_events", _put_events, True),
    ("s3", "PutObject"): ("put_object", _put_object, True),
    ("s3", "GetObject"): ("get_object", _get_object, False),
    ("s3", "HeadObject"): ("head_object", _head_object, False),
    ("s3", "DeleteObjects"): ("delete_objects", _delete_objects, False),
    ("s3", "DeleteObject"): ("delete_object", _delete_object, False),
    ("s3", "ListObjectVersions"): ("list_object_versions", _list_object_versions, False),
    ("sesv2", "SendEmail"): ("send_email", _send_email, True),
    ("sesv2", "DeleteSuppressedDestination"): (
        "delete_suppressed_destination",
        _delete_suppressed,
        False,
    ),
    ("sesv2", "PutSuppressedDestination"): (
        "put_suppressed_destination",
        _put_suppressed,
        False,
    ),
}


def request_size(client: Any, operation: str, params: dict[str, Any]) -> int:
    """Return the request body size in bytes that client's protocol serializer makes of params."""
    from botocore.serialize import create_serializer

    from infra.bench.child import decode_bytes

    service_model = client.meta.service_model
    serializer = create_serializer(service_model.metadata["protocol"])
    request = serializer.serialize_to_request(
        decode_bytes(params), service_model.operation_model(operation)
    )
    body = request["body"]
    return len(body.encode("utf-8") if isinstance(body, str) else body)


def build_plan(
    calls: list[dict[str, Any]], targets: ReplayTargets, clients: Callable[[str], Any]
) -> list[dict[str, Any]]:
    """Return one replay call (service, boto3 method, parameters) per recorded call, in order.

    Every call gets new bench keys, so a plan can be built and replayed once per run.
    `clients(service)` returns a client whose serializer measures the padded request size, and
    which writes the items, objects and data keys that replayed reads find. Blob parameters
    are written as {BYTES_KEY: base64} for the JSON spec; `child.decode_bytes` turns them back
    into bytes. A step whose call failed names the error code in "error_code".
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
        shaped = _shaped_params(builder, call)
        if shaped is not None:
            plan.append(_step(call, method, shaped, shaped=True))
            continue
        params = replay(builder, call, 1)
        if padded:
            # Padding is ASCII, one body byte per character, so one correction brings a
            # smaller body up to the recorded size, within a byte per padded item. A body
            # that is already larger stays as it is.
            size = request_size(clients(call["service"]), call["operation"], params)
            missing = call["request_bytes"] - size
            if missing > 0:
                params = replay(builder, call, 1 + missing)
        plan.append(_step(call, method, params, shaped=False))
    return plan


def _shaped_params(builder: _Builder, call: dict[str, Any]) -> dict[str, Any] | None:
    if call["service"] != "dynamodb" or not call.get("shape"):
        return None
    shaped = SHAPED_REPLAYS.get(call["operation"])
    return shaped(builder, call) if shaped else None


def _step(
    call: dict[str, Any], method: str, params: dict[str, Any], *, shaped: bool
) -> dict[str, Any]:
    step: dict[str, Any] = {
        "service": call["service"],
        "method": method,
        "params": params,
        "shaped": shaped,
    }
    if call.get("error_code"):
        step["error_code"] = call["error_code"]
    return step
