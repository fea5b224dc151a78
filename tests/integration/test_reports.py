"""Security reports against the local stack: the monthly run, e-mails, downloads and deletion."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from pypdf import PdfReader

from idsentry.object_keys import report_prefix
from idsentry.services import subscriber_reports
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_account_api import SECOND_BREACH, _alert, _token
from tests.integration.test_breach_intake import BREACH
from tests.integration.test_sign_in import SignInHarness
from tests.integration.test_signup_service import _clear_table

pytestmark = pytest.mark.integration

SCHEDULE_EVENT = {"source": "idsentry.schedule", "job": "monthly_reports"}
# When the fixtures' long-standing subscribers signed up: before every month the tests report.
SIGNED_UP_EARLY = datetime(2026, 9, 1, tzinfo=UTC)


@dataclass
class Reports:
    """Two entitled subscribers with one alert each: 王小明 in 简体中文 and Alice in English."""

    service: LocalService
    harness: SignInHarness
    wang: str
    alice: str
    # Entitled, but signed up now: after the month the schedule reports.
    chen: str

    def call(
        self,
        method: str,
        path: str,
        subscriber: str,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> requests.Response:
        authorized = {"Authorization": f"Bearer {_token(self.harness, subscriber)}"}
        return requests.request(
            method,
            f"{self.service.base_url}{path}",
            headers={**authorized, **(headers or {})},
            timeout=30,
            **options,
        )

    def run(self) -> None:
        assert self.service.stack is not None
        self.service.stack.runtime.run_until_idle()

    def emails_to(self, person: str) -> list[dict[str, Any]]:
        """Return the report e-mails sent to the person's address, oldest first."""
        return [
            email
            for email in self.service.sent_emails()
            if f"{person}@example.com" in email["to"]
            and "account/#reports" in (email["text"] or email["body"] or "")
        ]

    def bucket_versions(self, subscriber: str) -> list[dict[str, Any]]:
        assert self.service.stack is not None
        runtime = self.service.stack.runtime
        listed = runtime.client("s3").list_object_versions(
            Bucket=runtime.environment["REPORTS_BUCKET"], Prefix=report_prefix(subscriber)
        )
        return [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]


def _entitle(harness: SignInHarness, subscriber: str) -> None:
    """Mark the subscriber paid and monitored, as the billing consumer does."""
    harness.table.update(
        f"SUB#{subscriber}",
        "PROFILE",
        "SET gsi1pk = :entitled, gsi1sk = :id, monitored = :yes, #status = :active",
        values={":entitled": "ENTITLED", ":id": subscriber, ":yes": True, ":active": "active"},
        names={"#status": "status"},
    )


def _signed_up(harness: SignInHarness, subscriber: str, when: datetime) -> None:
    """Set when the account was created, so that it predates the months a test reports."""
    harness.table.update(
        f"SUB#{subscriber}",
        "PROFILE",
        "SET created_at = :when",
        values={":when": int(when.timestamp())},
    )


@pytest.fixture(scope="module")
def reports(local_service: LocalService) -> Iterator[Reports]:
    harness = SignInHarness(local_service, MovableClock())
    wang = harness.subscriber("wang")
    alice = harness.subscriber("alice")
    chen = harness.subscriber("chen")
    for subscriber in (wang, alice, chen):
        _entitle(harness, subscriber)
    for subscriber in (wang, alice):
        _signed_up(harness, subscriber, SIGNED_UP_EARLY)
    harness.table.update(
        f"SUB#{alice}",
        "PROFILE",
        "SET #locale = :en",
        values={":en": "en"},
        names={"#locale": "locale"},
    )
    _alert(harness, wang, BREACH)
    _alert(harness, alice, SECOND_BREACH)
    yield Reports(service=local_service, harness=harness, wang=wang, alice=alice, chen=chen)
    _clear_table(local_service)


