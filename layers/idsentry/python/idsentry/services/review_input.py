"""Input of the analyst review routes: breach names, list pages, cursors and decisions."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from idsentry import jsontext
from idsentry.models.breach import _BREACH_NAME_PATTERN
from idsentry.services.alerts import REVIEW_INDEX_KEY

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 200
# Keeps one request's work (transactions and PutEvents calls) well inside the function's
# 15-second timeout. A whole-breach decision with more pending alerts reports
# `more_pending` and decides the rest when repeated.
MAX_ALERTS_PER_DECISION: Final = 500
MAX_REASON_LENGTH: Final = 1000
ALERT_ID_LENGTH: Final = len("alt_") + 26

Decision = Literal["confirm", "dismiss"]
DECISION_FIELDS: Final = frozenset({"decision", "reason", "alert_ids"})
CURSOR_FIELDS: Final = ("gsi1pk", "gsi1sk", "pk", "sk")


class ReviewInputError(ValueError):
    """A review request with an invalid field, named by `field`, and the reason in the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PageRequest:
    """One page of the review queue: its size and the index key to continue after."""

    limit: int = DEFAULT_PAGE_SIZE
    start_after: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DecisionRequest:
    """A validated decision: confirm or dismiss, why, and which alerts (None: the whole breach)."""

    decision: Decision
    reason: str
    alert_ids: tuple[str, ...] | None = None


def parse_breach_name(value: str | None) -> str:
    """Return a breach Name from the path, or raise ReviewInputError naming `breach`."""
    if not value or not _BREACH_NAME_PATTERN.fullmatch(value):
        raise ReviewInputError(
            "breach",
            "invalid breach: expected a catalogue Name of letters, digits, '.', '_' and '-'",
        )
    return value


def parse_page(query: Mapping[str, str], breach_name: str | None = None) -> PageRequest:
    """Validate the `limit` and `cursor` query parameters of a review list."""
    limit = DEFAULT_PAGE_SIZE
    if "limit" in query:
        text = query["limit"]
        # isdigit() alone accepts "²", and int() rejects that and numbers over 4,300 digits.
        digits = text.isascii() and text.isdigit() and len(text) <= 4
        if not digits or not 1 <= int(text) <= MAX_PAGE_SIZE:
            raise ReviewInputError(
                "limit", f"invalid limit: expected a whole number from 1 to {MAX_PAGE_SIZE}"
            )
        limit = int(text)

    start_after = None
    if "cursor" in query:
        start_after = decode_cursor(query["cursor"], breach_name)
    return PageRequest(limit=limit, start_after=start_after)


def parse_decision(body: Mapping[str, Any]) -> DecisionRequest:
    """Validate a decision body: `decision`, `reason` and the optional `alert_ids`.

    Unknown fields are rejected, because a misspelt `alert_ids` would otherwise turn a
    decision on single exposures into one on the whole breach.
    """
    unknown = sorted(set(body) - DECISION_FIELDS)
    if unknown:
        raise ReviewInputError(
            unknown[0], f"unknown field {unknown[0]!r}: expected decision, reason and alert_ids"
        )

    decision = body.get("decision")
    if decision != "confirm" and decision != "dismiss":
        raise ReviewInputError("decision", "invalid decision: expected 'confirm' or 'dismiss'")

    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ReviewInputError("reason", "invalid reason: expected text")
    if reason is None or not reason.strip():
        raise ReviewInputError(
            "reason", "missing reason: explain why these exposures are confirmed or dismissed"
        )
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise ReviewInputError("reason", f"invalid reason: at most {MAX_REASON_LENGTH} characters")

    alert_ids = None
    if body.get("alert_ids") is not None:
        alert_ids = _parse_alert_ids(body["alert_ids"])
    return DecisionRequest(decision=decision, reason=reason, alert_ids=alert_ids)


def _parse_alert_ids(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ReviewInputError(
            "alert_ids",
            "invalid alert_ids: expected a non-empty list of alert ids; "
            "leave the field out to decide the whole breach",
        )
    if len(value) > MAX_ALERTS_PER_DECISION:
        raise ReviewInputError(
            "alert_ids", f"invalid alert_ids: at most {MAX_ALERTS_PER_DECISION} per request"
        )
    for alert_id in value:
        if not _is_alert_id(alert_id):
            raise ReviewInputError(
                "alert_ids", "invalid alert_ids: each must be an alert id such as alt_3f9c…"
            )
    return tuple(dict.fromkeys(value))


def _is_alert_id(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != ALERT_ID_LENGTH:
        return False
    prefix, _, digest = value.partition("_")
    return prefix == "alt" and all(char in "0123456789abcdef" for char in digest)


def encode_cursor(last_key: Mapping[str, Any]) -> str:
    """Encode a Query's LastEvaluatedKey (gsi1 keys and table keys) as an opaque cursor."""
    values = [str(last_key[name]["S"]) for name in CURSOR_FIELDS]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, breach_name: str | None = None) -> dict[str, str]:
    """Decode a cursor from `encode_cursor`, or raise ReviewInputError naming `cursor`.

    A cursor of the review queue only continues that queue, and one breach's cursor only that
    breach's list, so that a cursor cannot page through another index partition.
    """
    problem = ReviewInputError("cursor", "invalid cursor: pass next_cursor of the previous page")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = jsontext.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        raise problem from None
    if not isinstance(values, list) or len(values) != len(CURSOR_FIELDS):
        raise problem
    if not all(isinstance(value, str) for value in values):
        raise problem

    key = dict(zip(CURSOR_FIELDS, values, strict=True))
    if key["gsi1pk"] != REVIEW_INDEX_KEY:
        raise problem
    if breach_name is not None and not key["gsi1sk"].startswith(f"{breach_name}#"):
        raise problem
    return key
