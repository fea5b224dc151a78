"""Analyst review against moto: evidence by breach, decisions by breach and by exposure, audit."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from idsentry.adapters.bus import EventPublisher, PublishError
from idsentry.adapters.dynamo import from_item
from idsentry.adapters.table import MainTable, TransactionConflictError
from idsentry.clock import epoch
from idsentry.errors import NotFoundError
from idsentry.ids import new_id
from idsentry.models.events import AlertConfirmed, AlertDismissed, EventDetail
from idsentry.routes import admin_routes
from idsentry.services import review, review_input
from idsentry.services.alerts import AlertDeps, alert_id_for, review_exposure
from idsentry.services.audit import (
    REVIEW_QUEUE_SUBJECT,
    AuditRecord,
    AuditTrail,
    AuditWriteError,
    breach_subject,
)
from idsentry.services.hibp_catalogue import breach_item
from idsentry.services.risk import load_rules
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_signup_service import FlakyTransactions, _clear_table

pytestmark = pytest.mark.integration

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
MASKED = {"id_number": "1101**********100X", "mobile": "139****5678", "email": "w***@example.com"}
REASON = "Only a shared mobile number matched, in an unverified breach."
ANALYST_A = review.Caller(actor="arn:aws:sts::123456789012:assumed-role/Analyst/li", request_id="")
ANALYST_B = review.Caller(actor="arn:aws:sts::123456789012:assumed-role/Analyst/wu", request_id="")


class RecordingPublisher(EventPublisher):
    """Publishes to the local bus and keeps every detail it was asked to publish."""

    def __init__(self, bus_name: str, client: Any) -> None:
        super().__init__(bus_name, client)
        self.published: list[EventDetail] = []

    def publish(self, details: Sequence[EventDetail]) -> None:
        self.published.extend(details)
        super().publish(details)


class FailingPublisher(EventPublisher):
    """Rejects every event, as PutEvents does when EventBridge fails each entry."""

    def publish(self, details: Sequence[EventDetail]) -> None:
        raise PublishError([detail.event_id for detail in details])


class InterleavedClient:
    """A DynamoDB client that runs `before` once, just before its first TransactWriteItems."""

    def __init__(self, client: Any, before: Callable[[], Any]) -> None:
        self._client = client
        self._before: Callable[[], Any] | None = before

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> Any:
        if self._before is not None:
            before, self._before = self._before, None
            before()
        return self._client.transact_write_items(**request)


@dataclass
class Harness:
    """Review dependencies on the local stack, a clock the tests move and helpers to seed."""

    service: LocalService
    clock: MovableClock = field(default_factory=MovableClock)

    def __post_init__(self) -> None:
        assert self.service.stack is not None
        runtime = self.service.stack.runtime
        environment = runtime.environment
        self.dynamodb = runtime.client("dynamodb")
        self.sqs = runtime.client("sqs")
        self.events = runtime.client("events")
        self.bus_name = environment["EVENT_BUS_NAME"]
        self.queue_url = environment["NOTIFICATION_QUEUE_URL"]
        self.audit_table = environment["AUDIT_TABLE_NAME"]
        self.table = MainTable(environment["TABLE_NAME"], self.dynamodb)
        self.publisher = RecordingPublisher(self.bus_name, self.events)
        self.alerts = AlertDeps(
            table=self.table, publisher=self.publisher, rules=load_rules(), clock=self.clock
        )

    def deps(self, *, dynamodb: Any = None, publisher: EventPublisher | None = None) -> Any:
        """Return review dependencies, optionally with another DynamoDB client or publisher."""
        client = dynamodb or self.dynamodb
        return review.ReviewDeps(
            table=MainTable(self.table.name, client),
            audit=AuditTrail(self.audit_table, client),
            publisher=publisher or self.publisher,
            clock=self.clock,
        )

    def add_breach(self, name: str, *, verified: bool = False) -> None:
        self.table.put(
            breach_item(
                {
                    "Name": name,
                    "Title": f"{name} leak",
                    "Domain": "shop.example.com",
                    "BreachDate": "2026-10-01",
                    "AddedDate": "2026-11-02T03:04:05Z",
                    "ModifiedDate": "2026-11-02T03:04:05Z",
                    "DataClasses": ["Phone numbers", "Email addresses", "Government issued IDs"],
                    "IsVerified": verified,
                }
            )
        )

    def add_exposure(self, breach: str, kinds: Sequence[str] = ("mobile",)) -> tuple[str, str]:
        """Seed a subscriber exposed in the breach and queue its alert through risk review."""
        subscriber_id = new_id("sbr")
        pk = f"SUB#{subscriber_id}"
        self.table.put({"pk": pk, "sk": "PROFILE", "status": "active", "locale": "zh-CN"})
        for kind in kinds:
            self.table.put(
                {
                    "pk": pk,
                    "sk": f"IDENT#{kind}",
                    "kind": kind,
                    "masked": MASKED[kind],
                    "fingerprints": {"1": f"fp-{kind}-{subscriber_id}"},
                    "confirmed": True,
                }
            )
        self.table.put(
            {
                "pk": pk,
                "sk": f"EXPOSURE#{breach}",
                "matched_kinds": set(kinds),
                "found_by": "dataset",
                "found_at": epoch(self.clock()),
            }
        )
        assert review_exposure(self.alerts, subscriber_id, breach) == "pending_review"
        return subscriber_id, alert_id_for(subscriber_id, breach)

    def alert(self, subscriber_id: str, breach: str) -> dict[str, Any]:
        item = self.table.get(f"SUB#{subscriber_id}", f"ALERT#{breach}")
        assert item is not None
        return item

    def audit_records(self, subject: str) -> list[dict[str, Any]]:
        response = self.dynamodb.query(
            TableName=self.audit_table,
            KeyConditionExpression="pk = :subject",
            ExpressionAttributeValues={":subject": {"S": subject}},
            ConsistentRead=True,
        )
        return [from_item(item) for item in response["Items"]]

    def notification_jobs(self) -> list[dict[str, Any]]:
        """Receive and delete every job waiting in the notification queue."""
        jobs = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return jobs
            for message in messages:
                jobs.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def harness(local_service: LocalService) -> Iterator[Harness]:
    harness = Harness(local_service)
    harness.notification_jobs()
    yield harness
    _clear_table(local_service)


@pytest.fixture
def breach(harness: Harness) -> str:
    """A breach name of this test alone, because audit records outlive the main table's items."""
    name = f"Shop{new_id('x')[2:12]}"
    harness.add_breach(name)
    return name


