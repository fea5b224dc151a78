"""Export, deletion and consent withdrawal against the local stack: every table, bucket and provider."""

from __future__ import annotations

import copy
import io
import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from idsentry.adapters.exports import ExportObjects
from idsentry.adapters.sms import TwilioSms
from idsentry.adapters.stripe_gateway import StripeSdkGateway
from idsentry.adapters.suppression import SesSuppressionList
from idsentry.adapters.table import MainTable
from idsentry.clock import utc_now
from idsentry.crypto import Pepper
from idsentry.errors import NotFoundError
from idsentry.services import consent_withdrawal, deletion, dossiers, export, subscriber_reports
from idsentry.services.audit import AuditTrail
from idsentry.services.deletion_request import DELETION_SK, request_deletion
from idsentry.services.subscriber_records import load_records
from infra.local.service import LocalService
from tests.e2e.conftest import RecordCollector
from tests.integration import privacy_support as support
from tests.integration.conftest import MovableClock
from tests.privacy_fields import field_rows

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "events" / "http"
AUDIT_TABLE = "idsentry-local-audit"


def _account_event(sample: str, subscriber_id: str, **path: str) -> dict[str, Any]:
    """Return an account route sample as the authorizer passes it for `subscriber_id`."""
    event: dict[str, Any] = json.loads((EVENTS / sample).read_text(encoding="utf-8"))
    event["requestContext"]["authorizer"]["lambda"]["subscriber_id"] = subscriber_id
    for name, value in path.items():
        event["pathParameters"][name] = value
        event["rawPath"] = event["rawPath"].rsplit("/", 1)[0] + f"/{value}"
        event["requestContext"]["http"]["path"] = event["rawPath"]
    return event


def _invoke(service: LocalService, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = support.runtime(service).invoke("AccountFunction", event)
    return int(response["statusCode"]), json.loads(response["body"])


def _audit_actions(service: LocalService, subscriber_id: str) -> list[tuple[str, str]]:
    items = (
        support.runtime(service)
        .client("dynamodb")
        .query(
            TableName=AUDIT_TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"SUBSCRIBER#{subscriber_id}"}},
        )["Items"]
    )
    return sorted((item["action"]["S"], item["outcome"]["S"]) for item in items)


@dataclass
class Deleted:
    """What a deletion test checks afterwards, taken before the account was deleted."""

    subscriber: support.Subscriber
    needles: dict[str, str]
    pseudonym: str
    ledger: list[tuple[str, int]]
    customer_id: str
    subscription_id: str


def _snapshot(service: LocalService, subscriber: support.Subscriber) -> Deleted:
    table = support.main_table(service)
    items = table.get_partition(f"SUB#{subscriber.subscriber_id}")
    profile = items["PROFILE"]
    return Deleted(
        subscriber=subscriber,
        needles=support.personal_needles(service, subscriber),
        pseudonym=deletion.ledger_pseudonym(
            Pepper.from_secret(service.pepper), subscriber.subscriber_id
        ),
        ledger=sorted(
            (str(item["kind"]), int(item["amount"]))
            for sk, item in items.items()
            if sk.startswith("LEDGER#")
        ),
        customer_id=str(profile["stripe_customer_id"]),
        subscription_id=str(profile["subscription_id"]),
    )


