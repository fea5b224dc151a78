"""In-memory stand-ins for the AWS side of breach intake, for the bench's million-row run.

On the bench machine moto server writes a few thousand items per second (the bench's local-stack
run shows the rate), so a million-row file through it would mostly measure moto. These classes replace only the service: the product's own adapters (`BatchTable`,
`JobQueue`, `EventPublisher`) run unchanged on top of fake clients, which enforce the
per-request limits that DynamoDB and SQS enforce and count every request. The main table,
which intake reaches with a few calls per chunk, is a small dict-backed `MainTable` stand-in.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from idsentry.adapters.dynamo import from_item
from idsentry.adapters.objects import IntakeObjects
from idsentry.adapters.table import ConditionFailedError, MainTable, Write

Key = tuple[str, str]

# Per-request limits from the DynamoDB and SQS API references.
MAX_WRITES = 25
MAX_KEYS = 100
MAX_ENTRIES = 10
NOT_EXISTS = "attribute_not_exists(pk)"
_SET_ASSIGNMENT = re.compile(r"^\s*(#?\w+)\s*=\s*(:\w+)\s*$")
_ADD_ASSIGNMENT = re.compile(r"^\s*(#?\w+)\s+(:\w+)\s*$")


def _validation_error(operation: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": "ValidationException", "Message": message}}, operation)


def _item_key(item: dict[str, Any]) -> Key:
    return (item["pk"]["S"], item["sk"]["S"])


@dataclass
class MemoryDynamoClient:
    """The `batch_write_item` and `batch_get_item` of a DynamoDB client, for one table.

    It rejects what DynamoDB rejects (more than 25 writes or 100 keys, a key named twice in
    one request, another table) with a `ValidationException`, and records the size of every
    request. With `store` False, written items are counted and dropped, so that a million-row
    run measures the product's memory and not this fake's.
    """

    table: str
    store: bool = True
    items: dict[Key, dict[str, Any]] = field(default_factory=dict)
    write_sizes: list[int] = field(default_factory=list)
    get_sizes: list[int] = field(default_factory=list)

    def _requests_of(self, operation: str, request_items: dict[str, Any]) -> Any:
        if list(request_items) != [self.table]:
            raise _validation_error(operation, f"expected requests for {self.table} only")
        return request_items[self.table]

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        """Store or count the puts, and return an empty `UnprocessedItems`."""
        requests = self._requests_of("BatchWriteItem", RequestItems)
        if not 1 <= len(requests) <= MAX_WRITES:
            raise _validation_error("BatchWriteItem", f"{len(requests)} writes, expected 1 to 25")
        keys = [_item_key(request["PutRequest"]["Item"]) for request in requests]
        if len(set(keys)) != len(keys):
            raise _validation_error("BatchWriteItem", "the request names one key twice")

        self.write_sizes.append(len(requests))
        if self.store:
            for key, request in zip(keys, requests, strict=True):
                self.items[key] = request["PutRequest"]["Item"]
        return {"UnprocessedItems": {}}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        """Return the stored items among the keys, with an empty `UnprocessedKeys`."""
        keys = [_item_key(key) for key in self._requests_of("BatchGetItem", RequestItems)["Keys"]]
        if not 1 <= len(keys) <= MAX_KEYS:
            raise _validation_error("BatchGetItem", f"{len(keys)} keys, expected 1 to 100")
        if len(set(keys)) != len(keys):
            raise _validation_error("BatchGetItem", "the request names one key twice")

        self.get_sizes.append(len(keys))
        found = [self.items[key] for key in keys if key in self.items]
        return {"Responses": {self.table: found}, "UnprocessedKeys": {}}


@dataclass
class MemorySqsClient:
    """The `send_message` and `send_message_batch` of an SQS client, which keeps the bodies in order."""

    bodies: list[str] = field(default_factory=list)
    single_requests: int = 0
    batch_sizes: list[int] = field(default_factory=list)

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:
        """Queue one message."""
        self.single_requests += 1
        self.bodies.append(MessageBody)
        return {"MessageId": str(len(self.bodies))}

    def send_message_batch(
        self,
        QueueUrl: str,
        Entries: Sequence[dict[str, Any]],
    ) -> dict[str, Any]:
        """Queue 1 to 10 messages, and raise the error codes of SQS for no entries or more than 10."""
        if not Entries:
            raise ClientError(
                {"Error": {"Code": "EmptyBatchRequest", "Message": "no entries"}},
                "SendMessageBatch",
            )
        if len(Entries) > MAX_ENTRIES:
            raise ClientError(
                {"Error": {"Code": "TooManyEntriesInBatchRequest", "Message": "over 10 entries"}},
                "SendMessageBatch",
            )
        self.batch_sizes.append(len(Entries))
        self.bodies.extend(entry["MessageBody"] for entry in Entries)
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def pop(self) -> str | None:
        """Remove and return the oldest queued body, or None when the queue is empty."""
        return self.bodies.pop(0) if self.bodies else None


@dataclass
class MemoryEventsClient:
    """The `put_events` of an EventBridge client, counting requests and entries."""

    entries: int = 0
    requests: int = 0

    def put_events(self, Entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Accept every entry."""
        self.requests += 1
        self.entries += len(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "bench"} for _ in Entries]}