@pytest.fixture(scope="module")
def monthly_run(reports: Reports) -> dict[str, Any]:
    assert reports.service.stack is not None
    planned: dict[str, Any] = reports.service.stack.runtime.invoke(
        "ReportPlannerFunction", SCHEDULE_EVENT
    )
    reports.run()
    return planned


def _listed(reports: Reports, subscriber: str) -> list[dict[str, Any]]:
    response = reports.call("GET", "/v1/account/reports", subscriber)
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["reports"]
    return listed


def test_monthly_run_queues_each_entitled(monthly_run: dict[str, Any]) -> None:
    assert monthly_run["queued"] == 2
    assert monthly_run["skipped"] == 1
    assert monthly_run["already_announced"] == 0
    assert monthly_run["already_finished"] is False


def test_month_before_signup_not_reported(reports: Reports, monthly_run: dict[str, Any]) -> None:
    assert reports.service.stack is not None
    runtime = reports.service.stack.runtime
    # A job that skipped the planner's check, as a replay from the DLQ would.
    job = subscriber_reports.monthly_job(reports.chen, monthly_run["month"])
    runtime.client("sqs").send_message(
        QueueUrl=runtime.environment["REPORT_QUEUE_URL"], MessageBody=job.model_dump_json()
    )
    reports.run()

    assert reports.harness.table.get_prefix(f"SUB#{reports.chen}", "REPORT#") == {}
    assert reports.bucket_versions(reports.chen) == []
    assert reports.emails_to("chen") == []


def test_monthly_report_stored_and_listed(reports: Reports, monthly_run: dict[str, Any]) -> None:
    listed = _listed(reports, reports.wang)

    assert [(entry["report_kind"], entry["month"]) for entry in listed] == [
        ("monthly", monthly_run["month"])
    ]
    assert listed[0]["formats"] == ["html", "pdf"]
    keys = sorted(
        version["Key"].rsplit("/", 1)[1] for version in reports.bucket_versions(reports.wang)
    )
    assert keys == ["report.html", "report.pdf"]


def test_monthly_report_emailed_in_locale(reports: Reports, monthly_run: dict[str, Any]) -> None:
    wang_mail = reports.emails_to("wang")
    alice_mail = reports.emails_to("alice")

    assert len(wang_mail) == 1
    assert "月度安全报告" in wang_mail[0]["subject"]
    assert monthly_run["month"] in wang_mail[0]["text"]
    assert "/signup/account/#reports" in wang_mail[0]["text"]
    assert len(alice_mail) == 1
    assert "monthly security report" in alice_mail[0]["subject"]
    assert "/signup/en/account/#reports" in alice_mail[0]["text"]


def test_repeated_run_sends_nothing(reports: Reports, monthly_run: dict[str, Any]) -> None:
    assert reports.service.stack is not None
    again = reports.service.stack.runtime.invoke("ReportPlannerFunction", SCHEDULE_EVENT)
    job = subscriber_reports.monthly_job(reports.wang, monthly_run["month"])
    reports.service.stack.runtime.client("sqs").send_message(
        QueueUrl=reports.service.stack.runtime.environment["REPORT_QUEUE_URL"],
        MessageBody=job.model_dump_json(),
    )
    reports.run()

    assert again["already_finished"] is True
    assert len(reports.emails_to("wang")) == 1
    assert len(reports.bucket_versions(reports.wang)) == 2


def test_pdf_download_has_chinese_text(reports: Reports, monthly_run: dict[str, Any]) -> None:
    report_id = _listed(reports, reports.wang)[0]["report_id"]

    link = reports.call("GET", f"/v1/account/reports/{report_id}/pdf", reports.wang)
    assert link.status_code == 200, link.text
    downloaded = requests.get(link.json()["url"], timeout=30)

    assert downloaded.status_code == 200
    assert downloaded.content.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(downloaded.content)).pages)
    assert "安全报告" in text
    assert "138****8001" in text
    # The alert was found this month, after the reported month ended.
    assert BREACH["Title"] not in text