def _assert_nothing_remains(service: LocalService, deleted: Deleted) -> None:
    """Check every store and provider for what deletion must have removed or redacted."""
    subscriber_id = deleted.subscriber.subscriber_id
    findings = support.scan_everything(
        service, deleted.needles, allowed=[(AUDIT_TABLE, "subscriber id")]
    )
    assert findings == [], "personal data left after deletion:\n" + "\n".join(map(str, findings))

    table = support.main_table(service)
    archived = table.get_partition(deletion.archive_pk(deleted.pseudonym))
    assert (
        sorted((str(row["kind"]), int(row["amount"])) for row in archived.values())
        == deleted.ledger
    )
    assert all(row["expires_at"] > row["archived_at"] for row in archived.values())
    link = table.get(f"STRIPECUS#{deleted.customer_id}", "LINK")
    assert link == {
        "pk": f"STRIPECUS#{deleted.customer_id}",
        "sk": "LINK",
        "erased_ledger_pk": deletion.archive_pk(deleted.pseudonym),
        "erased_at": link["erased_at"] if link else None,
    }

    stripe = support.stripe_client(service)
    customer = stripe.v1.customers.retrieve(deleted.customer_id)
    assert (customer.name, customer.email, customer.phone, customer.address) == (
        None,
        None,
        None,
        None,
    )
    assert customer.metadata.to_dict() == {}
    assert stripe.v1.subscriptions.retrieve(deleted.subscription_id).status == "canceled"

    assert service.twilio is not None
    texts = [
        m["body"]
        for m in service.twilio.messages()
        if m["to"] == deleted.subscriber.details["mobile"]
    ]
    assert texts and set(texts) == {""}
    with pytest.raises(ClientError) as missing:
        support.runtime(service).client("sesv2").get_suppressed_destination(
            EmailAddress=deleted.subscriber.details["email"]
        )
    assert missing.value.response["Error"]["Code"] == "NotFoundException"
    assert ("account.delete", "deleted") in _audit_actions(service, subscriber_id)


# ------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def wang(local_service: LocalService) -> support.Subscriber:
    """王小明, paid, confirmed, alerted, with a failed renewal and a suppressed address."""
    subscriber = support.subscribe(local_service, "wang")
    support.add_exposure(local_service, subscriber)
    support.fail_renewal(local_service, subscriber)
    support.suppress_address(local_service, subscriber.details["email"])
    return subscriber


@pytest.fixture(scope="module")
def alice(local_service: LocalService, wang: support.Subscriber) -> support.Subscriber:
    """Alice Li, who signed up with 王小明's referral code."""
    return support.subscribe(local_service, "alice", referral_code=wang.referral_code)


class RecordingPublisher:
    """Keeps the events a report would announce, so no report e-mail goes out."""

    def __init__(self) -> None:
        self.details: list[Any] = []

    def publish(self, details: list[Any]) -> None:
        self.details.extend(details)


@dataclass
class StoredReports:
    """王小明's report and dossier files by bucket key, with where the export puts each."""

    report_id: str
    dossier_id: str
    # An item whose files the bucket no longer has, as after the lifecycle rule.
    expired_report_id: str
    # Files the export must hold: bucket key to the path in the archive.
    files: dict[str, str]
    # A file under the account's prefix without an item, which the export must leave out.
    orphan_key: str


def _reports_bucket(service: LocalService) -> ExportObjects:
    environment = support.runtime(service).environment
    return ExportObjects(
        environment["REPORTS_BUCKET"],
        environment["DATA_KEY_ARN"],
        support.runtime(service).client("s3"),
    )


@pytest.fixture(scope="module")
def wang_reports(local_service: LocalService, wang: support.Subscriber) -> StoredReports:
    """A monthly report (its HTML rendered twice) and a dossier of 王小明, and two decoys."""
    subscriber_id = wang.subscriber_id
    table = support.main_table(local_service)
    deps = subscriber_reports.ReportDeps(
        table=table,
        objects=_reports_bucket(local_service),
        publisher=RecordingPublisher(),  # type: ignore[arg-type]
        clock=utc_now,
    )
    # 王小明 signed up before last month, or the worker would not render last month's report.
    table.update(
        f"SUB#{subscriber_id}",
        "PROFILE",
        "SET created_at = :when",
        values={":when": int(utc_now().timestamp()) - 90 * 24 * 3600},
    )
    job = subscriber_reports.monthly_job(
        subscriber_id, subscriber_reports.previous_month(utc_now())
    )
    assert subscriber_reports.generate_report(deps, job) == "generated"
    report_id = subscriber_reports.job_report_id(job)
    html_key = subscriber_reports.object_key(subscriber_id, report_id, "html")
    # A second version of the page, as a report rendered again leaves: the export takes this one.
    deps.objects.put(html_key, b"<!doctype html><p>rendered again</p>", "text/html")
    dossier = dossiers.create_dossier(deps, subscriber_id, dossiers.DossierRequest())

    expired_report_id = "rpt_" + "e" * 26
    table.put(
        {
            "pk": f"SUB#{subscriber_id}",
            "sk": f"REPORT#{expired_report_id}",
            "report_id": expired_report_id,
            "report_kind": "monthly",
            "month": "2025-01",
            "purchase_id": None,
            "generated_at": "2025-02-01T01:00:00+00:00",
            "check_results": "[]",
            "state": "announced",
        }
    )
    orphan_key = subscriber_reports.object_key(subscriber_id, "rpt_" + "0" * 26, "pdf")
    deps.objects.put(orphan_key, b"%PDF-1.7 no item refers to this", "application/pdf")

    return StoredReports(
        report_id=report_id,
        dossier_id=dossier["dossier_id"],
        expired_report_id=expired_report_id,
        files={
            html_key: f"reports/{report_id}/report.html",
            subscriber_reports.object_key(
                subscriber_id, report_id, "pdf"
            ): f"reports/{report_id}/report.pdf",
            dossiers.dossier_key(
                subscriber_id, dossier["dossier_id"]
            ): f"dossiers/{dossier['dossier_id']}.pdf",
        },
        orphan_key=orphan_key,
    )


