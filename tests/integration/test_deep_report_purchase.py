"""A bought deep report against the local stack: Stripe checkout, webhooks, worker, e-mail, download.

Each subscriber requests the purchase link from the account API (POST /v1/account/deep-report)
and follows it to the Checkout page. 王小明 buys the report and Stripe delivers every webhook twice.
Alice Li buys one that is refunded before the billing consumer applies the purchase, and
陈静's card is declined. Only 王小明 gets a report, rendered and e-mailed once.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import stripe
from pypdf import PdfReader

from idsentry.crypto import Pepper
from idsentry.models.billing_jobs import StripeEventJob
from idsentry.services.billing_links import read_billing_link
from idsentry.services.report_ids import deep_report_id
from infra.local.emulators.stripe import TEST_API_KEY
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_account_api import _alert, _token
from tests.integration.test_breach_intake import BREACH
from tests.integration.test_reports import _entitle
from tests.integration.test_sign_in import SignInHarness
from tests.integration.test_signup_service import _clear_table

pytestmark = pytest.mark.integration

DEEP_SUBJECTS = (
    "您购买的深度安全报告已生成 - 身份哨兵",
    "The in-depth security report you bought is ready - IDSentry",
)


@dataclass
class Checkout:
    """One purchase through the account page's route: its response, redirect and payment."""

    link: requests.Response
    location: str
    paid: requests.Response


@dataclass
class Purchases:
    """Three subscribers, each with a Stripe customer, and the outcome of each checkout."""

    service: LocalService
    harness: SignInHarness
    wang: str
    alice: str
    chen: str
    sessions: dict[str, str]
    declined_status: int
    # Accepted deliveries of checkout.session.completed, by event id.
    completed_deliveries: dict[str, int]
    # Each person's purchase: the account API's response and where its link redirected.
    links: dict[str, Checkout]

    def call(self, method: str, path: str, subscriber: str, **options: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {_token(self.harness, subscriber)}"}
        return requests.request(
            method, f"{self.service.base_url}{path}", headers=headers, timeout=30, **options
        )

    def items(self, subscriber: str, prefix: str) -> dict[str, dict[str, Any]]:
        return self.harness.table.get_prefix(f"SUB#{subscriber}", prefix)

    def deep_emails(self, person: str) -> list[dict[str, Any]]:
        return [
            email
            for email in self.service.sent_emails()
            if f"{person}@example.com" in email["to"] and email["subject"] in DEEP_SUBJECTS
        ]


def _stripe(service: LocalService) -> stripe.StripeClient:
    assert service.stripe_shim is not None
    return stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": service.stripe_shim.base_url}, max_network_retries=0
    )


def _link_customer(service: LocalService, harness: SignInHarness, subscriber: str) -> None:
    """Create the subscriber's Stripe customer and link it, as their first checkout did."""
    customer = _stripe(service).v1.customers.create(
        params={"metadata": {"subscriber_id": subscriber}}
    )
    harness.table.put({"pk": f"STRIPECUS#{customer.id}", "sk": "LINK", "subscriber_id": subscriber})
    harness.table.update(
        f"SUB#{subscriber}",
        "PROFILE",
        "SET stripe_customer_id = :customer",
        values={":customer": customer.id},
    )


