"""Breach intake through the local stack: S3 upload, chunk jobs, index, exposures, job record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from idsentry.adapters.table import MainTable
from idsentry.services import intake, signup
from infra.local.service import LocalService
from infra.local.zones import daytime_zone
from tests.integration.conftest import MovableClock
from tests.integration.test_signup_service import PEOPLE, Harness, _clear_table

pytestmark = pytest.mark.integration

PROVENANCE = {
    "source": "Test fixture written for this test; no real people",
    "legal_basis": "PIPL art. 13(7): processing publicly disclosed data within a reasonable scope",
    "approved_by": "operator-1",
    "approved_at": "2026-12-04T08:00:00+08:00",
}
BREACH = {
    "Name": "ExampleShop2026",
    "Title": "Example Shop",
    "Domain": "shop.example.com",
    "BreachDate": "2026-10-01",
    "DataClasses": ["Names", "Government issued IDs", "Phone numbers", "Email addresses"],
    "IsVerified": True,
}
COLUMNS = {"姓名": "name", "身份证号": "id_number", "手机号": "mobile", "邮箱": "email"}


def _manifest(**changes: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "breach": dict(BREACH),
        "encoding": "gb18030",
        "format": "csv",
        "columns": COLUMNS,
        "provenance": PROVENANCE,
    }
    manifest.update(changes)
    return manifest


def _rows() -> str:
    wang_name, wang_id, wang_mobile = PEOPLE["wang"]
    # 王小明's ID number in its 15-digit legacy form and his mobile with full-width digits.
    legacy = wang_id[:6] + wang_id[8:17]
    wide_mobile = "".join(chr(ord(digit) + 0xFEE0) for digit in wang_mobile[3:])
    return (
        "姓名,身份证号,手机号,邮箱\n"
        f"{wang_name},{legacy},+86 {wide_mobile},\n"
        f"{wang_name},{wang_id},{wang_mobile},\n"
        "张三,110101199001011234,13912345678,zhang@example.com\n"
        "broken line without enough fields\n"
        "李四,not-an-id,12345,not-an-email\n"
    )


@pytest.fixture
def harness(local_service: LocalService) -> Iterator[Harness]:
    yield Harness(local_service, MovableClock())
    _clear_table(local_service)


def _env(service: LocalService) -> dict[str, str]:
    assert service.stack is not None
    return service.stack.runtime.environment


def _upload(service: LocalService, prefix: str, data: bytes, manifest: dict[str, Any]) -> None:
    assert service.stack is not None
    s3 = service.stack.runtime.client("s3")
    bucket = _env(service)["INTAKE_BUCKET"]
    s3.put_object(Bucket=bucket, Key=f"{prefix}/data.csv", Body=data)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest.json", Body=json.dumps(manifest).encode())
    service.stack.runtime.run_until_idle()


def _jobs(table: MainTable, client: Any) -> list[dict[str, Any]]:
    items = client.scan(
        TableName=table.name,
        FilterExpression="sk = :job",
        ExpressionAttributeValues={":job": {"S": "JOB"}},
    )["Items"]
    return [table.get(item["pk"]["S"], "JOB") or {} for item in items]


def _subscriber(harness: Harness, *, monitored: bool = True) -> str:
    # The notifier runs on the real clock here: a daytime zone keeps quiet hours out of the way.
    signup_id = harness.create("wang", timezone=daytime_zone())
    result = signup.verify_signup(harness.deps, signup_id, harness.send_code(signup_id))
    subscriber_id = str(result["subscriber_id"])
    if monitored:
        harness.table.update(
            f"SUB#{subscriber_id}", "PROFILE", "SET monitored = :true", values={":true": True}
        )
    return subscriber_id


def test_upload_finds_subscriber_once(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)

    _upload(harness.service, "incoming/shop", _rows().encode("gb18030"), _manifest())

    jobs = _jobs(harness.table, harness.dynamodb)
    assert len(jobs) == 1
    job = jobs[0]
    assert job["status"] == "done"
    assert (job["rows_read"], job["rows_accepted"], job["exposures"]) == (5, 3, 1)
    exposure = harness.table.get(f"SUB#{subscriber_id}", "EXPOSURE#ExampleShop2026")
    assert exposure is not None
    assert exposure["matched_kinds"] == {"id_number", "mobile"}
    assert exposure["announced"] is True
    catalogue = harness.table.get("BREACH#ExampleShop2026", "BREACH")
    assert catalogue is not None and catalogue["source"] == "dataset"
    assert harness.service.stack is not None
    listed = harness.service.stack.runtime.client("s3").list_objects_v2(
        Bucket=_env(harness.service)["INTAKE_BUCKET"]
    )
    assert listed.get("KeyCount", 0) == 0


def test_reupload_adds_no_exposure(harness: Harness) -> None:
    _subscriber(harness)
    data = _rows().encode("gb18030")
    _upload(harness.service, "incoming/shop", data, _manifest())

    changed = _manifest(breach={**BREACH, "Description": "Second upload"})
    _upload(harness.service, "incoming/shop-again", data, changed)

    jobs = sorted(_jobs(harness.table, harness.dynamodb), key=lambda job: job["created_at"])
    assert [job["status"] for job in jobs] == ["done", "done"]
    assert sum(job["exposures"] for job in jobs) == 1


def test_manifest_without_provenance_rejected(harness: Harness) -> None:
    manifest = _manifest()
    del manifest["provenance"]

    _upload(harness.service, "incoming/no-provenance", _rows().encode("gb18030"), manifest)

    (job,) = _jobs(harness.table, harness.dynamodb)
    assert (job["status"], job["reason"]) == ("rejected", "manifest_invalid")
    assert "provenance" in job["detail"]["fields"]


def test_wrong_encoding_rejected(harness: Harness) -> None:
    _upload(
        harness.service,
        "incoming/wrong-encoding",
        _rows().encode("gb18030"),
        _manifest(encoding="utf-8"),
    )

    (job,) = _jobs(harness.table, harness.dynamodb)
    assert (job["status"], job["reason"]) == ("rejected", "encoding_mismatch")
    assert job.get("exposures") is None


def test_multiline_file_read_in_pieces(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    subscriber_id = _subscriber(harness)
    wang_name, wang_id, wang_mobile = PEOPLE["wang"]
    filler = "".join(
        f'张{n},"北京市\n朝阳区{n}号",110101199001011234,1391234{n:04d},\n' for n in range(3000)
    )
    data = (
        "姓名,地址,身份证号,手机号,邮箱\n" + filler + f"{wang_name},北京,{wang_id},{wang_mobile},\n"
    )
    manifest = _manifest(
        columns={**COLUMNS, "地址": "address"},
        multiline_fields=True,
        breach={**BREACH, "DataClasses": [*BREACH["DataClasses"], "Physical addresses"]},
    )
    # The first invocation runs out of time after its first records, as a 15-minute Lambda
    # run would on a large file. The next one resumes from its checkpoint.
    calls = []
    real_ingest = intake.ingest_records

    def ingest_with_deadline(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["start_offset"])
        kwargs["should_stop"] = lambda: len(calls) == 1
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(intake, "ingest_records", ingest_with_deadline)

    _upload(harness.service, "incoming/multiline", data.encode("gb18030"), manifest)

    (job,) = _jobs(harness.table, harness.dynamodb)
    assert job["status"] == "done"
    assert (job["chunks_total"], job["chunks_done"]) == (1, 1)
    assert job["rows_read"] == 3001
    assert len(calls) == 2
    assert calls[1] > calls[0]
    pieces = harness.table.get_partition(f"INTAKE#{job['job_id']}")
    assert len([sk for sk in pieces if sk.startswith("CHUNK#")]) == 2
    assert harness.table.get(f"SUB#{subscriber_id}", "EXPOSURE#ExampleShop2026") is not None


class RecordingJobs:
    """Keeps chunk jobs in memory, so the test runs them with its own dependencies."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def send(self, job: Any) -> None:
        self.jobs.append(job)

    def send_many(self, jobs: list[Any]) -> None:
        self.jobs.extend(jobs)