@pytest.fixture(scope="module")
def export_created(
    local_service: LocalService,
    wang: support.Subscriber,
    alice: support.Subscriber,
    wang_reports: StoredReports,
) -> dict[str, Any]:
    status, body = _invoke(local_service, _account_event("account_export.json", wang.subscriber_id))
    assert status == 201, body
    return body


@pytest.fixture(scope="module")
def deletion_logs() -> list[str]:
    """Log lines of the handlers while 王小明's account is deleted."""
    return []


@pytest.fixture(scope="module")
def wang_deleted(
    local_service: LocalService,
    wang: support.Subscriber,
    alice: support.Subscriber,
    export_created: dict[str, Any],
    deletion_logs: list[str],
) -> Deleted:
    """Delete 王小明's account through the account route and the deletion function."""
    snapshot = _snapshot(local_service, wang)
    # Handler modules log through the package's logger. The collector is added after every
    # handler module is loaded (Powertools formats with the first handler), and always as this
    # fixture's own: another test's collector may still be attached in the same process.
    runtime = support.runtime(local_service)
    for function_id in runtime.functions:
        runtime.load_handler(function_id)
    collector = RecordCollector(deletion_logs)
    package_logger = logging.getLogger("idsentry")
    package_logger.addHandler(collector)
    try:
        status, body = _invoke(
            local_service, _account_event("account_delete.json", wang.subscriber_id)
        )
        assert status == 202, body
        support.settle(local_service)
    finally:
        package_logger.removeHandler(collector)
    return snapshot


def _export_deps(service: LocalService, clock: MovableClock) -> export.ExportDeps:
    environment = support.runtime(service).environment
    return export.ExportDeps(
        table=support.main_table(service),
        keys=support.data_keys(service),
        objects=ExportObjects(
            environment["EXPORTS_BUCKET"],
            environment["DATA_KEY_ARN"],
            support.runtime(service).client("s3"),
        ),
        audit=AuditTrail(AUDIT_TABLE, support.runtime(service).client("dynamodb")),
        clock=clock,
        report_files=_reports_bucket(service),
    )


# ---------------------------------------------------------------------------------------- export


def test_export_links_download_both_files(
    local_service: LocalService, wang: support.Subscriber, export_created: dict[str, Any]
) -> None:
    document = requests.get(export_created["links"]["json"], timeout=30)
    page = requests.get(export_created["links"]["html"], timeout=30)

    assert document.status_code == 200
    assert page.status_code == 200
    content = document.json()
    assert content["profile"]["name"] == wang.details["name"]
    assert content["profile"]["email"] == wang.details["email"]
    assert {item["kind"]: item["value"] for item in content["identifiers"]}["id_number"] == (
        wang.details["id_number"]
    )
    assert wang.details["name"] in page.text
    assert "Watched identifiers" in page.text
    assert "attachment" in document.headers.get("content-disposition", "")
    assert ("account.export", "exported") in _audit_actions(local_service, wang.subscriber_id)


