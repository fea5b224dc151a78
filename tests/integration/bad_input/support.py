"""Helpers of the bad-input scenarios: request events, stack snapshots, response checks, tallies."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from infra.chaos.results import ScenarioResult, record
from infra.local.service import LocalService

# Any CJK unified ideograph: a zh-CN message has at least one, an English message none.
_CJK = re.compile(r"[\u4e00-\u9fff]")
_MESSAGE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
ADMIN_ARN = "arn:aws:iam::123456789012:user/bad-input-tests"


class ShortRepr:
    """A dataclass mixin whose repr cuts long values, so a failing example prints readably."""

    def __repr__(self) -> str:
        parts = []
        for item in fields(self):  # type: ignore[arg-type]
            text = repr(getattr(self, item.name))
            if len(text) > 160:
                text = f"{text[:120]}…({len(text)} characters)"
            parts.append(f"{item.name}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"


def http_event(
    route_key: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    path_parameters: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    raw_query: str = "",
    source_ip: str = "127.0.0.1",
    as_base64: bool = False,
    caller_arn: str | None = None,
) -> dict[str, Any]:
    """Build an API Gateway HTTP API (payload 2.0) event as the local HTTP API builds it.

    A body that is not UTF-8 is always sent base64-encoded, as API Gateway does for bytes.
    """
    method = route_key.split(" ", 1)[0]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": dict(headers or {}),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": "bad-input-tests",
            },
            "requestId": "bad-input",
            "routeKey": route_key,
            "stage": "$default",
            "time": "05/Dec/2026:08:00:00 +0000",
            "timeEpoch": 1796457600000,
        },
        "isBase64Encoded": False,
    }
    if path_parameters is not None:
        event["pathParameters"] = dict(path_parameters)
    if query is not None:
        event["queryStringParameters"] = dict(query)
    if caller_arn is not None:
        event["requestContext"]["authorizer"] = {"iam": {"userArn": caller_arn}}
    if body is not None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            as_base64 = True
        if as_base64:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


def take_message(
    service: LocalService, queue_url: str, wanted: Callable[[str], bool]
) -> dict[str, Any]:
    """Receive messages until one whose body `wanted` accepts; delete every message received.

    The bad-input scenarios deliver one message to one function themselves, as the runtime's
    poller would, instead of draining every queue of the stack.
    """
    assert service.stack is not None
    sqs = service.stack.runtime.client("sqs")
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        assert messages, f"no expected message on {queue_url}"
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            if wanted(message["Body"]):
                return message


def sqs_event(service: LocalService, queue_url: str, message: dict[str, Any]) -> dict[str, Any]:
    """Build the SQS event that Lambda's event source mapping sends for one message."""
    assert service.stack is not None
    sqs = service.stack.runtime.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def language_of(text: str) -> str:
    """Return "zh-CN" for text with Chinese characters and "en" for text without."""
    return "zh-CN" if _CJK.search(text) else "en"


def response_json(response: Mapping[str, Any]) -> Any:
    """Decode a JSON response body, failing the test with the body when it is not JSON."""
    body = response.get("body") or ""
    try:
        return json.loads(body)
    except ValueError:
        raise AssertionError(f"response body is not JSON: {body[:200]!r}") from None


def check_subscriber_rejection(response: Mapping[str, Any], locale: str) -> list[str]:
    """Check a subscriber route's 4xx shape; return the fields a 422 names.

    A 422 lists every invalid field, each with a code and a message in `locale`. Other 4xx
    (not found, limits, conflicts) carry a code and a message in `locale`.
    """
    status = response["statusCode"]
    payload = response_json(response)
    error = payload["error"]
    assert isinstance(error["code"], str) and error["code"], payload
    assert language_of(error["message"]) == locale, (locale, error["message"])
    if status != 422:
        return []
    fields = error.get("fields")
    assert isinstance(fields, list) and fields, f"a 422 without fields: {payload}"
    for problem in fields:
        assert isinstance(problem["field"], str) and problem["field"], problem
        assert isinstance(problem["code"], str) and problem["code"], problem
        assert language_of(problem["message"]) == locale, (locale, problem)
    return [str(problem["field"]) for problem in fields]


def check_field_rejection(response: Mapping[str, Any]) -> str:
    """Check a staff or webhook route's 400 shape, which names one field; return the field."""
    payload = response_json(response)
    error = payload["error"]
    assert isinstance(error["code"], str) and error["code"], payload
    assert isinstance(error.get("field"), str) and error["field"], f"no field named: {payload}"
    return str(error["field"])


@dataclass(frozen=True)
class StackState:
    """The stored state of the local stack at one moment.

    `items` maps (table, key) to the item, `messages` a queue URL to its message count and
    `objects` (bucket, key) to the object's ETag. Queues and buckets not captured are absent.
    """

    items: dict[tuple[str, str], dict[str, Any]]
    messages: dict[str, int]
    objects: dict[tuple[str, str], str]


