"""Per-owner data keys: generated and wrapped by KMS, stored in the key table, cached unwrapped."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from idsentry.adapters.table import Write


class DataKeyNotFoundError(LookupError):
    """The owner has no data key: never created, or deleted so its ciphertext is unreadable."""


class DataKeyStore:
    """AES-256 data keys, one per owner id, wrapped under the service's KMS key.

    The owner id is the KMS encryption context, so a wrapped key copied to another owner's
    item cannot be unwrapped. Unwrapped keys stay in memory for `ttl_seconds` at most.
    """

    def __init__(
        self,
        table_name: str,
        kms_key_arn: str,
        dynamodb: Any = None,
        kms: Any = None,
        ttl_seconds: float = 300.0,
        max_cached: int = 256,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table_name
        self._kms_key = kms_key_arn
        self._dynamodb = dynamodb
        self._kms = kms
        self._ttl = ttl_seconds
        self._max_cached = max_cached
        self._monotonic = monotonic
        self._cache: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def _clients(self) -> tuple[Any, Any]:
        if self._dynamodb is None or self._kms is None:
            from idsentry.adapters.aws import client

            self._dynamodb = self._dynamodb or client("dynamodb")
            self._kms = self._kms or client("kms")
        return self._dynamodb, self._kms

    def prepare(self, owner_id: str, expires_at: int | None = None) -> tuple[bytes, Write]:
        """Generate a data key for `owner_id` and return it with the write that stores it wrapped.

        The caller puts the write into its own transaction, so the key exists exactly when the
        data it encrypts does. Call `forget` if that transaction fails.
        """
        _, kms = self._clients()
        generated = kms.generate_data_key(
            KeyId=self._kms_key,
            KeySpec="AES_256",
            EncryptionContext={"owner_id": owner_id},
        )
        item: dict[str, Any] = {
            "owner_id": {"S": owner_id},
            "wrapped_key": {"B": generated["CiphertextBlob"]},
        }
        if expires_at is not None:
            item["expires_at"] = {"N": str(expires_at)}
        write = Write(
            name=f"data_key:{owner_id}",
            operation="Put",
            body={"Item": item, "ConditionExpression": "attribute_not_exists(owner_id)"},
            table=self._table,
        )

        key: bytes = generated["Plaintext"]
        self._remember(owner_id, key)
        return key, write

    def delete_write(self, owner_id: str) -> Write:
        """Return a transaction write that deletes the owner's wrapped key."""
        return Write(
            name=f"data_key_delete:{owner_id}",
            operation="Delete",
            body={"Key": {"owner_id": {"S": owner_id}}},
            table=self._table,
        )

    def forget(self, owner_id: str) -> None:
        """Drop an unwrapped key from the cache (after a transaction that stored it failed)."""
        self._cache.pop(owner_id, None)

    def get(self, owner_id: str) -> bytes:
        """Return the owner's unwrapped data key; raises DataKeyNotFoundError if it is gone."""
        cached = self._cache.get(owner_id)
        if cached is not None and self._monotonic() - cached[0] < self._ttl:
            self._cache.move_to_end(owner_id)
            return cached[1]

        dynamodb, kms = self._clients()
        response = dynamodb.get_item(
            TableName=self._table, Key={"owner_id": {"S": owner_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            raise DataKeyNotFoundError(owner_id)
        unwrapped = kms.decrypt(
            CiphertextBlob=item["wrapped_key"]["B"],
            KeyId=self._kms_key,
            EncryptionContext={"owner_id": owner_id},
        )

        key: bytes = unwrapped["Plaintext"]
        self._remember(owner_id, key)
        return key

    def delete(self, owner_id: str) -> None:
        """Delete the owner's wrapped key, making all of their ciphertext unreadable. Idempotent."""
        self._cache.pop(owner_id, None)
        dynamodb, _ = self._clients()
        try:
            dynamodb.delete_item(TableName=self._table, Key={"owner_id": {"S": owner_id}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise

    def _remember(self, owner_id: str, key: bytes) -> None:
        self._cache[owner_id] = (self._monotonic(), key)
        self._cache.move_to_end(owner_id)
        while len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