def test_export_archive_holds_report_files(
    local_service: LocalService, wang_reports: StoredReports, export_created: dict[str, Any]
) -> None:
    downloaded = requests.get(export_created["links"]["zip"], timeout=30)
    archive = zipfile.ZipFile(io.BytesIO(downloaded.content))
    bucket = _reports_bucket(local_service)

    assert downloaded.status_code == 200
    assert sorted(archive.namelist()) == sorted(
        ["export.html", "export.json", *wang_reports.files.values()]
    )
    for key, path in wang_reports.files.items():
        with bucket.open_object(key) as body:
            assert archive.read(path) == body.read(), path
    assert archive.read(f"reports/{wang_reports.report_id}/report.html") == (
        b"<!doctype html><p>rendered again</p>"
    )
    assert archive.read(f"dossiers/{wang_reports.dossier_id}.pdf").startswith(b"%PDF")


def test_export_names_archived_files(
    wang_reports: StoredReports, export_created: dict[str, Any]
) -> None:
    archive = zipfile.ZipFile(
        io.BytesIO(requests.get(export_created["links"]["zip"], timeout=30).content)
    )
    document = requests.get(export_created["links"]["json"], timeout=30).json()
    page = requests.get(export_created["links"]["html"], timeout=30).text

    assert json.loads(archive.read("export.json")) == document
    assert archive.read("export.html").decode("utf-8") == page
    reports = {entry["report_id"]: entry for entry in document["reports"]}
    assert reports[wang_reports.report_id]["files"] == {
        "html": f"reports/{wang_reports.report_id}/report.html",
        "pdf": f"reports/{wang_reports.report_id}/report.pdf",
    }
    assert reports[wang_reports.expired_report_id]["files"] == {}
    (dossier,) = document["dossiers"]
    assert dossier["files"] == {"pdf": f"dossiers/{wang_reports.dossier_id}.pdf"}
    assert f"reports/{wang_reports.report_id}/report.pdf" in page


def test_streamed_upload_sent_in_parts(local_service: LocalService) -> None:
    environment = support.runtime(local_service).environment
    s3 = support.runtime(local_service).client("s3")
    objects = ExportObjects(environment["EXPORTS_BUCKET"], environment["DATA_KEY_ARN"], s3)
    key = "exports/sbr_streamtest/exp_streamtest/export.zip"
    # Two full 8 MiB parts and a short last one; each write is smaller than a part.
    chunk = bytes(range(256)) * 4096
    with objects.open_upload(key, "application/zip") as upload:
        for _ in range(17):
            upload.write(chunk)

    stored = s3.get_object(Bucket=environment["EXPORTS_BUCKET"], Key=key)

    assert stored["Body"].read() == chunk * 17
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert stored["ETag"].strip('"').endswith("-3")
    s3.delete_object(Bucket=environment["EXPORTS_BUCKET"], Key=key)


def test_failed_streamed_upload_leaves_nothing(local_service: LocalService) -> None:
    environment = support.runtime(local_service).environment
    s3 = support.runtime(local_service).client("s3")
    objects = ExportObjects(environment["EXPORTS_BUCKET"], environment["DATA_KEY_ARN"], s3)
    key = "exports/sbr_streamtest/exp_failed/export.zip"

    with pytest.raises(RuntimeError, match="stopped midway"):
        with objects.open_upload(key, "application/zip") as upload:
            upload.write(bytes(9 * 1024 * 1024))
            raise RuntimeError("stopped midway")

    assert objects.find(key) is None
    pending = s3.list_multipart_uploads(Bucket=environment["EXPORTS_BUCKET"], Prefix=key)
    assert pending.get("Uploads", []) == []


def test_export_alert_shows_why_and_how_sent(export_created: dict[str, Any]) -> None:
    content = requests.get(export_created["links"]["json"], timeout=30).json()
    (alert,) = content["alerts"]

    assert alert["severity_rule"] and alert["confidence_rule"]
    assert {delivery["channel"] for delivery in alert["deliveries"]} >= {"email"}
    assert all(
        delivery["state"] in ("sent", "failed", "unknown") for delivery in alert["deliveries"]
    )