def _count_index(harness: Harness) -> int:
    table = _env(harness.service)["BREACH_INDEX_TABLE"]
    return int(harness.dynamodb.scan(TableName=table, Select="COUNT")["Count"])


def _manual_deps(
    harness: Harness, prefix: str, jobs: RecordingJobs, breach_name: str, *, match_only: bool
) -> intake.IntakeDeps:
    """Upload the test rows under `prefix` and return intake dependencies that keep chunk jobs."""
    from idsentry.adapters.batch import BatchTable
    from idsentry.adapters.objects import IntakeObjects

    env = _env(harness.service)
    assert harness.service.stack is not None
    s3 = harness.service.stack.runtime.client("s3")
    manifest = _manifest(breach={**BREACH, "Name": breach_name})
    s3.put_object(
        Bucket=env["INTAKE_BUCKET"], Key=f"{prefix}/data.csv", Body=_rows().encode("gb18030")
    )
    s3.put_object(
        Bucket=env["INTAKE_BUCKET"],
        Key=f"{prefix}/manifest.json",
        Body=json.dumps(manifest).encode(),
    )
    return intake.IntakeDeps(
        table=harness.table,
        watchers=BatchTable(harness.table.name, harness.dynamodb),
        index=BatchTable(env["BREACH_INDEX_TABLE"], harness.dynamodb),
        objects=IntakeObjects(env["INTAKE_BUCKET"], s3),
        chunks=jobs,  # type: ignore[arg-type]
        publisher=harness.deps.publisher,
        pepper=lambda: harness.pepper,
        clock=harness.clock,
        chunk_bytes=1024 * 1024,
        retention_days=30,
        match_only=match_only,
    )