def test_download_link_lasts_minutes(reports: Reports, monthly_run: dict[str, Any]) -> None:
    from datetime import UTC, datetime
    from urllib.parse import parse_qs, urlparse

    report_id = _listed(reports, reports.wang)[0]["report_id"]

    link = reports.call("GET", f"/v1/account/reports/{report_id}/pdf", reports.wang)
    query = parse_qs(urlparse(link.json()["url"]).query)

    # Signature Version 4 links state their start and lifetime. S3 refuses them once expired;
    # moto does not check expiry, so the lifetime is checked here.
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert int(query["X-Amz-Expires"][0]) <= 300
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 120


def test_html_download_in_english(reports: Reports, monthly_run: dict[str, Any]) -> None:
    report_id = _listed(reports, reports.alice)[0]["report_id"]

    link = reports.call("GET", f"/v1/account/reports/{report_id}/html", reports.alice)
    page = requests.get(link.json()["url"], timeout=30).content.decode("utf-8")

    assert '<html lang="en"' in page
    assert "security report" in page.lower()


def test_download_bad_format_names_field(reports: Reports, monthly_run: dict[str, Any]) -> None:
    report_id = _listed(reports, reports.wang)[0]["report_id"]

    response = reports.call("GET", f"/v1/account/reports/{report_id}/docx", reports.wang)

    assert response.status_code == 422
    assert "format" in response.text
    assert "html 或 pdf" in response.text


def test_download_of_unknown_report(reports: Reports, monthly_run: dict[str, Any]) -> None:
    response = reports.call("GET", "/v1/account/reports/rpt_unknown/pdf", reports.wang)

    assert response.status_code == 404


def test_on_demand_same_day_same_report(reports: Reports, monthly_run: dict[str, Any]) -> None:
    first = reports.call("POST", "/v1/account/reports", reports.alice)
    second = reports.call("POST", "/v1/account/reports", reports.alice)
    reports.run()
    listed = _listed(reports, reports.alice)

    assert first.status_code == 202, first.text
    assert first.json()["report_id"] == second.json()["report_id"]
    assert [entry["report_kind"] for entry in listed].count("on_demand") == 1
    link = reports.call(
        "GET", f"/v1/account/reports/{first.json()['report_id']}/html", reports.alice
    )
    page = requests.get(link.json()["url"], timeout=30).content.decode("utf-8")
    assert SECOND_BREACH["Title"] in page
    assert len([m for m in reports.emails_to("alice") if "security report" in m["subject"]]) == 2


def test_on_demand_ready_message(reports: Reports, monthly_run: dict[str, Any]) -> None:
    first = reports.call("POST", "/v1/account/reports", reports.wang)
    reports.run()
    again = reports.call("POST", "/v1/account/reports", reports.wang)
    in_english = reports.call(
        "POST", "/v1/account/reports", reports.wang, headers={"Accept-Language": "en"}
    )

    assert first.json()["state"] == "queued"
    assert "正在生成" in first.json()["message"]
    assert again.status_code == 202, again.text
    assert again.json()["report_id"] == first.json()["report_id"]
    assert again.json()["state"] == "announced"
    assert "今天已经生成" in again.json()["message"]
    assert "报告列表" in again.json()["message"]
    assert "正在生成" not in again.json()["message"]
    assert "already made today" in in_english.json()["message"]
    assert "list of reports" in in_english.json()["message"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ('{"month": "2026-11"}', [("month", "field.unknown")]),
        ('{"foo": 1, "bar": 2}', [("bar", "field.unknown"), ("foo", "field.unknown")]),
        ('{"month": ', [("body", "request.invalid_json")]),
        ("[]", [("body", "request.invalid_json")]),
    ],
)
def test_on_demand_body_checked(
    reports: Reports, monthly_run: dict[str, Any], body: str, fields: list[tuple[str, str]]
) -> None:
    headers = {"Content-Type": "application/json"}
    in_chinese = reports.call(
        "POST",
        "/v1/account/reports",
        reports.alice,
        {**headers, "Accept-Language": "zh-CN"},
        data=body,
    )
    in_english = reports.call(
        "POST",
        "/v1/account/reports",
        reports.alice,
        {**headers, "Accept-Language": "en"},
        data=body,
    )

    for response in (in_chinese, in_english):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "request.invalid"
        assert [(field["field"], field["code"]) for field in error["fields"]] == fields
    assert in_chinese.json()["error"]["message"].startswith("请求中有字段无效")
    assert in_english.json()["error"]["message"].startswith("Some fields in the request")