def test_export_matches_privacy_doc(
    local_service: LocalService, wang: support.Subscriber, export_created: dict[str, Any]
) -> None:
    content = requests.get(export_created["links"]["json"], timeout=30).json()
    table = support.main_table(local_service)
    records = load_records(table, wang.subscriber_id)
    stored = dict(records.items)
    stored.update(records.signup)
    rows = field_rows()

    problems = []
    for sk, item in stored.items():
        matching = [row for row in rows if row.matches(sk)]
        section = "signup" if sk == "SIGNUP" else export._section_of(sk)
        for name in sorted(set(item) - {"pk", "sk"}):
            documented = [row for row in matching if name in row.fields]
            if not documented:
                problems.append(f"{sk}.{name} is stored but not in docs/privacy.md")
                continue
            if sk == "OTP":
                continue
            exported_name = (
                name.removesuffix(export.ENCRYPTED_SUFFIX) if name.endswith("_enc") else name
            )
            found = _in_section(content, section, exported_name)
            if documented[0].exported and not found:
                problems.append(f"{sk}.{name}: docs say exported, the export lacks it")
            if not documented[0].exported and found:
                problems.append(f"{sk}.{name}: docs say not exported, the export has it")
    assert problems == []


def _in_section(content: dict[str, Any], section: Any, name: str) -> bool:
    key = section[0] if isinstance(section, tuple) else section
    value = content.get(str(key))
    if isinstance(value, list):
        entries = value
    elif isinstance(value, dict):
        entries = [value]
    else:
        entries = []
    return any(isinstance(entry, dict) and name in entry for entry in entries)


def test_export_of_other_account_not_found(
    local_service: LocalService, alice: support.Subscriber, export_created: dict[str, Any]
) -> None:
    event = _account_event(
        "account_export_links.json", alice.subscriber_id, export_id=export_created["export_id"]
    )

    status, body = _invoke(local_service, event)

    assert status == 404
    assert body["error"]["code"] == "export.not_found"


def test_export_links_refused_after_a_day(
    local_service: LocalService, wang: support.Subscriber, export_created: dict[str, Any]
) -> None:
    clock = MovableClock(now=datetime.now(UTC))
    deps = _export_deps(local_service, clock)
    requester = export.Requester(wang.subscriber_id, "req-links")

    fresh = export.export_links(deps, requester, export_created["export_id"])
    clock.advance(hours=24)

    assert fresh["export_id"] == export_created["export_id"]
    with pytest.raises(NotFoundError):
        export.export_links(deps, requester, export_created["export_id"])


# -------------------------------------------------------------------------------------- deletion


def test_deletion_leaves_nothing_personal(
    local_service: LocalService, wang_deleted: Deleted
) -> None:
    _assert_nothing_remains(local_service, wang_deleted)
    assert (
        support.data_keys(local_service)
        ._clients()[0]
        .get_item(
            TableName="idsentry-local-keys",
            Key={"owner_id": {"S": wang_deleted.subscriber.subscriber_id}},
        )
        .get("Item")
        is None
    )


def test_deletion_logs_ids_only(wang_deleted: Deleted, deletion_logs: list[str]) -> None:
    details = wang_deleted.subscriber.details

    assert any("account deleted" in line for line in deletion_logs)
    for label in ("name", "id_number", "mobile", "email"):
        leaked = [line for line in deletion_logs if details[label] in line]
        assert leaked == [], f"the {label} appears in a log line"


def test_deletion_keeps_referee_with_pseudonym(
    local_service: LocalService, wang_deleted: Deleted, alice: support.Subscriber
) -> None:
    table = support.main_table(local_service)
    items = table.get_partition(f"SUB#{alice.subscriber_id}")

    assert items["PROFILE"]["referred_by"] == wang_deleted.pseudonym
    assert items["REFERRED_BY"]["referrer_id"] == wang_deleted.pseudonym
    assert "gsi1pk" not in items["REFERRED_BY"]
    assert {"IDENT#id_number", "IDENT#mobile", "IDENT#email"} <= set(items)
    for key in support.watch_keys_of(table, alice.subscriber_id):
        watch = table.get(key.watch_pk, "WATCH")
        assert watch is not None and alice.subscriber_id in watch["subscriber_ids"]


def test_deletion_billing_events_apply_nothing(
    local_service: LocalService, wang_deleted: Deleted
) -> None:
    dynamodb = support.runtime(local_service).client("dynamodb")
    markers = [
        support.from_raw(item)
        for page in dynamodb.get_paginator("scan").paginate(TableName="idsentry-local")
        for item in page["Items"]
        if item["pk"]["S"].startswith("STRIPE_EVENT#")
    ]

    assert "erased" in {marker["outcome"] for marker in markers}
    assert (
        support.main_table(local_service).get(
            f"SUB#{wang_deleted.subscriber.subscriber_id}", "PROFILE"
        )
        is None
    )
    assert support.dead_letters(local_service) == {}


