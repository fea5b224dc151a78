"""Unit tests of analyst review's pure parts: input checks, cursors, evidence, grouping, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from idsentry.models.breach import Breach
from idsentry.models.events import AlertConfirmed, AlertDismissed
from idsentry.services import review, review_input, review_outbox
from idsentry.services.alerts import alert_id_for
from idsentry.services.audit import AuditRecord, format_instant

pytestmark = pytest.mark.unit

ALERT_ID = alert_id_for("sbr_01M91B4ABG36G2R8D4PV2HM6CG", "ExampleShop2026")
OTHER_ALERT_ID = alert_id_for("sbr_01M91B4ABG36G2R8D4PV2HM6CH", "ExampleShop2026")
REASON = "Only a shared mobile number matched, in an unverified breach."


def review_key(breach: str, subscriber: str) -> dict[str, Any]:
    """Return a LastEvaluatedKey of the REVIEW index in DynamoDB's attribute-value shape."""
    return {
        "gsi1pk": {"S": "REVIEW"},
        "gsi1sk": {"S": f"{breach}#{subscriber}"},
        "pk": {"S": f"SUB#{subscriber}"},
        "sk": {"S": f"ALERT#{breach}"},
    }


# ---------------------------------------------------------------------------- decisions


def test_decision_whole_breach() -> None:
    parsed = review_input.parse_decision({"decision": "confirm", "reason": f"  {REASON} "})

    assert parsed.decision == "confirm"
    assert parsed.reason == REASON
    assert parsed.alert_ids is None


def test_decision_single_exposures_deduplicated() -> None:
    parsed = review_input.parse_decision(
        {"decision": "dismiss", "reason": REASON, "alert_ids": [ALERT_ID, OTHER_ALERT_ID, ALERT_ID]}
    )

    assert parsed.alert_ids == (ALERT_ID, OTHER_ALERT_ID)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": REASON}, "decision"),
        ({"decision": "approve", "reason": REASON}, "decision"),
        ({"decision": ["confirm"], "reason": REASON}, "decision"),
        ({"decision": "confirm"}, "reason"),
        ({"decision": "confirm", "reason": "   "}, "reason"),
        ({"decision": "confirm", "reason": 42}, "reason"),
        ({"decision": "confirm", "reason": "x" * 1001}, "reason"),
        ({"decision": "confirm", "reason": REASON, "alert_ids": []}, "alert_ids"),
        ({"decision": "confirm", "reason": REASON, "alert_ids": ALERT_ID}, "alert_ids"),
        ({"decision": "confirm", "reason": REASON, "alert_ids": ["alt_nothex"]}, "alert_ids"),
        ({"decision": "confirm", "reason": REASON, "alert_ids": [ALERT_ID.upper()]}, "alert_ids"),
        ({"decision": "confirm", "reason": REASON, "alert_ids": [7]}, "alert_ids"),
        ({"decision": "confirm", "reason": REASON, "alertIds": [ALERT_ID]}, "alertIds"),
    ],
)
def test_decision_invalid_field_named(body: dict[str, Any], field: str) -> None:
    with pytest.raises(review_input.ReviewInputError) as caught:
        review_input.parse_decision(body)

    assert caught.value.field == field


def test_decision_too_many_alert_ids() -> None:
    alert_ids = [alert_id_for(f"sbr_{index}", "ExampleShop2026") for index in range(501)]

    with pytest.raises(review_input.ReviewInputError) as caught:
        review_input.parse_decision(
            {"decision": "confirm", "reason": REASON, "alert_ids": alert_ids}
        )

    assert caught.value.field == "alert_ids"
    assert "500" in str(caught.value)


@pytest.mark.parametrize("name", ["ExampleShop2026", "000webhost", "a.b_c-d"])
def test_breach_name_valid(name: str) -> None:
    assert review_input.parse_breach_name(name) == name


@pytest.mark.parametrize("name", [None, "", "Shop#2026", "-Shop", "x" * 129])
def test_breach_name_invalid(name: str | None) -> None:
    with pytest.raises(review_input.ReviewInputError) as caught:
        review_input.parse_breach_name(name)

    assert caught.value.field == "breach"


# ---------------------------------------------------------------------------- pages and cursors


def test_page_defaults() -> None:
    page = review_input.parse_page({})

    assert page.limit == review_input.DEFAULT_PAGE_SIZE
    assert page.start_after is None


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten", "1.5", ""])
def test_page_limit_invalid(limit: str) -> None:
    with pytest.raises(review_input.ReviewInputError) as caught:
        review_input.parse_page({"limit": limit})

    assert caught.value.field == "limit"