def _checkout(
    service: LocalService, harness: SignInHarness, subscriber: str, card: str
) -> Checkout:
    """Ask the account API for the purchase link, follow it and pay on the Checkout page."""
    link = requests.post(
        f"{service.base_url}/v1/account/deep-report",
        headers={"Authorization": f"Bearer {_token(harness, subscriber)}"},
        timeout=30,
    )
    assert link.status_code == 200, link.text
    opened = requests.get(link.json()["url"], allow_redirects=False, timeout=30)
    assert opened.status_code == 303, opened.text
    location = opened.headers["location"]
    paid = requests.post(
        location + "/pay",
        data={"payment_method": card},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    return Checkout(link=link, location=location, paid=paid)


def _refund(service: LocalService, session_id: str) -> None:
    client = _stripe(service)
    session = client.v1.checkout.sessions.retrieve(session_id)
    intent = client.v1.payment_intents.retrieve(str(session.payment_intent))
    charge = intent.latest_charge
    charge_id = charge if isinstance(charge, str) else charge.id
    client.v1.refunds.create(params={"charge": str(charge_id)})


@pytest.fixture(scope="module")
def purchases(local_service: LocalService) -> Iterator[Purchases]:
    assert local_service.stack is not None
    assert local_service.stripe_shim is not None
    shim = local_service.stripe_shim
    # The alert must be found before the report is generated, which uses the real clock.
    harness = SignInHarness(local_service, MovableClock(datetime.now(UTC) - timedelta(hours=1)))
    people = {person: harness.subscriber(person) for person in ("wang", "alice", "chen")}
    for subscriber in people.values():
        _entitle(harness, subscriber)
        _link_customer(local_service, harness, subscriber)
    harness.table.update(
        f"SUB#{people['alice']}",
        "PROFILE",
        "SET #locale = :en",
        values={":en": "en"},
        names={"#locale": "locale"},
    )
    _alert(harness, people["wang"], BREACH)

    shim.set_delivery(duplicate=True)
    try:
        sessions = {}
        links = {}
        for person in ("wang", "alice"):
            links[person] = _checkout(local_service, harness, people[person], "pm_card_visa")
            paid = links[person].paid
            assert paid.status_code == 200, paid.text
            sessions[person] = str(paid.json()["checkout_session"]["id"])
        # Refunded in Stripe before the billing consumer applies Alice's purchase.
        _refund(local_service, sessions["alice"])
        links["chen"] = _checkout(
            local_service, harness, people["chen"], "pm_card_chargeCustomerFail"
        )
        shim.flush()
        local_service.stack.runtime.run_until_idle(max_rounds=40, deadline_s=120)
    finally:
        shim.set_delivery()
    completed: dict[str, int] = {}
    for delivery in shim.deliveries():
        if delivery.event_type == "checkout.session.completed" and delivery.status == 200:
            completed[delivery.event_id] = completed.get(delivery.event_id, 0) + 1

    yield Purchases(
        service=local_service,
        harness=harness,
        wang=people["wang"],
        alice=people["alice"],
        chen=people["chen"],
        sessions=sessions,
        declined_status=links["chen"].paid.status_code,
        completed_deliveries=completed,
        links=links,
    )
    _clear_table(local_service)


def _deep_reports(purchases: Purchases, subscriber: str) -> list[dict[str, Any]]:
    return [
        item
        for item in purchases.items(subscriber, "REPORT#").values()
        if item["report_kind"] == "deep"
    ]


def test_account_link_opens_checkout(purchases: Purchases) -> None:
    service = purchases.service
    assert service.stripe_shim is not None
    pepper = Pepper.from_secret(service.pepper)

    for person, subscriber, locale, message in (
        ("wang", purchases.wang, "zh", "请在付款页面完成购买"),
        ("alice", purchases.alice, "en", "Complete your purchase on the payment page"),
    ):
        checkout = purchases.links[person]
        body = checkout.link.json()
        token = body["url"].removeprefix(f"{service.public_base_url}/v1/billing/")
        assert read_billing_link(pepper, token, int(time.time())) == (subscriber, "deep_report")
        assert message in body["message"]
        assert checkout.location.startswith(f"{service.stripe_shim.base_url}/checkout/")
        session = _stripe(service).v1.checkout.sessions.retrieve(purchases.sessions[person])
        assert session.mode == "payment"
        assert session.locale == locale
        assert session.metadata["plan"] == "deep_report"


def test_account_link_takes_no_fields(purchases: Purchases) -> None:
    response = purchases.call(
        "POST", "/v1/account/deep-report", purchases.wang, json={"plan": "annual"}
    )

    assert response.status_code == 422
    (problem,) = response.json()["error"]["fields"]
    assert (problem["field"], problem["code"]) == ("plan", "field.unknown")


def test_checkout_events_delivered_twice(purchases: Purchases) -> None:
    # One event per paid session, each accepted twice; the declined card completed nothing.
    assert sorted(purchases.completed_deliveries.values()) == [2, 2]


def test_paid_purchase_renders_one_report(purchases: Purchases) -> None:
    session = purchases.sessions["wang"]

    reports = _deep_reports(purchases, purchases.wang)

    assert len(reports) == 1
    report = reports[0]
    assert report["report_id"] == deep_report_id(purchases.wang, session)
    assert report["purchase_id"] == session
    assert report["state"] == "announced"
    purchase = purchases.items(purchases.wang, f"PURCHASE#{session}")[f"PURCHASE#{session}"]
    assert (purchase["status"], purchase["report_id"]) == ("paid", report["report_id"])


def test_paid_purchase_emailed_once(purchases: Purchases) -> None:
    emails = purchases.deep_emails("wang")

    assert len(emails) == 1
    assert emails[0]["subject"] == DEEP_SUBJECTS[0]
    assert "深度安全报告" in emails[0]["text"]
    assert "/signup/account/#reports" in emails[0]["text"]


def test_late_redelivery_changes_nothing(purchases: Purchases) -> None:
    assert purchases.service.stack is not None
    runtime = purchases.service.stack.runtime
    events = runtime.client("dynamodb").scan(
        TableName="idsentry-local",
        FilterExpression="begins_with(pk, :event)",
        ExpressionAttributeValues={":event": {"S": "STRIPE_EVENT#"}},
    )["Items"]
    completed = [item["pk"]["S"].removeprefix("STRIPE_EVENT#") for item in events]
    for event_id in completed:
        runtime.client("sqs").send_message(
            QueueUrl=runtime.environment["STRIPE_EVENTS_QUEUE_URL"],
            MessageBody=StripeEventJob(event_id=event_id).model_dump_json(),
        )

    runtime.run_until_idle(max_rounds=40, deadline_s=120)

    assert len(_deep_reports(purchases, purchases.wang)) == 1
    assert len(purchases.deep_emails("wang")) == 1


def test_report_listed_as_bought(purchases: Purchases) -> None:
    response = purchases.call("GET", "/v1/account/reports", purchases.wang)

    assert response.status_code == 200, response.text
    bought = [entry for entry in response.json()["reports"] if entry["bought"]]
    assert len(bought) == 1
    assert bought[0]["report_kind"] == "deep"
    assert bought[0]["purchase_id"] == purchases.sessions["wang"]
    assert bought[0]["purchased_at"] is not None


def test_bought_pdf_has_deep_sections(purchases: Purchases) -> None:
    report_id = _deep_reports(purchases, purchases.wang)[0]["report_id"]

    link = purchases.call("GET", f"/v1/account/reports/{report_id}/pdf", purchases.wang)
    assert link.status_code == 200, link.text
    downloaded = requests.get(link.json()["url"], timeout=30)

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(downloaded.content)).pages)
    for expected in (
        "身份哨兵深度安全报告",
        "每项身份信息的泄露情况",
        "泄露事件详情",
        BREACH["Title"],
    ):
        assert expected in text, expected
    masked = purchases.harness.table.get(f"SUB#{purchases.wang}", "IDENT#id_number")
    assert masked is not None
    assert masked["masked"] in text
    assert "110105199003071239" not in text


def test_refunded_purchase_gets_no_report(purchases: Purchases) -> None:
    session = purchases.sessions["alice"]

    purchase = purchases.items(purchases.alice, f"PURCHASE#{session}")[f"PURCHASE#{session}"]

    assert purchase["status"] == "refunded"
    assert "report_queued_at" not in purchase
    assert _deep_reports(purchases, purchases.alice) == []
    assert purchases.deep_emails("alice") == []


def test_link_needs_paid_subscription(purchases: Purchases) -> None:
    # As before a subscriber's first payment, which creates their Stripe customer.
    purchases.harness.table.update(f"SUB#{purchases.chen}", "PROFILE", "REMOVE stripe_customer_id")

    response = purchases.call("POST", "/v1/account/deep-report", purchases.chen)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "deep_report.needs_subscription"
    assert "请先完成订阅付款" in response.json()["error"]["message"]


def test_declined_purchase_gets_nothing(purchases: Purchases) -> None:
    assert purchases.declined_status == 402
    assert purchases.items(purchases.chen, "PURCHASE#") == {}
    assert _deep_reports(purchases, purchases.chen) == []
    assert purchases.deep_emails("chen") == []
