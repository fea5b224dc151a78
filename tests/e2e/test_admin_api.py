"""The admin API over the local HTTP API: IAM stand-in, intake jobs and the breach catalogue."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from infra.local.service import ADMIN_TOKEN_HEADER, LocalService
from tests.e2e.conftest import IDENTITIES, RecordCollector, watch_handler_logs

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