def test_cursor_round_trip() -> None:
    key = review_key("ExampleShop2026", "sbr_01M91B4ABG36G2R8D4PV2HM6CG")

    page = review_input.parse_page({"limit": "20", "cursor": review_input.encode_cursor(key)})

    assert page.limit == 20
    assert page.start_after == {name: value["S"] for name, value in key.items()}


def test_cursor_bound_to_its_breach() -> None:
    cursor = review_input.encode_cursor(review_key("ExampleShop2026", "sbr_1"))

    assert (
        review_input.decode_cursor(cursor, "ExampleShop2026")["gsi1sk"] == "ExampleShop2026#sbr_1"
    )
    with pytest.raises(review_input.ReviewInputError) as caught:
        review_input.decode_cursor(cursor, "ExampleShop")
    assert caught.value.field == "cursor"


def test_cursor_of_other_partition_rejected() -> None:
    key = review_key("ExampleShop2026", "sbr_1")
    key["gsi1pk"] = {"S": "ENTITLED"}

    with pytest.raises(review_input.ReviewInputError) as caught:
        review_input.decode_cursor(review_input.encode_cursor(key))

    assert caught.value.field == "cursor"


@pytest.mark.parametrize("cursor", ["", "not base64 !", "bnVsbA", "WzEsMiwzLDRd", "eyJhIjogMX0"])
def test_cursor_garbage_rejected(cursor: str) -> None:
    with pytest.raises(review_input.ReviewInputError) as caught:
        review_input.decode_cursor(cursor)

    assert caught.value.field == "cursor"


# ---------------------------------------------------------------------------- evidence


def alert_item(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "alert_id": ALERT_ID,
        "severity": "medium",
        "confidence": "low",
        "severity_rule": "mobile_matched",
        "confidence_rule": "default",
        "status": "pending_review",
        "created_at": 1796407512,
    }
    item.update(changes)
    return item


def test_evidence_shows_masked_matched_kinds() -> None:
    exposure = {"matched_kinds": {"mobile", "id_number"}, "found_by": "dataset", "found_at": 0}
    identifiers = {
        "mobile": {"masked": "139****5678", "value_enc": "ciphertext"},
        "id_number": {"masked": "1101**********100X"},
        "email": {"masked": "w***@example.com"},
    }

    evidence = review.exposure_evidence("sbr_1", alert_item(), exposure, identifiers)

    assert evidence["matched_kinds"] == ["id_number", "mobile"]
    assert evidence["masked"] == {"id_number": "1101**********100X", "mobile": "139****5678"}
    assert "ciphertext" not in str(evidence)
    assert evidence["found_at"] == "1970-01-01T00:00:00.000Z"
    assert evidence["queued_at"] == "2026-12-04T18:05:12.000Z"
    assert (evidence["severity"], evidence["confidence"]) == ("medium", "low")


def test_evidence_without_identifier_or_exposure() -> None:
    evidence = review.exposure_evidence(
        "sbr_1", alert_item(), {"matched_kinds": {"bank_card"}, "found_by": "index"}, {}
    )
    bare = review.exposure_evidence("sbr_1", alert_item(), None, {})

    assert evidence["masked"] == {"bank_card": None}
    assert evidence["found_at"] is None
    assert bare["matched_kinds"] == []
    assert bare["found_by"] is None


def test_grouping_keeps_order_and_counts() -> None:
    rows = [
        ("Alpha", {"alert_id": "a1"}),
        ("Beta", {"alert_id": "b1"}),
        ("Alpha", {"alert_id": "a2"}),
    ]
    breaches: dict[str, dict[str, Any] | None] = {"Alpha": {"name": "Alpha"}, "Beta": None}

    groups = review.group_by_breach(rows, breaches)

    assert [group["breach_name"] for group in groups] == ["Alpha", "Beta"]
    assert [group["count"] for group in groups] == [2, 1]
    assert [row["alert_id"] for row in groups[0]["exposures"]] == ["a1", "a2"]
    assert groups[1]["breach"] is None


def test_grouping_keeps_empty_breach() -> None:
    groups = review.group_by_breach([], {"Alpha": {"name": "Alpha"}})

    assert groups == [
        {"breach_name": "Alpha", "breach": {"name": "Alpha"}, "count": 0, "exposures": []}
    ]