class MemoryMainTable(MainTable):
    """The part of `MainTable` that intake uses, backed by a dict and counting every call.

    Only the expressions that intake writes are evaluated: `SET a = :x, …` and `ADD a :x, …`
    updates without conditions, and puts whose condition is `attribute_not_exists(pk)` or
    that create a new key. Anything else raises NotImplementedError, so that a change in the
    product's writes stops the bench instead of being measured wrongly.
    """

    def __init__(self, name: str = "bench-main") -> None:
        super().__init__(name)
        self.items: dict[Key, dict[str, Any]] = {}
        self.calls: dict[str, int] = {}

    def client(self) -> Any:
        """Raise NotImplementedError, because the methods that intake calls need no client here."""
        raise NotImplementedError("the in-memory main table has no DynamoDB client")

    def _count(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """Return a copy of one item, or None."""
        self._count("GetItem")
        item = self.items.get((pk, sk))
        return dict(item) if item is not None else None

    def get_many(self, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
        """Return copies of the items that exist among at most 100 distinct keys."""
        self._count("BatchGetItem")
        unique = list(dict.fromkeys(keys))
        if len(unique) > MAX_KEYS:
            raise ValueError("BatchGetItem reads at most 100 keys")
        return {key: dict(self.items[key]) for key in unique if key in self.items}

    def put(
        self,
        item: dict[str, Any],
        condition: str | None = None,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        """Store the item, or return False when the key exists and the condition requires that it does not."""
        self._count("PutItem")
        key = (item["pk"], item["sk"])
        if condition is not None and key in self.items:
            if condition != NOT_EXISTS:
                raise NotImplementedError(f"put condition on an existing item: {condition}")
            return False
        self.items[key] = dict(item)
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
        """Apply a SET or ADD update and return the new item."""
        self._count("UpdateItem")
        if condition is not None:
            raise NotImplementedError(f"update condition: {condition}")
        item = self.items.setdefault((pk, sk), {"pk": pk, "sk": sk})
        apply_update(item, expression, values or {}, names or {})
        return dict(item)

    def transact(self, writes: Sequence[Write]) -> None:
        """Apply Put and Update writes all or nothing, checking `attribute_not_exists(pk)`."""
        self._count("TransactWriteItems")
        for write in writes:
            condition = write.body.get("ConditionExpression")
            if condition is None:
                continue
            if write.operation != "Put" or condition != NOT_EXISTS:
                raise NotImplementedError(f"{write.operation} condition: {condition}")
            if _item_key(write.body["Item"]) in self.items:
                raise ConditionFailedError(write.name)

        for write in writes:
            if write.operation == "Put":
                item = from_item(write.body["Item"])
                self.items[(item["pk"], item["sk"])] = item
            elif write.operation == "Update":
                key = _item_key(write.body["Key"])
                item = self.items.setdefault(key, {"pk": key[0], "sk": key[1]})
                names = write.body.get("ExpressionAttributeNames", {})
                apply_update(item, write.body["UpdateExpression"], write.values, names)
            else:
                raise NotImplementedError(f"transaction write {write.operation}")


def apply_update(
    item: dict[str, Any], expression: str, values: dict[str, Any], names: dict[str, str]
) -> None:
    """Apply `SET a = :x, …` and `ADD a :x, …` clauses to the item in place."""
    clauses = re.split(r"\b(SET|ADD)\b", expression)
    if clauses[0].strip():
        raise NotImplementedError(f"update expression: {expression}")
    for action, body in zip(clauses[1::2], clauses[2::2], strict=True):
        pattern = _SET_ASSIGNMENT if action == "SET" else _ADD_ASSIGNMENT
        for assignment in body.split(","):
            match = pattern.match(assignment)
            if match is None:
                raise NotImplementedError(f"update expression: {expression}")
            name = names.get(match.group(1), match.group(1))
            value = values[match.group(2)]
            item[name] = value if action == "SET" else item.get(name, 0) + value


class _RangeReader:
    """A binary stream of bytes [start, end) of a file, like the body of a ranged S3 GET."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self._left = length

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            return b""
        count = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(count)
        self._left -= len(data)
        return data


class LocalFileObjects(IntakeObjects):
    """The `IntakeObjects` interface over local files named by object key, streamed like ranged GETs.

    Deletion is recorded, not done, so that a generated file can serve the next bench run.
    """

    def __init__(self, files: dict[str, Path]) -> None:
        super().__init__("bench-intake")
        self.files = files
        self.deleted: list[str] = []
        self.requests: dict[str, int] = {}

    def _s3(self) -> Any:
        raise NotImplementedError("local intake files have no S3 client")

    def _path(self, key: str) -> Path:
        if key not in self.files:
            raise FileNotFoundError(f"no local file for object key {key}")
        return self.files[key]

    def _count(self, operation: str) -> None:
        self.requests[operation] = self.requests.get(operation, 0) + 1

    def size(self, key: str) -> int:
        """Return the file's size in bytes."""
        self._count("HeadObject")
        return self._path(key).stat().st_size

    def etag(self, key: str) -> str:
        """Return an MD5 of the file's content, as S3 does for a single-part upload."""
        self._count("HeadObject")
        return hashlib.md5(self._path(key).read_bytes(), usedforsecurity=False).hexdigest()

    def read(self, key: str) -> bytes:
        """Read a whole (small) file."""
        self._count("GetObject")
        return self._path(key).read_bytes()

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Read bytes [start, end) of the file."""
        self._count("GetObject")
        with self._path(key).open("rb") as stream:
            stream.seek(start)
            return stream.read(max(0, end - start))

    @contextmanager
    def open_range(self, key: str, start: int, end: int) -> Iterator[Any]:
        """Open bytes [start, end) of the file as a stream with `read(size)`."""
        self._count("GetObject")
        if end <= start:
            yield io.BytesIO(b"")
            return
        with self._path(key).open("rb") as stream:
            stream.seek(start)
            yield _RangeReader(stream, end - start)

    def delete(self, keys: list[str]) -> None:
        """Record the keys that intake deletes when a job is done."""
        self._count("DeleteObjects")
        self.deleted.extend(keys)