def test_refund_after_deletion_archived(local_service: LocalService, wang_deleted: Deleted) -> None:
    stripe = support.stripe_client(local_service)
    charges = stripe.v1.charges.list(params={"customer": wang_deleted.customer_id}).data
    paid = next(charge for charge in charges if charge.paid and not charge.refunded)

    stripe.v1.refunds.create(params={"charge": paid.id, "amount": 500})
    support.settle(local_service)

    archived = support.main_table(local_service).get_partition(
        deletion.archive_pk(wang_deleted.pseudonym)
    )
    assert ("refund", -500) in {(str(row["kind"]), int(row["amount"])) for row in archived.values()}
    assert (
        support.main_table(local_service).get_partition(
            f"SUB#{wang_deleted.subscriber.subscriber_id}"
        )
        == {}
    )


def test_deletion_job_repeated_after_completion(
    local_service: LocalService, wang_deleted: Deleted
) -> None:
    deps = _deletion_deps(local_service)

    assert deletion.run_deletion(deps, wang_deleted.subscriber.subscriber_id) == "already_deleted"


def test_deletion_without_request_refused(
    local_service: LocalService, alice: support.Subscriber
) -> None:
    deps = _deletion_deps(local_service)

    assert deletion.run_deletion(deps, alice.subscriber_id) == "not_requested"
    assert (
        support.main_table(local_service).get(f"SUB#{alice.subscriber_id}", "PROFILE") is not None
    )


def _deletion_deps(service: LocalService) -> deletion.DeletionDeps:
    runtime = support.runtime(service)
    environment = runtime.environment
    assert service.stripe_shim is not None and service.twilio is not None
    return deletion.DeletionDeps(
        table=support.main_table(service),
        keys=support.data_keys(service),
        pepper=lambda: Pepper.from_secret(service.pepper),
        stripe=lambda: StripeSdkGateway(
            "sk_test_localstripe", base_url=service.stripe_shim.base_url
        ),  # type: ignore[union-attr]
        sms=lambda: TwilioSms(
            service.twilio_account_sid,
            service.twilio_auth_token,
            service.twilio_messaging_service_sid,
            base_url=service.twilio.base_url,  # type: ignore[union-attr]
        ),
        suppressions=lambda: SesSuppressionList(runtime.client("sesv2")),
        exports=ExportObjects(
            environment["EXPORTS_BUCKET"], environment["DATA_KEY_ARN"], runtime.client("s3")
        ),
        reports=ExportObjects(
            environment["REPORTS_BUCKET"], environment["DATA_KEY_ARN"], runtime.client("s3")
        ),
        breach_index=MainTable(environment["BREACH_INDEX_TABLE"], runtime.client("dynamodb")),
        audit=AuditTrail(AUDIT_TABLE, runtime.client("dynamodb")),
        clock=support.utc_now,
    )


class StepCrash(RuntimeError):
    """The failure a test injects into one deletion step."""


@pytest.mark.parametrize(
    ("step", "when"),
    [(step, "after") for step in deletion.STEPS] + [("references", "before"), ("twilio", "before")],
)
def test_deletion_resumes_after_crash(
    local_service: LocalService,
    wang_deleted: Deleted,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    when: str,
) -> None:
    chen = support.subscribe(local_service, "chen")
    support.add_exposure(local_service, chen)
    support.suppress_address(local_service, chen.details["email"])
    snapshot = _snapshot(local_service, chen)
    table = support.main_table(local_service)
    request_deletion(
        table,
        support.NullQueue(),
        AuditTrail(AUDIT_TABLE, support.runtime(local_service).client("dynamodb")),
        chen.subscriber_id,
        "req-crash",
        support.utc_now,
    )
    real_step = deletion._STEP_FUNCTIONS[step]

    def crashing(deps: deletion.DeletionDeps, run: Any) -> None:
        if when == "after":
            real_step(deps, run)
        raise StepCrash(step)

    monkeypatch.setitem(deletion._STEP_FUNCTIONS, step, crashing)
    with pytest.raises(StepCrash):
        deletion.run_deletion(_deletion_deps(local_service), chen.subscriber_id)
    progress = table.get(f"SUB#{chen.subscriber_id}", DELETION_SK)
    monkeypatch.setitem(deletion._STEP_FUNCTIONS, step, real_step)

    rerun = deletion.run_deletion(_deletion_deps(local_service), chen.subscriber_id)
    if (step, when) == ("finish", "after"):
        # The last step deletes the deletion item itself, so nothing is left to resume.
        assert progress is None
        assert rerun == "already_deleted"
    else:
        assert progress is not None
        assert set(progress.get("steps_done") or ()) == set(
            deletion.STEPS[: deletion.STEPS.index(step)]
        )
        assert rerun == "deleted"
    support.settle(local_service)
    _assert_nothing_remains(local_service, snapshot)