@pytest.mark.parametrize("body", [None, "{}"])
def test_on_demand_empty_body_accepted(
    reports: Reports, monthly_run: dict[str, Any], body: str | None
) -> None:
    headers = {"Content-Type": "application/json"} if body is not None else {}

    response = reports.call("POST", "/v1/account/reports", reports.alice, headers, data=body)

    assert response.status_code == 202, response.text
    assert response.json()["month"] == subscriber_reports.current_month(datetime.now(UTC))


def test_dossier_for_police_in_chinese(reports: Reports, monthly_run: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {_token(reports.harness, reports.wang)}"}
    created = requests.post(
        f"{reports.service.base_url}/v1/account/dossier",
        json={"audience": "police", "breach_names": [BREACH["Name"]]},
        headers=headers,
        timeout=30,
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["reference"].startswith("DOS-")
    pdf = requests.get(body["url"], timeout=30).content
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    masked = reports.harness.table.get(f"SUB#{reports.wang}", "IDENT#id_number")
    assert masked is not None
    assert body["reference"] in text
    assert masked["masked"] in text
    assert "110105199003071239" not in text


def test_dossier_of_unknown_breach_named(reports: Reports, monthly_run: dict[str, Any]) -> None:
    headers = {
        "Authorization": f"Bearer {_token(reports.harness, reports.alice)}",
        "Accept-Language": "en",
    }
    response = requests.post(
        f"{reports.service.base_url}/v1/account/dossier",
        json={"breach_names": [BREACH["Name"]], "audience": "bank"},
        headers=headers,
        timeout=30,
    )

    assert response.status_code == 422
    assert "breach_names" in response.text
    assert "confirmed exposures of your account" in response.text


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh-CN", "police（向公安机关报案）、bank（交给银行）、carrier（交给运营商）或 general"),
        ("en", "Choose police, bank, carrier or general."),
    ],
)
def test_dossier_bad_audience_named(
    reports: Reports, monthly_run: dict[str, Any], language: str, expected: str
) -> None:
    response = reports.call(
        "POST",
        "/v1/account/dossier",
        reports.alice,
        {"Accept-Language": language},
        json={"audience": "court"},
    )

    assert response.status_code == 422
    (problem,) = response.json()["error"]["fields"]
    assert problem["field"] == "audience"
    assert problem["code"] == "dossier.audience_invalid"
    assert expected in problem["message"]


def test_deletion_erases_every_version(reports: Reports, monthly_run: dict[str, Any]) -> None:
    assert reports.service.stack is not None
    runtime = reports.service.stack.runtime
    report_id = _listed(reports, reports.wang)[0]["report_id"]
    before = len(reports.bucket_versions(reports.wang))
    # A second version of the same file, as a re-rendered report would leave.
    runtime.client("s3").put_object(
        Bucket=runtime.environment["REPORTS_BUCKET"],
        Key=subscriber_reports.object_key(reports.wang, report_id, "html"),
        Body=b"<html></html>",
    )
    assert len(reports.bucket_versions(reports.wang)) == before + 1

    deleted = reports.call("DELETE", "/v1/account", reports.wang)
    reports.run()

    assert deleted.status_code == 202, deleted.text
    assert reports.bucket_versions(reports.wang) == []
    assert re.fullmatch(r"rpt_[0-9a-f]{26}", report_id)
