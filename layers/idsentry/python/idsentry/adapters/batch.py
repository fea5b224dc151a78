"""DynamoDB batch reads and writes within the service's limits, retried until nothing is left.

DynamoDB takes at most 25 writes per `BatchWriteItem` and 100 keys per `BatchGetItem`, rejects
a request that names one key twice, and may return part of a request as `UnprocessedItems` or
`UnprocessedKeys` under load. moto accepts larger batches and never returns unprocessed parts,
so these limits are enforced here rather than trusted to the server, and the retries are tested
with botocore's Stubber.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from idsentry.adapters.dynamo import from_item, key, to_item

MAX_WRITES = 25
MAX_KEYS = 100
MAX_ATTEMPTS = 10
FIRST_BACKOFF_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 5.0

Key = tuple[str, str]


class BatchIncompleteError(RuntimeError):
    """DynamoDB still returned unprocessed items after every retry, so the caller should retry later."""


@dataclass
class BatchStats:
    """Requests sent, for the benchmarks' comparison with the batching lower bound."""

    write_requests: int = 0
    get_requests: int = 0
    retries: int = 0


@dataclass
class BatchTable:
    """Batch access to one table whose keys are `pk` and `sk`."""

    name: str
    client: Any
    sleep: Callable[[float], None] = time.sleep
    stats: BatchStats = field(default_factory=BatchStats)

    def put_many(self, items: Iterable[dict[str, Any]]) -> int:
        """Write the items, the last one winning when two share a key; returns how many were written."""
        unique: dict[Key, dict[str, Any]] = {}
        for item in items:
            unique[(item["pk"], item["sk"])] = item
        pending = [{"PutRequest": {"Item": _flat_item(item)}} for item in unique.values()]

        for start in range(0, len(pending), MAX_WRITES):
            self._write(pending[start : start + MAX_WRITES])
        return len(unique)

    def get_many(self, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
        """Read the items that exist among `keys` (duplicates asked once), by key."""
        unique = list(dict.fromkeys(keys))
        found: dict[Key, dict[str, Any]] = {}
        for start in range(0, len(unique), MAX_KEYS):
            chunk = unique[start : start + MAX_KEYS]
            for item in self._get([key(pk, sk) for pk, sk in chunk]):
                found[(item["pk"], item["sk"])] = item
        return found

    def _write(self, requests: list[dict[str, Any]]) -> None:
        attempt = 0
        while requests:
            self.stats.write_requests += 1
            response = self.client.batch_write_item(RequestItems={self.name: requests})
            requests = (response.get("UnprocessedItems") or {}).get(self.name, [])
            attempt = self._back_off(attempt, bool(requests))

    def _get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        attempt = 0
        while keys:
            self.stats.get_requests += 1
            response = self.client.batch_get_item(RequestItems={self.name: {"Keys": keys}})
            items.extend(
                from_item(item) for item in response.get("Responses", {}).get(self.name, [])
            )
            keys = ((response.get("UnprocessedKeys") or {}).get(self.name) or {}).get("Keys", [])
            attempt = self._back_off(attempt, bool(keys))
        return items

    def _back_off(self, attempt: int, more: bool) -> int:
        """Sleep before the next retry with exponential backoff and full jitter."""
        if not more:
            return attempt
        attempt = back_off(self.name, attempt, self.sleep)
        self.stats.retries += 1
        return attempt


def back_off(table: str, attempt: int, sleep: Callable[[float], None] | None = None) -> int:
    """Sleep before retrying unprocessed items (exponential backoff, full jitter); return the attempt.

    Raises BatchIncompleteError once MAX_ATTEMPTS requests left items unprocessed.
    """
    attempt += 1
    if attempt >= MAX_ATTEMPTS:
        raise BatchIncompleteError(
            f"{table}: unprocessed items remained after {MAX_ATTEMPTS} attempts"
        )
    ceiling = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
    (sleep or time.sleep)(random.uniform(0, ceiling))
    return attempt


def _flat_item(item: dict[str, Any]) -> dict[str, Any]:
    """Serialise an item of strings and integers directly, and anything else through boto3.

    Breach index entries are millions of such items; boto3's TypeSerializer was the largest
    single cost of writing them (make bench).
    """
    out: dict[str, Any] = {}
    for name, value in item.items():
        if isinstance(value, str):
            out[name] = {"S": value}
        elif isinstance(value, int) and not isinstance(value, bool):
            out[name] = {"N": str(value)}
        else:
            return to_item(item)
    return out