# ---------------------------------------------------------------------------- consent withdrawal


def test_withdrawal_removes_sensitive_identifiers(local_service: LocalService) -> None:
    li = support.subscribe(local_service, "li")
    table = support.main_table(local_service)
    card = support.add_bank_card(local_service, li)
    support.add_exposure(local_service, li)
    before = table.get_partition(f"SUB#{li.subscriber_id}")
    id_keys = support.watch_keys_of(table, li.subscriber_id, ("id_number",))
    kept_keys = support.watch_keys_of(table, li.subscriber_id, ("mobile", "email"))

    status, body = _invoke(
        local_service, _account_event("account_withdraw_sensitive_consent.json", li.subscriber_id)
    )
    after = table.get_partition(f"SUB#{li.subscriber_id}")

    assert status == 200, body
    assert body["identifiers_removed"] == ["bank_card", "id_number"]
    assert body["still_watched"] == ["email", "mobile"]
    assert not {"IDENT#id_number", card.item_sk} & set(after)
    assert {"IDENT#mobile", "IDENT#email", "EXPOSURE#PrivacyTestShop2026"} <= set(after)
    consent = after["PROFILE"]["consents"]["sensitive_personal_information"]
    assert consent["withdrawn_at"] >= before["PROFILE"]["created_at"]
    assert consent["version"] == "2026-12-01"
    for key in [*id_keys, card.watch_key]:
        assert table.get(key.watch_pk, "WATCH") is None
        assert support.breach_index(local_service).get_partition(key.index_pk) == {}
    for key in id_keys:
        assert table.get(f"CLAIM#id_number#{key.version}#{key.value}", "CLAIM") is None
    for key in kept_keys:
        assert li.subscriber_id in table.get(key.watch_pk, "WATCH")["subscriber_ids"]  # type: ignore[index]


def test_withdrawal_repeated_changes_nothing(local_service: LocalService) -> None:
    sun = support.subscribe(local_service, "sun")
    table = support.main_table(local_service)
    first = consent_withdrawal.withdraw_sensitive_consent(
        table, support.breach_index(local_service), sun.subscriber_id, support.utc_now
    )
    items = table.get_partition(f"SUB#{sun.subscriber_id}")

    second = consent_withdrawal.withdraw_sensitive_consent(
        table, support.breach_index(local_service), sun.subscriber_id, support.utc_now
    )

    assert second["withdrawn_at"] == first["withdrawn_at"]
    assert second["identifiers_removed"] == []
    assert table.get_partition(f"SUB#{sun.subscriber_id}") == items


def test_withdrawal_of_unknown_account(local_service: LocalService) -> None:
    with pytest.raises(NotFoundError):
        consent_withdrawal.withdraw_sensitive_consent(
            support.main_table(local_service),
            support.breach_index(local_service),
            "sbr_01M91Z0000000000000000000Z",
            support.utc_now,
        )


def test_deletion_request_of_unknown_account(local_service: LocalService) -> None:
    status, body = _invoke(
        local_service, _account_event("account_delete.json", "sbr_01M91Z0000000000000000000Z")
    )

    assert status == 404
    assert body["error"]["code"] == "account.not_found"


@pytest.fixture(autouse=True)
def _no_leftover_patches() -> Iterator[None]:
    snapshot = copy.copy(deletion._STEP_FUNCTIONS)
    yield
    assert deletion._STEP_FUNCTIONS == snapshot
