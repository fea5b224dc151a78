"""The reconciliation as a service: admin routes, the worker, the schedule, files and e-mail.

One subscription is paid through the local Stripe shim while the webhook endpoint leaves out
`invoice.paid`, so that event is lost exactly as when Stripe gives up delivering it. Its other
events reach the service through the webhook route and the billing consumer.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests

from idsentry.adapters.table import MainTable
from idsentry.clock import SHANGHAI
from idsentry.errors import ProviderError
from idsentry.routes import admin_routes, reconcile_jobs
from idsentry.services import reconcile_runs
from idsentry.services.billing import HANDLERS
from idsentry.services.reconcile import ReconcileDeps
from idsentry.services.reconcile_worker import run_job
from infra.local.service import ADMIN_TOKEN_HEADER, FINANCE_EMAIL, LocalService
from tests.integration.test_reconcile_repair import SUBSCRIBER, event_of, subscribe

pytestmark = pytest.mark.integration

AUDIT_TABLE = "idsentry-local-audit"


@dataclass(frozen=True)
class LostPayment:
    """The paid subscription whose `invoice.paid` webhook never arrived."""

    subscription_id: str
    invoice_id: str
    lost_event_id: str


@pytest.fixture(scope="module")
def table(local_service: LocalService) -> MainTable:
    assert local_service.stack is not None
    return MainTable("idsentry-local", local_service.stack.runtime.client("dynamodb"))


@pytest.fixture(scope="module")
def lost_payment(local_service: LocalService, table: MainTable) -> LostPayment:
    assert local_service.stripe_shim is not None and local_service.stack is not None
    shim = local_service.stripe_shim
    webhook_url = f"{local_service.public_base_url}/v1/webhooks/stripe"
    table.put(
        {
            "pk": f"SUB#{SUBSCRIBER}",
            "sk": "PROFILE",
            "subscriber_id": SUBSCRIBER,
            "status": "pending_payment",
        }
    )

    shim.configure_webhook(
        webhook_url,
        local_service.stripe_webhook_secret,
        sorted(set(HANDLERS) - {"invoice.paid"}),
    )
    try:
        client, subscription = subscribe(shim.base_url)
        shim.flush()
    finally:
        shim.configure_webhook(webhook_url, local_service.stripe_webhook_secret, sorted(HANDLERS))
    local_service.stack.runtime.run_until_idle()

    invoice_id = str(subscription.latest_invoice)
    return LostPayment(
        subscription_id=str(subscription.id),
        invoice_id=invoice_id,
        lost_event_id=event_of(client, "invoice.paid", invoice_id),
    )


def shanghai_today() -> date:
    return datetime.now(SHANGHAI).date()


def recent_period() -> dict[str, str]:
    """Yesterday and today in Asia/Shanghai at the time of the call.

    The module's objects were created earlier in the run, at most a day before, so they are
    inside the period even when midnight in Shanghai passed in between.
    """
    today = shanghai_today()
    return {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}


def http() -> requests.Session:
    session = requests.Session()
    # Proxy variables from the environment must not reroute loopback requests.
    session.trust_env = False
    return session


def post(
    service: LocalService, body: Any, headers: dict[str, str] | None = None, *, admin: bool = True
) -> requests.Response:
    sent = dict(headers or {})
    if admin:
        sent[ADMIN_TOKEN_HEADER] = service.admin_token
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http().post(
        f"{service.base_url}/v1/admin/reconciliations",
        data=data,
        headers={"content-type": "application/json", **sent},
        timeout=30,
    )


def get(service: LocalService, reconciliation_id: str) -> requests.Response:
    return http().get(
        f"{service.base_url}/v1/admin/reconciliations/{reconciliation_id}",
        headers={ADMIN_TOKEN_HEADER: service.admin_token},
        timeout=30,
    )


def run_queued(service: LocalService) -> None:
    assert service.stack is not None
    service.stack.runtime.run_until_idle()


def run_item(table: MainTable, reconciliation_id: str) -> dict[str, Any]:
    item = table.get(f"RECON#{reconciliation_id}", "RUN")
    assert item is not None, f"no RECON# item for {reconciliation_id}"
    return item


def finance_emails(service: LocalService, reconciliation_id: str) -> list[dict[str, Any]]:
    return [
        email
        for email in service.sent_emails()
        if FINANCE_EMAIL in email["to"] and reconciliation_id in (email.get("text") or "")
    ]


def audit_actions(service: LocalService, reconciliation_id: str) -> list[tuple[str, str]]:
    assert service.stack is not None
    response = service.stack.runtime.client("dynamodb").query(
        TableName=AUDIT_TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RECONCILIATION#{reconciliation_id}"}},
    )
    return [(item["action"]["S"], item["outcome"]["S"]) for item in response["Items"]]


def download(url: str) -> bytes:
    response = http().get(url, timeout=30)
    response.raise_for_status()
    return response.content


def rows_by_object(document: dict[str, Any]) -> dict[str, str]:
    return {f"{row['kind']}:{row['stripe_id']}": row["class"] for row in document["rows"]}


def finished_run(service: LocalService, body: dict[str, Any]) -> dict[str, Any]:
    """Request a run, deliver its job, and return the GET view of the finished run."""
    started = post(service, body)
    assert started.status_code == 202, started.text
    run_queued(service)
    view = get(service, started.json()["reconciliation_id"])
    assert view.status_code == 200, view.text
    document: dict[str, Any] = view.json()
    return document


# ---------------------------------------------------------------------------- a run end to end


def test_run_reports_lost_payment(
    local_service: LocalService, table: MainTable, lost_payment: LostPayment
) -> None:
    period = recent_period()
    first = post(local_service, {**period, "locale": "en"})
    again = post(local_service, {**period, "locale": "en"})
    run_queued(local_service)
    view = get(local_service, first.json()["reconciliation_id"]).json()
    files = {entry["name"]: download(entry["url"]) for entry in view["files"]}
    document = json.loads(files["reconciliation.json"])
    classes = rows_by_object(document)

    assert first.status_code == 202
    assert first.json()["created"] is True
    assert first.json()["status"] == "queued"
    assert first.headers["location"] == f"/v1/admin/reconciliations/{view['reconciliation_id']}"
    assert again.status_code == 202
    assert again.json()["reconciliation_id"] == view["reconciliation_id"]
    assert again.json()["created"] is False
    assert view["status"] == "done"
    assert view["attempts"] == 1
    assert set(files) == set(reconcile_runs.FILES)
    assert classes[f"invoice:{lost_payment.invoice_id}"] == "missing_in_ledger"
    assert classes[f"subscription:{lost_payment.subscription_id}"] == "matched"
    assert view["counts"] == document["counts"]
    assert view["rows"] == len(document["rows"])
    assert set(view["stripe_requests"]) >= {
        f"GET /v1/{name}"
        for name in (
            "invoices",
            "charges",
            "refunds",
            "disputes",
            "balance_transactions",
            "payouts",
            "subscriptions",
        )
    }


def test_files_in_bucket(local_service: LocalService, lost_payment: LostPayment) -> None:
    assert local_service.stack is not None
    view = finished_run(local_service, {**recent_period(), "locale": "zh-CN"})
    bucket = local_service.stack.runtime.environment["FINANCE_BUCKET"]
    prefix = f"reconciliations/{view['reconciliation_id']}/"
    s3 = local_service.stack.runtime.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    heads = {
        item["Key"].removeprefix(prefix): s3.head_object(Bucket=bucket, Key=item["Key"])
        for item in listed
    }
    csv_bytes = download(next(f["url"] for f in view["files"] if f["name"].endswith(".csv")))
    header = next(csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig"))))
    html_zh = download(next(f["url"] for f in view["files"] if f["name"] == "summary.zh-CN.html"))
    html_en = download(next(f["url"] for f in view["files"] if f["name"] == "summary.en.html"))

    assert set(heads) == set(reconcile_runs.FILES)
    for name, head in heads.items():
        assert head["ServerSideEncryption"] == "aws:kms", name
        assert head["ContentType"] == reconcile_runs.FILES[name]
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    assert header[:3] == ["结果", "对象类型", "Stripe 编号"]
    assert "Stripe 对账报告".encode() in html_zh
    assert b"Stripe reconciliation report" in html_en


def test_finance_email_both_languages(
    local_service: LocalService, table: MainTable, lost_payment: LostPayment
) -> None:
    view = finished_run(local_service, {**recent_period(), "locale": "en"})
    emails = finance_emails(local_service, view["reconciliation_id"])
    record = run_item(table, view["reconciliation_id"])

    assert len(emails) == 1
    email = emails[0]
    assert "Stripe 对账已完成" in email["subject"]
    assert "Stripe reconciliation finished" in email["subject"]
    assert "对账期间（北京时间）" in email["text"]
    assert "Period (Asia/Shanghai)" in email["text"]
    assert "账本缺失" in email["text"]
    assert "Missing in the ledger" in email["text"]
    assert f"idsentry reconcile --id {view['reconciliation_id']}" in email["text"]
    assert "http://" not in email["text"]
    assert "https://" not in email["text"]
    assert "X-Amz" not in email["html"]
    assert "Signature=" not in email["html"]
    assert record["emailed_at"] >= record["finished_at"]


def test_finished_run_not_run_again(
    local_service: LocalService, table: MainTable, lost_payment: LostPayment
) -> None:
    assert local_service.stack is not None
    view = finished_run(local_service, recent_period())
    reconciliation_id = view["reconciliation_id"]
    before = run_item(table, reconciliation_id)
    queue_url = local_service.stack.runtime.environment["RECONCILIATION_QUEUE_URL"]
    job = reconcile_runs.job_of(before)

    local_service.stack.runtime.client("sqs").send_message(
        QueueUrl=queue_url, MessageBody=job.model_dump_json()
    )
    run_queued(local_service)
    outcome = reconcile_jobs.process_reconciliation_record("message-again", job.model_dump_json())
    after = run_item(table, reconciliation_id)

    assert outcome == "already_done"
    assert after["attempts"] == before["attempts"] == 1
    assert after["finished_at"] == before["finished_at"]
    assert len(finance_emails(local_service, reconciliation_id)) == 1


def test_schedule_twice_runs_once(local_service: LocalService, table: MainTable) -> None:
    assert local_service.stack is not None
    runtime = local_service.stack.runtime
    # One moment for all three events, so that the day cannot change between them.
    at = datetime.now(UTC)
    yesterday = at.astimezone(SHANGHAI).date() - timedelta(days=1)
    reconciliation_id = reconcile_runs.daily_id(yesterday)

    first = runtime.fire_schedule("idsentry-local-reconciliation", at)
    second = runtime.fire_schedule("idsentry-local-reconciliation", at)
    run_queued(local_service)
    third = runtime.fire_schedule("idsentry-local-reconciliation", at)
    record = run_item(table, reconciliation_id)

    assert first == [{"reconciliation_id": reconciliation_id, "queued": True, "status": "queued"}]
    assert second == first
    assert third == [{"reconciliation_id": reconciliation_id, "queued": False, "status": "done"}]
    assert record["attempts"] == 1
    assert record["requested_by"] == "schedule"
    assert (record["from"], record["to"]) == (yesterday.isoformat(), yesterday.isoformat())
    assert len(finance_emails(local_service, reconciliation_id)) == 1


def test_failed_run_recorded_then_retried(
    local_service: LocalService, table: MainTable, lost_payment: LostPayment
) -> None:
    started = post(local_service, {**recent_period(), "locale": "en", "repair": False}, admin=True)
    reconciliation_id = started.json()["reconciliation_id"]
    job = reconcile_runs.job_of(run_item(table, reconciliation_id))
    deps = reconcile_jobs.worker_deps()

    def unreachable(repair: bool) -> ReconcileDeps:
        raise ProviderError("stripe", "APIConnectionError", transient=True)

    with pytest.raises(ProviderError):
        run_job(replace(deps, reconcile_deps=unreachable), job)
    failed = run_item(table, reconciliation_id)
    outcome = run_job(deps, job)
    done = run_item(table, reconciliation_id)
    # The queued copy of the job finds the run done.
    run_queued(local_service)

    assert failed["status"] == "failed"
    assert failed["error"] == {"type": "ProviderError", "transient": True}
    assert failed["attempts"] == 1
    assert outcome == "done"
    assert done["status"] == "done"
    assert done["attempts"] == 2
    assert "error" not in done
    assert run_item(table, reconciliation_id)["attempts"] == 2


# ---------------------------------------------------------------------------- admin routes


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "from"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": 20261204}, "from"),
        ({"from": "2026-12-04", "to": "2026-12-03"}, "to"),
        ({"from": "2026-01-01", "to": "2026-06-30"}, "to"),
        ({"from": "2026-12-04", "repair": "yes"}, "repair"),
        ({"from": "2026-12-04", "locale": "fr"}, "locale"),
        ({"from": "2026-12-04", "currency": "cny"}, "currency"),
    ],
)
def test_request_invalid_field(local_service: LocalService, body: Any, field: str) -> None:
    response = post(local_service, body)

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert field in response.json()["error"]["message"]


def test_request_from_future(local_service: LocalService) -> None:
    # Two days ahead, so that midnight passing during the request cannot make it today.
    future = shanghai_today() + timedelta(days=2)

    response = post(local_service, {"from": future.isoformat()})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "from"


def test_request_body_not_json(local_service: LocalService) -> None:
    response = post(local_service, b"from=2026-12-04")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


def test_idempotency_key_reused(local_service: LocalService, lost_payment: LostPayment) -> None:
    period = recent_period()
    key = {"Idempotency-Key": "test-key-reused-1"}
    first = post(local_service, {**period, "repair": False, "locale": "en"}, key)
    run_queued(local_service)
    same = post(local_service, {**period, "repair": False, "locale": "en"}, key)
    other = post(local_service, {**period, "repair": False, "locale": "zh-CN"}, key)
    too_long = post(local_service, period, {"Idempotency-Key": "k" * 256})

    assert first.json()["created"] is True
    assert same.status_code == 202
    assert same.json()["reconciliation_id"] == first.json()["reconciliation_id"]
    assert same.json()["status"] == "done"
    assert same.json()["created"] is False
    assert other.status_code == 400
    assert other.json()["error"]["field"] == "Idempotency-Key"
    assert too_long.status_code == 400
    assert too_long.json()["error"]["field"] == "Idempotency-Key"


def test_request_without_credentials(local_service: LocalService, table: MainTable) -> None:
    period = recent_period()
    before = post(local_service, period, admin=False)
    event = {
        "version": "2.0",
        "routeKey": "POST /v1/admin/reconciliations",
        "rawPath": "/v1/admin/reconciliations",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/v1/admin/reconciliations", "sourceIp": "1.2.3.4"},
            "requestId": "no-caller",
            "routeKey": "POST /v1/admin/reconciliations",
            "stage": "$default",
        },
        "body": json.dumps(period),
        "isBase64Encoded": False,
    }
    direct = admin_routes.handle(event)

    assert before.status_code in (401, 403)
    assert direct["statusCode"] == 403
    assert json.loads(direct["body"])["error"]["code"] == "forbidden"


def test_view_audited(local_service: LocalService, lost_payment: LostPayment) -> None:
    view = finished_run(local_service, {**recent_period(), "repair": False, "locale": "zh-CN"})
    actions = audit_actions(local_service, view["reconciliation_id"])

    assert ("reconciliation.request", "created") in actions
    assert ("reconciliation.view", "links") in actions


@pytest.mark.parametrize(
    ("reconciliation_id", "status"), [("rcn_01M91NOSUCHRUN0000000000", 404), ("x" * 50, 400)]
)
def test_view_unknown_run(local_service: LocalService, reconciliation_id: str, status: int) -> None:
    response = get(local_service, reconciliation_id)

    assert response.status_code == status


def test_view_queued_run_has_no_links(local_service: LocalService, table: MainTable) -> None:
    started = post(local_service, {"from": recent_period()["from"], "locale": "en"})
    view = get(local_service, started.json()["reconciliation_id"]).json()
    run_queued(local_service)

    assert view["status"] == "queued"
    assert "files" not in view


# ---------------------------------------------------------------------------- repair, last


def ledger_invoices(table: MainTable) -> list[dict[str, Any]]:
    partition = table.get_partition(f"SUB#{SUBSCRIBER}")
    return [
        item
        for sort_key, item in partition.items()
        if sort_key.startswith("LEDGER#") and item["kind"] == "invoice_paid"
    ]


def test_repair_applies_lost_event_once(
    local_service: LocalService, table: MainTable, lost_payment: LostPayment
) -> None:
    period = recent_period()
    before = ledger_invoices(table)
    repaired = finished_run(local_service, {**period, "repair": True, "locale": "en"})
    again = finished_run(local_service, {**period, "repair": True, "locale": "en"})
    json_url = next(entry["url"] for entry in repaired["files"] if entry["name"].endswith("json"))
    document = json.loads(download(json_url))

    assert before == []
    assert repaired["repairs"] == {"applied": 2}
    assert [(item["kind"], item["event_id"]) for item in document["repairs"]] == [
        ("invoice", lost_payment.lost_event_id),
        ("charge", lost_payment.lost_event_id),
    ]
    assert rows_by_object(document)[f"invoice:{lost_payment.invoice_id}"] == "matched"
    assert repaired["counts"]["missing_in_ledger"] == 0
    assert again["reconciliation_id"] != repaired["reconciliation_id"]
    assert again["repairs"] == {}
    assert len(ledger_invoices(table)) == 1