def test_match_only_keeps_matches(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    before = _count_index(harness)
    jobs = RecordingJobs()
    deps = _manual_deps(harness, "manual/match-only", jobs, "MatchOnlyLeak", match_only=True)

    intake.start_intake(deps, "manual/match-only/manifest.json")
    outcomes = [intake.ingest_chunk(deps, job) for job in jobs.jobs]

    assert outcomes == ["done"]
    # Only 王小明's ID number and mobile matched: the other rows leave nothing behind.
    assert _count_index(harness) - before == 2
    assert harness.table.get(f"SUB#{subscriber_id}", "EXPOSURE#MatchOnlyLeak") is not None


def test_redelivered_chunk_changes_nothing(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    jobs = RecordingJobs()
    deps = _manual_deps(harness, "manual/redelivery", jobs, "RedeliveredLeak", match_only=False)
    intake.start_intake(deps, "manual/redelivery/manifest.json")
    (chunk,) = jobs.jobs
    assert intake.ingest_chunk(deps, chunk) == "done"
    first = harness.table.get(f"INTAKE#{chunk.job_id}", "JOB")

    again = intake.ingest_chunk(deps, chunk)

    assert again == "duplicate"
    assert harness.table.get(f"INTAKE#{chunk.job_id}", "JOB") == first
    exposure = harness.table.get(f"SUB#{subscriber_id}", "EXPOSURE#RedeliveredLeak")
    assert exposure is not None and exposure["announced"] is True


def test_unpaid_watcher_not_told(harness: Harness) -> None:
    subscriber_id = _subscriber(harness, monitored=False)

    _upload(harness.service, "incoming/unpaid", _rows().encode("gb18030"), _manifest())

    (job,) = _jobs(harness.table, harness.dynamodb)
    assert (job["status"], job["exposures"]) == ("done", 0)
    assert harness.table.get(f"SUB#{subscriber_id}", "EXPOSURE#ExampleShop2026") is None


def test_same_upload_again_deleted(harness: Harness) -> None:
    data = _rows().encode("gb18030")
    _upload(harness.service, "incoming/same", data, _manifest())

    _upload(harness.service, "incoming/same", data, _manifest())

    assert len(_jobs(harness.table, harness.dynamodb)) == 1
    assert harness.service.stack is not None
    listed = harness.service.stack.runtime.client("s3").list_objects_v2(
        Bucket=_env(harness.service)["INTAKE_BUCKET"], Prefix="incoming/same/"
    )
    assert listed.get("KeyCount", 0) == 0


def test_exposure_becomes_confirmed_alert(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)

    _upload(harness.service, "incoming/alert", _rows().encode("gb18030"), _manifest())

    alert = harness.table.get(f"SUB#{subscriber_id}", "ALERT#ExampleShop2026")
    assert alert is not None
    # An exact ID-number match in a verified breach: high confidence, confirmed by the rules.
    assert (alert["confidence"], alert["status"]) == ("high", "confirmed")
    assert alert["severity"] == "high"


def test_unverified_breach_waits_for_review(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    manifest = _manifest(breach={**BREACH, "Name": "UnverifiedShop", "IsVerified": False})

    _upload(harness.service, "incoming/unverified", _rows().encode("gb18030"), manifest)

    alert = harness.table.get(f"SUB#{subscriber_id}", "ALERT#UnverifiedShop")
    assert alert is not None
    assert alert["status"] == "pending_review"
    assert alert["gsi1pk"] == "REVIEW"


def test_confirmed_alert_reaches_subscriber(harness: Harness) -> None:
    subscriber_id = _subscriber(harness)
    assert harness.service.twilio is not None
    mobile = PEOPLE["wang"][2]
    sms_before = len([m for m in harness.service.twilio.messages() if m["to"] == mobile])

    _upload(harness.service, "incoming/notify", _rows().encode("gb18030"), _manifest())

    ledger = harness.table.get_partition("NOTIFY#alert:" + _alert_id(harness, subscriber_id))
    assert set(ledger) == {"email", "sms"}
    assert all(item["state"] == "sent" for item in ledger.values())
    emails = [e for e in harness.service.sent_emails() if e["to"] == ["wang@example.com"]]
    assert "Example Shop" in emails[-1]["subject"]
    messages = [m for m in harness.service.twilio.messages() if m["to"] == mobile]
    assert len(messages) == sms_before + 1
    assert "http" not in messages[-1]["body"]


def _alert_id(harness: Harness, subscriber_id: str) -> str:
    alert = harness.table.get(f"SUB#{subscriber_id}", "ALERT#ExampleShop2026")
    assert alert is not None
    return str(alert["alert_id"])


def _notification(bucket: str, key: str, etag: str) -> str:
    """Return the body of an S3 ObjectCreated notification of one upload, as SQS carries it."""
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "eTag": etag}},
    }
    return json.dumps({"Records": [record]})


