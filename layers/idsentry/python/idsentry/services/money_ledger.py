"""The money ledger of one UTC day, read a page at a time for finance.

Ledger items are indexed by day in gsi1 (`gsi1pk` `LEDGER#{yyyymmdd}`, `gsi1sk`
`{created}#{kind}#{stripe object id}`). The index projects keys only, so a page is one Query
of the index and one BatchGetItem of the items. Items hold amounts in Stripe's minor units,
Stripe ids and the owner partition (a subscriber id, or a pseudonym once the account is
deleted), never personal data.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from idsentry import jsontext
from idsentry.adapters.dynamo import to_item
from idsentry.adapters.table import MainTable

DEFAULT_PAGE_SIZE = 100
# BatchGetItem reads at most 100 keys, so one page is at most one batch.
MAX_PAGE_SIZE = 100
INDEX_NAME = "gsi1"
CURSOR_FIELDS = ("gsi1pk", "gsi1sk", "pk", "sk")
LEDGER_FIELDS = (
    "kind",
    "amount",
    "currency",
    "created",
    "settlement_amount",
    "settlement_currency",
    "fee_amount",
    "stripe_ids",
    "archived_at",
)


class LedgerInputError(ValueError):
    """A ledger request parameter is invalid; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class LedgerPageRequest:
    """One page of a day's ledger: the UTC day, the page size and where the last page ended."""

    day: str
    limit: int = DEFAULT_PAGE_SIZE
    start_after: dict[str, str] | None = None


def parse_request(day: str | None, query: Mapping[str, str]) -> LedgerPageRequest:
    """Validate the `day` path parameter and the `limit` and `cursor` query parameters."""
    if not day or len(day) != 8 or not day.isdigit():
        raise LedgerInputError("day", "invalid day: expected a UTC date as YYYYMMDD, e.g. 20261204")
    try:
        datetime.strptime(day, "%Y%m%d")
    except ValueError as exc:
        raise LedgerInputError("day", f"invalid day: {day} is not a calendar date") from exc

    limit = DEFAULT_PAGE_SIZE
    if "limit" in query:
        text = query["limit"]
        # isdigit() alone accepts "²", and int() rejects that and numbers over 4,300 digits.
        digits = text.isascii() and text.isdigit() and len(text) <= 4
        if not digits or not 1 <= int(text) <= MAX_PAGE_SIZE:
            raise LedgerInputError(
                "limit", f"invalid limit: expected a whole number from 1 to {MAX_PAGE_SIZE}"
            )
        limit = int(text)

    start_after = None
    if "cursor" in query:
        start_after = _decode_cursor(query["cursor"], day)
    return LedgerPageRequest(day=day, limit=limit, start_after=start_after)


def ledger_page(table: MainTable, request: LedgerPageRequest) -> dict[str, Any]:
    """Return one page of the day's ledger items in creation order, with the next page's cursor."""
    query: dict[str, Any] = {
        "TableName": table.name,
        "IndexName": INDEX_NAME,
        "KeyConditionExpression": "gsi1pk = :pk",
        "ExpressionAttributeValues": to_item({":pk": f"LEDGER#{request.day}"}),
        "Limit": request.limit,
    }
    if request.start_after is not None:
        query["ExclusiveStartKey"] = to_item(request.start_after)
    response = table.client().query(**query)

    keys = [(item["pk"]["S"], item["sk"]["S"]) for item in response.get("Items", [])]
    found = table.get_many(keys) if keys else {}
    items = []
    for pk, sk in keys:
        record = found.get((pk, sk))
        # The index lags the table, so a key may point at an item that has since been moved.
        if record is None or not str(record.get("sk", "")).startswith("LEDGER#"):
            continue
        owner_kind, _, owner_id = pk.partition("#")
        entry = {name: record[name] for name in LEDGER_FIELDS if name in record}
        entry["owner"] = {"kind": owner_kind.lower(), "id": owner_id}
        items.append(entry)

    last_key = response.get("LastEvaluatedKey")
    return {
        "day": request.day,
        "items": items,
        "cursor": _encode_cursor(last_key) if last_key else None,
    }


def _encode_cursor(last_key: Mapping[str, Any]) -> str:
    values = [str(last_key[name]["S"]) for name in CURSOR_FIELDS]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, day: str) -> dict[str, str]:
    invalid = LedgerInputError("cursor", "invalid cursor: pass the cursor of the previous page")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = jsontext.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise invalid from exc
    if (
        not isinstance(values, list)
        or len(values) != len(CURSOR_FIELDS)
        or not all(isinstance(value, str) for value in values)
        or values[0] != f"LEDGER#{day}"
    ):
        raise invalid
    return dict(zip(CURSOR_FIELDS, values, strict=True))