def caller(analyst: review.Caller) -> review.Caller:
    return review.Caller(actor=analyst.actor, request_id=new_id("req"))


def confirm(reason: str = REASON, alert_ids: tuple[str, ...] | None = None) -> Any:
    return review_input.DecisionRequest(decision="confirm", reason=reason, alert_ids=alert_ids)


def dismiss(reason: str = REASON, alert_ids: tuple[str, ...] | None = None) -> Any:
    return review_input.DecisionRequest(decision="dismiss", reason=reason, alert_ids=alert_ids)


# ---------------------------------------------------------------------------- evidence


def test_list_groups_by_breach(harness: Harness, breach: str) -> None:
    other = f"{breach}b"
    harness.add_breach(other)
    first, first_alert = harness.add_exposure(breach, ("mobile", "email"))
    second, _ = harness.add_exposure(breach, ("id_number",))
    harness.add_exposure(other)
    analyst = caller(ANALYST_A)

    listed = review.list_pending(harness.deps(), analyst, review_input.PageRequest(limit=50))

    groups = {group["breach_name"]: group for group in listed["groups"]}
    assert set(groups) == {breach, other}
    assert (groups[breach]["count"], groups[other]["count"]) == (2, 1)
    assert groups[breach]["breach"]["breach_date"] == "2026-10-01"
    assert groups[breach]["breach"]["added_date"] == "2026-11-02T03:04:05+00:00"
    rows = {row["subscriber_id"]: row for row in groups[breach]["exposures"]}
    assert set(rows) == {first, second}
    assert rows[first]["alert_id"] == first_alert
    assert rows[first]["masked"] == {"email": MASKED["email"], "mobile": MASKED["mobile"]}
    assert rows[second]["masked"] == {"id_number": MASKED["id_number"]}
    assert (rows[second]["severity"], rows[second]["confidence"]) == ("high", "medium")
    assert rows[first]["found_by"] == "dataset"
    assert rows[first]["found_at"] == "2026-12-04T12:00:00.000Z"
    assert listed["next_cursor"] is None