@dataclass
class StateChange:
    """What changed between two states: items added, changed and removed, messages, objects."""

    added: dict[tuple[str, str], dict[str, Any]]
    changed: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]]
    removed: list[tuple[str, str]]
    messages: dict[str, int]
    objects: dict[tuple[str, str], str | None]

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed or self.messages or self.objects)

    def added_in(self, table: str) -> dict[str, dict[str, Any]]:
        """Return the items added to one table, by key."""
        return {key: item for (name, key), item in self.added.items() if name == table}

    def describe(self) -> str:
        """Summarize the change with keys and counts only (items hold ciphertext, never raw data)."""
        return (
            f"added={sorted(self.added)} changed={sorted(self.changed)} removed={self.removed} "
            f"messages={self.messages} objects={sorted(self.objects)}"
        )


class StackProbe:
    """Read every table, chosen queues and buckets of the local stack, to compare states."""

    def __init__(self, service: LocalService) -> None:
        assert service.stack is not None
        runtime = service.stack.runtime
        self.environment = runtime.environment
        self.dynamodb = runtime.client("dynamodb")
        self.sqs = runtime.client("sqs")
        self.s3 = runtime.client("s3")
        self.tables = {
            name: [
                key["AttributeName"]
                for key in self.dynamodb.describe_table(TableName=name)["Table"]["KeySchema"]
            ]
            for name in self.dynamodb.list_tables()["TableNames"]
        }
        self.queues = sorted(self.sqs.list_queues().get("QueueUrls", []))
        self.buckets = sorted(bucket["Name"] for bucket in self.s3.list_buckets()["Buckets"])

    def state(
        self,
        queues: Iterable[str] | None = None,
        buckets: Iterable[str] | None = None,
        tables: Iterable[str] | None = None,
    ) -> StackState:
        """Capture the given tables, queues and buckets (default: all of them)."""
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for table in self.tables if tables is None else tables:
            key_names = self.tables[table]
            for item in self._scan(table):
                key = "|".join(str(next(iter(item[name].values()))) for name in key_names)
                items[(table, key)] = item
        messages = {url: self._message_count(url) for url in queues or self.queues}
        objects = {
            (bucket, key): etag
            for bucket in (self.buckets if buckets is None else buckets)
            for key, etag in self._objects(bucket)
        }
        return StackState(items, messages, objects)

    def clear_tables(self, tables: Iterable[str] | None = None) -> None:
        """Delete every item of the given tables (default: all), to keep snapshots small."""
        for table in self.tables if tables is None else tables:
            key_names = self.tables[table]
            for item in self._scan(table):
                key = {name: item[name] for name in key_names}
                self.dynamodb.delete_item(TableName=table, Key=key)

    def _scan(self, table: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = self.dynamodb.scan(**request)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _message_count(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=list(_MESSAGE_COUNTS)
        )["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in _MESSAGE_COUNTS)

    def _objects(self, bucket: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            found.extend((entry["Key"], entry["ETag"]) for entry in page.get("Contents", []))
        return found


def compare(before: StackState, after: StackState) -> StateChange:
    """Return what changed from `before` to `after` (queues and buckets captured in both)."""
    added = {key: item for key, item in after.items.items() if key not in before.items}
    changed = {
        key: (before.items[key], item)
        for key, item in after.items.items()
        if key in before.items and before.items[key] != item
    }
    removed = [key for key in before.items if key not in after.items]
    messages = {
        url: after.messages[url] - count
        for url, count in before.messages.items()
        if url in after.messages and after.messages[url] != count
    }
    objects: dict[tuple[str, str], str | None] = {
        key: etag for key, etag in after.objects.items() if before.objects.get(key) != etag
    }
    objects.update({key: None for key in before.objects if key not in after.objects})
    return StateChange(added, changed, removed, messages, objects)


@dataclass
class Tally:
    """What one scenario tried and found, counted per example that ran.

    `stray_writes` counts items, messages and objects that a request's outcome does not
    explain: any write of a rejected request, or one outside an accepted request's expected set.
    """

    scenario: str
    title: str
    tried: int = 0
    accepted: int = 0
    rejected: int = 0
    server_errors: int = 0
    stray_writes: int = 0
    lost: int = 0
    duplicated: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    extra: Counter[str] = field(default_factory=Counter)

    def count(self, status: int) -> None:
        """Count one example by the status it got."""
        self.tried += 1
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors += 1
        elif status >= 400:
            self.rejected += 1
        else:
            self.accepted += 1

    def record(self) -> None:
        """Write the scenario's figures for docs/reliability.md."""
        details: dict[str, int | str] = {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "500s": self.server_errors,
            "stray_writes": self.stray_writes,
        }
        details.update({f"status_{status}": n for status, n in sorted(self.statuses.items())})
        details.update(sorted(self.extra.items()))
        record(
            ScenarioResult(
                scenario=self.scenario,
                area="input",
                title=self.title,
                inputs_tried=self.tried,
                lost=self.lost,
                duplicated=self.duplicated,
                details=details,
            )
        )

    def check_totals(self) -> None:
        """Assert the scenario's end figures: no 500, no partial write, nothing lost or doubled."""
        assert self.tried > 0
        assert self.server_errors == 0
        assert self.stray_writes == 0
        assert self.lost == 0
        assert self.duplicated == 0