def test_breach_summary_dates() -> None:
    breach = Breach.from_hibp(
        {
            "Name": "ExampleShop2026",
            "Title": "Example Shop",
            "BreachDate": "2026-10-01",
            "AddedDate": "2026-11-02T03:04:05+08:00",
            "DataClasses": ["Phone numbers"],
            "IsVerified": False,
            "Description": "<p>long text the summary leaves out</p>",
        }
    )

    summary = review.breach_summary(breach)

    assert summary is not None
    assert summary["breach_date"] == "2026-10-01"
    assert summary["added_date"] == "2026-11-02T03:04:05+08:00"
    assert summary["is_verified"] is False
    assert "description" not in summary
    assert review.breach_summary(None) is None


# ---------------------------------------------------------------------------- events


def batch(status: str) -> dict[str, Any]:
    return {
        "breach_name": "ExampleShop2026",
        "status": status,
        "alerts": [
            {
                "alert_id": ALERT_ID,
                "subscriber_id": "sbr_01M91B4ABG36G2R8D4PV2HM6CG",
                "severity": "high",
                "confidence": "medium",
            }
        ],
    }


def test_confirmed_batch_events() -> None:
    events = review_outbox.batch_events(batch("confirmed"))

    assert len(events) == 1
    event = events[0]
    assert isinstance(event, AlertConfirmed)
    assert event.event_id == f"evt_alert_{ALERT_ID}"
    assert event.confirmed_by == "analyst"
    assert (event.severity, event.confidence) == ("high", "medium")


def test_dismissed_batch_events() -> None:
    events = review_outbox.batch_events(batch("dismissed"))

    assert len(events) == 1
    assert isinstance(events[0], AlertDismissed)
    assert events[0].event_id == f"evt_alert_dismissed_{ALERT_ID}"


# ---------------------------------------------------------------------------- audit records


def test_audit_item_fields() -> None:
    at = datetime(2026, 12, 4, 18, 20, 41, 123456, tzinfo=UTC)
    record = AuditRecord(
        action="review.dismiss",
        actor="arn:aws:sts::123456789012:assumed-role/Analyst/li",
        request_id="req-1",
        subject="BREACH#ExampleShop2026",
        at=at,
        breach_names=("ExampleShop2026",),
        alert_ids=(ALERT_ID,),
        reason=REASON,
        outcome="decided",
    )

    item = record.item()

    assert item["pk"] == "BREACH#ExampleShop2026"
    assert item["sk"] == f"2026-12-04T18:20:41.123Z#{record.record_id}"
    assert item["actor"] == "arn:aws:sts::123456789012:assumed-role/Analyst/li"
    assert item["alert_ids"] == [ALERT_ID]
    assert item["reason"] == REASON
    assert record.record_id.startswith("aud_")


def test_audit_sort_keys_follow_time() -> None:
    start = datetime(2026, 12, 4, 23, 59, 59, 999000, tzinfo=UTC)
    earlier = AuditRecord("review.view", "arn:1", "r1", "REVIEW_QUEUE", start)
    later = AuditRecord(
        "review.view", "arn:1", "r2", "REVIEW_QUEUE", start + timedelta(milliseconds=1)
    )

    assert earlier.item()["sk"] < later.item()["sk"]


@pytest.mark.parametrize("missing", ["actor", "request_id", "subject"])
def test_audit_record_needs_who(missing: str) -> None:
    fields: dict[str, Any] = {"actor": "arn:1", "request_id": "r1", "subject": "REVIEW_QUEUE"}
    fields[missing] = ""

    with pytest.raises(ValueError, match=missing):
        AuditRecord(action="review.view", at=datetime.now(UTC), **fields)


def test_instant_in_utc() -> None:
    shanghai = timezone(timedelta(hours=8))

    assert (
        format_instant(datetime(2026, 12, 5, 2, 0, tzinfo=shanghai)) == "2026-12-04T18:00:00.000Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_instant(datetime(2026, 12, 5, 2, 0))


@pytest.mark.parametrize(
    ("reason", "message"),
    [(None, "missing reason"), ("  ", "missing reason"), (42, "invalid reason: expected text")],
)
def test_decision_reason_message(reason: Any, message: str) -> None:
    body = {"decision": "confirm"} if reason is None else {"decision": "confirm", "reason": reason}

    with pytest.raises(review_input.ReviewInputError, match=message):
        review_input.parse_decision(body)