def test_list_view_audited(harness: Harness, breach: str) -> None:
    _, alert_id = harness.add_exposure(breach)
    analyst = caller(ANALYST_A)

    review.list_pending(harness.deps(), analyst, review_input.PageRequest())

    records = [
        r
        for r in harness.audit_records(REVIEW_QUEUE_SUBJECT)
        if r["request_id"] == analyst.request_id
    ]
    assert len(records) == 1
    record = records[0]
    assert record["action"] == "review.view"
    assert record["actor"] == ANALYST_A.actor
    assert record["alert_ids"] == [alert_id]
    assert record["breach_names"] == [breach]
    assert record["at"] == "2026-12-04T12:00:00.000Z"


def test_list_pages_with_cursor(harness: Harness, breach: str) -> None:
    added = {harness.add_exposure(breach)[1] for _ in range(3)}
    deps = harness.deps()

    first = review.list_pending(deps, caller(ANALYST_A), review_input.PageRequest(limit=2))
    cursor = first["next_cursor"]
    assert cursor is not None
    second = review.list_pending(
        deps, caller(ANALYST_A), review_input.parse_page({"limit": "2", "cursor": cursor})
    )

    shown = [
        row["alert_id"]
        for page in (first, second)
        for group in page["groups"]
        for row in group["exposures"]
    ]
    assert (first["count"], second["count"]) == (2, 1)
    assert sorted(shown) == sorted(added)
    assert second["next_cursor"] is None


def test_breach_evidence_only_that_breach(harness: Harness, breach: str) -> None:
    other = f"{breach}b"
    harness.add_breach(other)
    _, alert_id = harness.add_exposure(breach)
    harness.add_exposure(other)
    analyst = caller(ANALYST_B)

    listed = review.list_pending(harness.deps(), analyst, review_input.PageRequest(), breach)

    assert [group["breach_name"] for group in listed["groups"]] == [breach]
    assert [row["alert_id"] for row in listed["groups"][0]["exposures"]] == [alert_id]
    records = [
        r
        for r in harness.audit_records(breach_subject(breach))
        if r["request_id"] == analyst.request_id
    ]
    assert [(r["action"], r["alert_ids"]) for r in records] == [("review.view", [alert_id])]


def test_breach_without_pending_listed(harness: Harness, breach: str) -> None:
    listed = review.list_pending(
        harness.deps(), caller(ANALYST_A), review_input.PageRequest(), breach
    )

    assert listed["groups"][0]["count"] == 0
    assert listed["groups"][0]["breach"]["name"] == breach


def test_unknown_breach_not_found(harness: Harness) -> None:
    analyst = caller(ANALYST_A)

    with pytest.raises(NotFoundError):
        review.list_pending(harness.deps(), analyst, review_input.PageRequest(), "NoSuchBreach")
    with pytest.raises(NotFoundError):
        review.decide(harness.deps(), analyst, "NoSuchBreach", confirm())

    assert harness.audit_records(breach_subject("NoSuchBreach")) == []


# ---------------------------------------------------------------------------- decisions


