"""The admin API over the local HTTP API: IAM stand-in, intake jobs, the catalogue and review."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from idsentry.adapters.dynamo import from_item
from infra.local.http_api import extract_routes
from infra.local.service import ADMIN_TOKEN_HEADER, LocalService
from infra.local.stack import DEFAULT_TEMPLATE
from infra.local.template import load_template
from tests.e2e.conftest import (
    IDENTITIES,
    RecordCollector,
    sign_up_and_verify,
    signup_body,
    wait_for_emails,
    watch_handler_logs,
)

pytestmark = pytest.mark.e2e

MANIFEST = {
    "breach": {
        "Name": "AdminApiLeak",
        "Title": "Admin API test leak",
        "BreachDate": "2026-11-01",
        "DataClasses": ["Phone numbers", "Email addresses"],
        "IsVerified": False,
    },
    "encoding": "utf-8",
    "format": "csv",
    "columns": {"mobile": "mobile", "email": "email"},
    "provenance": {
        "source": "Synthetic rows written by this test",
        "legal_basis": "Test data, no real people",
        "approved_by": "operator-1",
        "approved_at": "2026-12-04T08:00:00+08:00",
    },
}


@pytest.fixture(scope="module")
def admin_service(log_records: RecordCollector) -> Iterator[LocalService]:
    with LocalService(port=0, identities_path=IDENTITIES) as started:
        watch_handler_logs(started, log_records)
        yield started


def _get(service: LocalService, path: str, token: str | None) -> requests.Response:
    headers = {ADMIN_TOKEN_HEADER: token} if token is not None else {}
    return requests.get(f"{service.base_url}{path}", headers=headers, timeout=30)


def _upload(service: LocalService) -> str:
    assert service.stack is not None
    s3 = service.stack.runtime.client("s3")
    bucket = service.stack.runtime.environment["INTAKE_BUCKET"]
    rows = "mobile,email\n13912345678,a@example.com\nnot-a-number,\n13912345678,a@example.com\n"
    s3.put_object(Bucket=bucket, Key="incoming/admin/data.csv", Body=rows.encode())
    etag = s3.put_object(
        Bucket=bucket, Key="incoming/admin/manifest.json", Body=json.dumps(MANIFEST).encode()
    )["ETag"].strip('"')
    from idsentry.services.intake import intake_job_id

    return intake_job_id(bucket, "incoming/admin/manifest.json", etag)


def test_admin_route_needs_credentials(admin_service: LocalService) -> None:
    missing = _get(admin_service, "/v1/admin/intake-jobs/ijob_unknown", None)
    wrong = _get(admin_service, "/v1/admin/intake-jobs/ijob_unknown", "not-the-token")
    unknown = _get(admin_service, "/v1/admin/intake-jobs/ijob_unknown", admin_service.admin_token)

    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert unknown.status_code == 404


ADMIN_ROUTES = sorted(
    route.route_key
    for route in extract_routes(load_template(DEFAULT_TEMPLATE))
    if route.path.startswith("/v1/admin/")
)


@pytest.mark.parametrize("route_key", ADMIN_ROUTES)
@pytest.mark.parametrize("token", [None, "not-the-token"], ids=["missing", "wrong"])
def test_staff_route_refused_without_role(
    admin_service: LocalService, route_key: str, token: str | None
) -> None:
    method, path = route_key.split(" ", 1)
    concrete = re.sub(r"\{[^}]+\}", "ExampleShop2026", path)
    headers = {ADMIN_TOKEN_HEADER: token} if token is not None else {}

    response = requests.request(
        method, f"{admin_service.base_url}{concrete}", headers=headers, json={}, timeout=30
    )

    assert response.status_code == 401


def test_intake_job_readable(admin_service: LocalService) -> None:
    job_id = _upload(admin_service)

    give_up = time.monotonic() + 30
    job: dict[str, Any] = {}
    while job.get("status") != "done":
        assert time.monotonic() < give_up, f"the intake job is still {job.get('status')}"
        time.sleep(0.2)
        response = _get(admin_service, f"/v1/admin/intake-jobs/{job_id}", admin_service.admin_token)
        job = response.json() if response.status_code == 200 else {}
    breach = _get(admin_service, "/v1/admin/breaches/AdminApiLeak", admin_service.admin_token)

    assert (job["rows_read"], job["rows_accepted"]) == (3, 2)
    assert job["by_reason"]["rows_rejected"] == {"no_valid_identifier": 1}
    assert job["provenance"]["approved_by"] == "operator-1"
    assert "layout" not in job
    assert breach.status_code == 200
    assert breach.json()["is_verified"] is False


REVIEW_BREACH = "AdminReviewLeak"
REVIEW_MANIFEST = {
    **MANIFEST,
    "breach": {
        "Name": REVIEW_BREACH,
        "Title": "Admin review test leak",
        "BreachDate": "2026-11-15",
        "DataClasses": ["Names", "Government issued IDs"],
        "IsVerified": False,
    },
    "columns": {"name": "name", "id_number": "id_number"},
}
LOCAL_ADMIN_ARN = "arn:aws:iam::123456789012:user/local-admin"


def _post(service: LocalService, path: str, body: Any, token: str | None) -> requests.Response:
    headers = {ADMIN_TOKEN_HEADER: token} if token is not None else {}
    return requests.post(f"{service.base_url}{path}", json=body, headers=headers, timeout=30)


def _exposed_subscriber(service: LocalService) -> tuple[str, str]:
    """Sign a monitored subscriber up and upload an unverified breach holding their ID number."""
    body = signup_body()
    subscriber_id = str(sign_up_and_verify(service, body)["subscriber_id"])
    assert service.stack is not None
    runtime = service.stack.runtime
    runtime.client("dynamodb").update_item(
        TableName=runtime.environment["TABLE_NAME"],
        Key={"pk": {"S": f"SUB#{subscriber_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET monitored = :true",
        ExpressionAttributeValues={":true": {"BOOL": True}},
    )

    s3 = runtime.client("s3")
    bucket = runtime.environment["INTAKE_BUCKET"]
    rows = f"name,id_number\n{body['name']},{body['id_number']}\n"
    s3.put_object(Bucket=bucket, Key="incoming/review/data.csv", Body=rows.encode())
    s3.put_object(
        Bucket=bucket,
        Key="incoming/review/manifest.json",
        Body=json.dumps(REVIEW_MANIFEST).encode(),
    )
    return subscriber_id, body["id_number"]


def _audit_records(service: LocalService) -> list[dict[str, Any]]:
    assert service.stack is not None
    runtime = service.stack.runtime
    response = runtime.client("dynamodb").query(
        TableName=runtime.environment["AUDIT_TABLE_NAME"],
        KeyConditionExpression="pk = :subject",
        ExpressionAttributeValues={":subject": {"S": f"BREACH#{REVIEW_BREACH}"}},
        ConsistentRead=True,
    )
    return [from_item(item) for item in response["Items"]]


def test_review_routes_need_credentials(admin_service: LocalService) -> None:
    listed = _get(admin_service, "/v1/admin/reviews", None)
    decided = _post(
        admin_service,
        f"/v1/admin/reviews/{REVIEW_BREACH}/decision",
        {"decision": "confirm", "reason": "no credentials"},
        "not-the-token",
    )

    assert listed.status_code == 401
    assert decided.status_code == 401


def test_review_by_breach_with_audit(admin_service: LocalService) -> None:
    token = admin_service.admin_token
    subscriber_id, id_number = _exposed_subscriber(admin_service)
    path = f"/v1/admin/reviews/{REVIEW_BREACH}"

    give_up = time.monotonic() + 30
    evidence: dict[str, Any] = {}
    while not (evidence.get("groups") or [{}])[0].get("count"):
        assert time.monotonic() < give_up, "the exposure never reached the review queue"
        time.sleep(0.2)
        response = _get(admin_service, path, token)
        evidence = response.json() if response.status_code == 200 else {}
    queue = _get(admin_service, "/v1/admin/reviews", token)

    group = evidence["groups"][0]
    exposure = group["exposures"][0]
    assert group["breach"]["is_verified"] is False
    assert group["breach"]["breach_date"] == "2026-11-15"
    assert exposure["subscriber_id"] == subscriber_id
    assert exposure["matched_kinds"] == ["id_number"]
    assert exposure["masked"]["id_number"].endswith(id_number[-4:])
    assert "*" in exposure["masked"]["id_number"]
    assert id_number not in json.dumps(evidence)
    assert (exposure["severity"], exposure["confidence"]) == ("high", "medium")
    assert queue.status_code == 200
    assert REVIEW_BREACH in [g["breach_name"] for g in queue.json()["groups"]]

    no_reason = _post(admin_service, f"{path}/decision", {"decision": "confirm"}, token)
    assert no_reason.status_code == 400
    assert no_reason.json()["error"]["field"] == "reason"

    emails_before = len(admin_service.sent_emails())
    reason = "The ID number matched exactly; the leaked rows carry the subscriber's name too."
    confirmed = _post(
        admin_service, f"{path}/decision", {"decision": "confirm", "reason": reason}, token
    )
    repeated = _post(
        admin_service,
        f"{path}/decision",
        {"decision": "dismiss", "reason": "repeat", "alert_ids": [exposure["alert_id"]]},
        token,
    )

    assert confirmed.status_code == 200
    assert confirmed.json()["decided"] == 1
    assert confirmed.json()["results"][0]["outcome"] == "confirmed"
    assert repeated.status_code == 200
    assert repeated.json()["results"][0]["outcome"] == "already_decided"
    assert repeated.json()["results"][0]["status"] == "confirmed"
    alert_email = wait_for_emails(admin_service, emails_before + 1)[-1]
    assert "Admin review test leak" in alert_email["subject"]
    after = _get(admin_service, path, token).json()
    assert after["groups"][0]["count"] == 0
    stranger = "alt_" + "0" * 26
    not_exposed = _post(
        admin_service,
        f"{path}/decision",
        {"decision": "dismiss", "reason": "not exposed", "alert_ids": [stranger]},
        token,
    )
    assert not_exposed.json()["results"] == [
        {"alert_id": stranger, "subscriber_id": None, "outcome": "not_found", "status": None}
    ]

    records = _audit_records(admin_service)
    assert all(record["actor"] == LOCAL_ADMIN_ARN for record in records)
    actions = [(record["action"], record["outcome"]) for record in records]
    assert ("review.view", "viewed") in actions
    assert ("review.confirm", "decided") in actions
    assert ("review.dismiss", "no_change") in actions
    decided = next(record for record in records if record["outcome"] == "decided")
    assert decided["reason"] == reason
    assert decided["alert_ids"] == [exposure["alert_id"]]
    assert decided["request_id"]


def test_review_rejects_bad_input(admin_service: LocalService) -> None:
    token = admin_service.admin_token
    limit = _get(admin_service, "/v1/admin/reviews?limit=0", token)
    cursor = _get(admin_service, "/v1/admin/reviews?cursor=not-a-cursor", token)
    breach = _get(admin_service, "/v1/admin/reviews/Bad%23Name", token)
    unknown = _post(
        admin_service,
        "/v1/admin/reviews/NoSuchLeak/decision",
        {"decision": "dismiss", "reason": "not in the catalogue"},
        token,
    )

    assert limit.status_code == 400
    assert limit.json()["error"]["field"] == "limit"
    assert cursor.status_code == 400
    assert cursor.json()["error"]["field"] == "cursor"
    assert breach.status_code == 400
    assert breach.json()["error"]["field"] == "breach"
    assert unknown.status_code == 404
