"""Reads of the breach index: the breaches a fingerprint appears in."""

from __future__ import annotations

from typing import Any


class BreachIndexReader:
    """Queries the breach index table, whose items are (fingerprint key, breach name)."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.name = table_name
        self._client = client
        self.queries = 0

    def _dynamodb(self) -> Any:
        if self._client is None:
            from idsentry.adapters.aws import client

            self._client = client("dynamodb")
        return self._client

    def breaches_of(self, fingerprint_key: str) -> list[str]:
        """Return the names of the breaches that hold `{kind}#{pepper_version}#{fingerprint}`."""
        names: list[str] = []
        request: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "pk = :key",
            "ExpressionAttributeValues": {":key": {"S": fingerprint_key}},
            "ProjectionExpression": "sk",
        }
        while True:
            self.queries += 1
            page = self._dynamodb().query(**request)
            names.extend(item["sk"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return names
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