def test_confirm_whole_breach(harness: Harness, breach: str) -> None:
    other = f"{breach}b"
    harness.add_breach(other)
    first, first_alert = harness.add_exposure(breach)
    second, second_alert = harness.add_exposure(breach, ("id_number",))
    untouched, _ = harness.add_exposure(other)
    analyst = caller(ANALYST_A)

    result = review.decide(harness.deps(), analyst, breach, confirm())

    assert result["decided"] == 2
    assert {r["alert_id"]: r["outcome"] for r in result["results"]} == {
        first_alert: "confirmed",
        second_alert: "confirmed",
    }
    assert result["more_pending"] is False
    for subscriber_id in (first, second):
        alert = harness.alert(subscriber_id, breach)
        assert alert["status"] == "confirmed"
        assert alert["decided_by"] == ANALYST_A.actor
        assert alert["gsi1pk"] == f"REVIEWED#{breach}"
    assert harness.alert(untouched, other)["status"] == "pending_review"
    listed = review.list_pending(harness.deps(), caller(ANALYST_A), review_input.PageRequest())
    assert [group["breach_name"] for group in listed["groups"]] == [other]

    confirmed = [e for e in harness.publisher.published if isinstance(e, AlertConfirmed)]
    assert {e.alert_id for e in confirmed} == {first_alert, second_alert}
    assert all(e.confirmed_by == "analyst" for e in confirmed)
    jobs = harness.notification_jobs()
    assert sorted(job["alert_id"] for job in jobs) == sorted([first_alert, second_alert])
    assert all(job["kind"] == "alert" for job in jobs)

    records = [
        r
        for r in harness.audit_records(breach_subject(breach))
        if r["request_id"] == analyst.request_id
    ]
    assert len(records) == 1
    assert records[0]["action"] == "review.confirm"
    assert records[0]["outcome"] == "decided"
    assert records[0]["reason"] == REASON
    assert sorted(records[0]["alert_ids"]) == sorted([first_alert, second_alert])
    assert alert["audit_record_id"] == records[0]["record_id"]


def test_confirm_single_exposure(harness: Harness, breach: str) -> None:
    chosen, chosen_alert = harness.add_exposure(breach)
    left, _ = harness.add_exposure(breach)
    analyst = caller(ANALYST_A)

    result = review.decide(harness.deps(), analyst, breach, confirm(alert_ids=(chosen_alert,)))

    assert result["results"] == [
        {
            "alert_id": chosen_alert,
            "subscriber_id": chosen,
            "outcome": "confirmed",
            "status": "confirmed",
        }
    ]
    assert harness.alert(chosen, breach)["status"] == "confirmed"
    assert harness.alert(left, breach)["status"] == "pending_review"
    assert [job["alert_id"] for job in harness.notification_jobs()] == [chosen_alert]
    records = [
        r
        for r in harness.audit_records(breach_subject(breach))
        if r["request_id"] == analyst.request_id
    ]
    assert [r["alert_ids"] for r in records] == [[chosen_alert]]


def test_dismiss_sends_no_notification(harness: Harness, breach: str) -> None:
    subscriber_id, alert_id = harness.add_exposure(breach)
    analyst = caller(ANALYST_B)

    result = review.decide(harness.deps(), analyst, breach, dismiss())

    assert result["results"][0]["outcome"] == "dismissed"
    alert = harness.alert(subscriber_id, breach)
    assert alert["status"] == "dismissed"
    assert harness.notification_jobs() == []
    dismissed = [e for e in harness.publisher.published if isinstance(e, AlertDismissed)]
    assert [e.alert_id for e in dismissed] == [alert_id]
    records = [
        r
        for r in harness.audit_records(breach_subject(breach))
        if r["request_id"] == analyst.request_id
    ]
    assert [(r["action"], r["actor"]) for r in records] == [("review.dismiss", ANALYST_B.actor)]


def test_repeat_decision_no_op(harness: Harness, breach: str) -> None:
    subscriber_id, alert_id = harness.add_exposure(breach)
    repeat = caller(ANALYST_A)
    review.decide(harness.deps(), caller(ANALYST_A), breach, confirm(alert_ids=(alert_id,)))
    events_before = len(harness.publisher.published)
    decided_at = harness.alert(subscriber_id, breach)["decided_at"]
    harness.clock.advance(minutes=5)

    by_id = review.decide(harness.deps(), repeat, breach, confirm(alert_ids=(alert_id,)))
    whole = review.decide(harness.deps(), caller(ANALYST_A), breach, dismiss())

    assert by_id["decided"] == 0
    assert by_id["results"][0]["outcome"] == "already_decided"
    assert by_id["results"][0]["status"] == "confirmed"
    assert (whole["decided"], whole["results"]) == (0, [])
    assert harness.alert(subscriber_id, breach)["decided_at"] == decided_at
    assert len(harness.publisher.published) == events_before
    assert len(harness.notification_jobs()) == 1
    records = [
        r
        for r in harness.audit_records(breach_subject(breach))
        if r["request_id"] == repeat.request_id
    ]
    assert [(r["outcome"], r["alert_ids"]) for r in records] == [("no_change", [alert_id])]