def _put_manifest(harness: Harness, prefix: str, manifest: dict[str, Any]) -> str:
    """Upload the test rows and `manifest` without running the queues; returns the ETag."""
    assert harness.service.stack is not None
    s3 = harness.service.stack.runtime.client("s3")
    bucket = _env(harness.service)["INTAKE_BUCKET"]
    s3.put_object(Bucket=bucket, Key=f"{prefix}/data.csv", Body=_rows().encode("gb18030"))
    uploaded = s3.put_object(
        Bucket=bucket, Key=f"{prefix}/manifest.json", Body=json.dumps(manifest).encode()
    )
    return str(uploaded["ETag"]).strip('"')


def test_repeated_notification_after_files_deleted(harness: Harness) -> None:
    from idsentry.routes.breach_jobs import process_intake_record

    etag = _put_manifest(harness, "incoming/repeat", _manifest())
    assert harness.service.stack is not None
    harness.service.stack.runtime.run_until_idle()
    bucket = _env(harness.service)["INTAKE_BUCKET"]

    # The done job deleted both files, and SQS delivers the notification once more.
    outcome = process_intake_record(
        "repeat-1", _notification(bucket, "incoming/repeat/manifest.json", etag)
    )

    assert outcome == "done"
    (job,) = _jobs(harness.table, harness.dynamodb)
    assert job["status"] == "done"


def test_stale_notification_keeps_newer_upload(harness: Harness) -> None:
    from idsentry.routes.breach_jobs import process_intake_record

    first = _put_manifest(harness, "incoming/replaced", _manifest())
    assert harness.service.stack is not None
    harness.service.stack.runtime.run_until_idle()
    changed = _manifest(breach={**BREACH, "Description": "Second upload"})
    second = _put_manifest(harness, "incoming/replaced", changed)
    bucket = _env(harness.service)["INTAKE_BUCKET"]
    key = "incoming/replaced/manifest.json"

    # The first upload's notification arrives again before the second upload's is processed.
    outcome = process_intake_record("stale-1", _notification(bucket, key, first))
    s3 = harness.service.stack.runtime.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="incoming/replaced/")

    assert outcome == "done"
    assert listed.get("KeyCount", 0) == 2
    skipped = process_intake_record("stale-2", _notification(bucket, key, "0" * 32))
    assert skipped == "skipped"
    harness.service.stack.runtime.run_until_idle()
    jobs = _jobs(harness.table, harness.dynamodb)
    assert sorted(job["status"] for job in jobs) == ["done", "done"]
    assert second != first