def test_race_decided_once(harness: Harness, breach: str) -> None:
    first, first_alert = harness.add_exposure(breach)
    second, second_alert = harness.add_exposure(breach)
    analyst_a, analyst_b = caller(ANALYST_A), caller(ANALYST_B)
    # Analyst A's confirmation commits after B read the pending alerts but before B's write.
    a_result: dict[str, Any] = {}
    racing = InterleavedClient(
        harness.dynamodb,
        lambda: a_result.update(review.decide(harness.deps(), analyst_a, breach, confirm())),
    )

    b_result = review.decide(harness.deps(dynamodb=racing), analyst_b, breach, dismiss())

    assert a_result["decided"] == 2
    assert b_result["decided"] == 0
    assert {(r["outcome"], r["status"]) for r in b_result["results"]} == {
        ("already_decided", "confirmed")
    }
    for subscriber_id in (first, second):
        assert harness.alert(subscriber_id, breach)["status"] == "confirmed"
    events = harness.publisher.published
    assert sorted(e.alert_id for e in events if isinstance(e, AlertConfirmed)) == sorted(
        [first_alert, second_alert]
    )
    assert not [e for e in events if isinstance(e, AlertDismissed)]
    records = harness.audit_records(breach_subject(breach))
    outcomes = sorted((r["actor"], r["action"], r["outcome"]) for r in records)
    assert outcomes == [
        (ANALYST_A.actor, "review.confirm", "decided"),
        (ANALYST_B.actor, "review.dismiss", "no_change"),
    ]


def test_unknown_alert_id_not_found(harness: Harness, breach: str) -> None:
    subscriber_id, _ = harness.add_exposure(breach)
    stranger = alert_id_for("sbr_not_exposed", breach)

    result = review.decide(
        harness.deps(), caller(ANALYST_A), breach, confirm(alert_ids=(stranger,))
    )

    assert result["results"] == [
        {"alert_id": stranger, "subscriber_id": None, "outcome": "not_found", "status": None}
    ]
    assert harness.alert(subscriber_id, breach)["status"] == "pending_review"


def test_conflict_retried(harness: Harness, breach: str) -> None:
    subscriber_id, _ = harness.add_exposure(breach)
    flaky = FlakyTransactions(harness.dynamodb, failures=1)

    result = review.decide(harness.deps(dynamodb=flaky), caller(ANALYST_A), breach, confirm())

    assert result["decided"] == 1
    assert flaky.failures == 0
    assert harness.alert(subscriber_id, breach)["status"] == "confirmed"


def test_conflict_exhausted_writes_nothing(harness: Harness, breach: str) -> None:
    subscriber_id, _ = harness.add_exposure(breach)
    flaky = FlakyTransactions(harness.dynamodb, failures=review.TRANSACTION_ATTEMPTS)

    with pytest.raises(TransactionConflictError):
        review.decide(harness.deps(dynamodb=flaky), caller(ANALYST_A), breach, confirm())

    assert harness.alert(subscriber_id, breach)["status"] == "pending_review"
    assert harness.audit_records(breach_subject(breach)) == []


def test_unpublished_decision_published_later(harness: Harness, breach: str) -> None:
    subscriber_id, alert_id = harness.add_exposure(breach)
    failing = FailingPublisher(harness.bus_name, harness.events)

    with pytest.raises(PublishError):
        review.decide(harness.deps(publisher=failing), caller(ANALYST_A), breach, confirm())

    assert harness.alert(subscriber_id, breach)["status"] == "confirmed"
    assert harness.notification_jobs() == []
    repeat = review.decide(harness.deps(), caller(ANALYST_A), breach, confirm())
    assert repeat["decided"] == 0
    assert [job["alert_id"] for job in harness.notification_jobs()] == [alert_id]
    record_id = harness.alert(subscriber_id, breach)["audit_record_id"]
    batch = harness.table.get(f"REVIEWBATCH#{record_id}", "BATCH")
    assert batch is not None
    assert "gsi1pk" not in batch
    assert batch["published_at"] == epoch(harness.clock())
    assert batch["expires_at"] > batch["published_at"]


def test_release_schedule_publishes_the_outbox(harness: Harness, breach: str) -> None:
    _, alert_id = harness.add_exposure(breach)
    failing = FailingPublisher(harness.bus_name, harness.events)
    with pytest.raises(PublishError):
        review.decide(harness.deps(publisher=failing), caller(ANALYST_A), breach, confirm())
    assert harness.service.stack is not None

    (result,) = harness.service.stack.runtime.fire_schedule("idsentry-local-notification-release")

    assert result["review_batches_published"] == 1
    assert [job["alert_id"] for job in harness.notification_jobs()] == [alert_id]


# ---------------------------------------------------------------------------- handler and audit


def handler_event(name: str, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / "http" / name).read_text(encoding="utf-8"))
    event = copy.deepcopy(event)
    event["requestContext"]["requestId"] = new_id("req")
    event.update(changes)
    return event


def test_handler_audits_caller_arn(harness: Harness, breach: str) -> None:
    _, alert_id = harness.add_exposure(breach)
    event = handler_event(
        "admin_review_breach.json",
        rawPath=f"/v1/admin/reviews/{breach}",
        pathParameters={"breach": breach},
    )
    assert harness.service.stack is not None

    response = harness.service.stack.runtime.invoke("AdminApiFunction", event)

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["groups"][0]["exposures"][0]["alert_id"] == alert_id
    records = [
        r
        for r in harness.audit_records(breach_subject(breach))
        if r["request_id"] == event["requestContext"]["requestId"]
    ]
    assert len(records) == 1
    assert records[0]["actor"] == event["requestContext"]["authorizer"]["iam"]["userArn"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "confirm"}, "reason"),
        ({"decision": "confirm", "reason": " "}, "reason"),
        ({"decision": "maybe", "reason": REASON}, "decision"),
        ({"decision": "confirm", "reason": REASON, "alertids": []}, "alertids"),
    ],
)
def test_handler_rejects_decision(
    harness: Harness, breach: str, body: dict[str, Any], field: str
) -> None:
    subscriber_id, _ = harness.add_exposure(breach)
    text = json.dumps(body)
    event = handler_event(
        "admin_review_decision.json",
        rawPath=f"/v1/admin/reviews/{breach}/decision",
        pathParameters={"breach": breach},
        body=text,
    )
    event["headers"]["content-length"] = str(len(text))
    assert harness.service.stack is not None

    response = harness.service.stack.runtime.invoke("AdminApiFunction", event)

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["field"] == field
    assert harness.alert(subscriber_id, breach)["status"] == "pending_review"
    assert harness.audit_records(breach_subject(breach)) == []


def test_handler_unpublished_events_503(
    harness: Harness, breach: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscriber_id, _ = harness.add_exposure(breach)
    failing = harness.deps(publisher=FailingPublisher(harness.bus_name, harness.events))
    monkeypatch.setattr(admin_routes, "review_deps", lambda: failing)
    event = handler_event(
        "admin_review_decision.json",
        rawPath=f"/v1/admin/reviews/{breach}/decision",
        pathParameters={"breach": breach},
        body=json.dumps({"decision": "confirm", "reason": REASON}),
    )

    response = admin_routes.handle(event)

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "events_pending"
    assert harness.alert(subscriber_id, breach)["status"] == "confirmed"


def test_handler_needs_caller(harness: Harness) -> None:
    event = handler_event("admin_reviews.json")
    del event["requestContext"]["authorizer"]
    assert harness.service.stack is not None

    response = harness.service.stack.runtime.invoke("AdminApiFunction", event)

    assert response["statusCode"] == 403


def test_audit_record_never_replaced(harness: Harness) -> None:
    trail = AuditTrail(harness.audit_table, harness.dynamodb)
    record = AuditRecord(
        action="review.view",
        actor=ANALYST_A.actor,
        request_id=new_id("req"),
        subject=breach_subject("ReplaceCheck"),
        at=harness.clock(),
        reason="first",
    )
    trail.write(record)

    with pytest.raises(AuditWriteError):
        trail.write(AuditRecord(**{**record.__dict__, "reason": "second"}))

    stored = harness.audit_records(breach_subject("ReplaceCheck"))
    assert [item["reason"] for item in stored] == ["first"]
