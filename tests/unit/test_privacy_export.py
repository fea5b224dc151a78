"""The export document, its HTML form, the field table of docs/privacy.md and the deletion plan."""

from __future__ import annotations

import contextlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from idsentry.adapters import exports
from idsentry.crypto import Pepper, encrypt_field
from idsentry.services import deletion, export, export_bundle
from idsentry.services.export_html import render_html
from idsentry.services.subscriber_records import SubscriberRecords, message_keys, watch_keys
from tests.privacy_fields import field_rows

pytestmark = pytest.mark.unit

SUBSCRIBER = "sbr_01M91B4ABG36G2R8D4PV2HM6CG"
OTHER = "sbr_01M91C0000000000000000000Z"
MOMENT = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
PEPPER = Pepper.from_secret({"current": "1", "1": "unit-test-pepper-of-at-least-32-chars"})


def _records(key: bytes) -> SubscriberRecords:
    def sealed(value: str) -> str:
        return encrypt_field(key, SUBSCRIBER, value)

    pk = f"SUB#{SUBSCRIBER}"
    items = {
        "PROFILE": {
            "pk": pk,
            "sk": "PROFILE",
            "subscriber_id": SUBSCRIBER,
            "signup_id": "sgn_01M91A0000000000000000000A",
            "status": "active",
            "name_enc": sealed("王<小>明"),
            "mobile_enc": sealed("+8613800138001"),
            "email_enc": sealed("wangxm@example.com"),
            "email_fp": "1:" + "e" * 64,
            "card_fingerprints": {"cardfp1"},
            "referred_by": OTHER,
            "consents": {"terms": {"version": "2026-12-01", "accepted_at": "2026-12-01T00:00:00Z"}},
            "gsi1pk": "ENTITLED",
            "gsi1sk": SUBSCRIBER,
        },
        "PREFS": {
            "pk": pk,
            "sk": "PREFS",
            "timezone": "Asia/Shanghai",
            "email_lists_off": {"reports"},
        },
        "IDENT#id_number": {
            "pk": pk,
            "sk": "IDENT#id_number",
            "kind": "id_number",
            "value_enc": sealed("110105199003071239"),
            "masked": "1101**********1239",
            "fingerprints": {"1": "a" * 64},
        },
        "IDENT#mobile": {
            "pk": pk,
            "sk": "IDENT#mobile",
            "kind": "mobile",
            "value_enc": sealed("+8613800138001"),
            "masked": "138****8001",
            "fingerprints": {"1": "b" * 64, "2": "c" * 64},
        },
        "IDENT_REMOVED#id_number": {"pk": pk, "sk": "IDENT_REMOVED#id_number", "taken_by": OTHER},
        "ALERT#Shop": {
            "pk": pk,
            "sk": "ALERT#Shop",
            "alert_id": "alt_1",
            "severity": "high",
            "decided_by": "arn:aws:sts::123456789012:assumed-role/Analyst/li",
            "audit_record_id": "aud_1",
        },
        "DUNNING#in_1": {"pk": pk, "sk": "DUNNING#in_1", "attempt_count": 2},
        "NEWKIND#1": {"pk": pk, "sk": "NEWKIND#1", "note": "kept"},
    }
    signup = {
        "SIGNUP": {"pk": "SIGNUP#sgn_1", "sk": "SIGNUP", "code_id": "code_1", "mobile_fp": "1:f"}
    }
    return SubscriberRecords(SUBSCRIBER, items, signup)


def _document() -> dict[str, object]:
    key = os.urandom(32)
    deliveries = {
        ("alert:alt_1", "sms"): {"state": "sent", "provider_id": "SM1", "delivery": "delivered"},
        ("alert:alt_1", "email"): {"state": "sent", "subject_id": SUBSCRIBER},
        ("code:code_1", "sms"): {"state": "sent", "attempts": 1},
    }
    return export.build_export(_records(key), key, deliveries, "exp_1", MOMENT)


def test_export_decrypts_and_masks() -> None:
    document = _document()
    profile = document["profile"]

    assert isinstance(profile, dict)
    assert profile["name"] == "王<小>明"
    assert profile["mobile"] == "+8613800138001"
    assert profile["mobile_masked"] == "138****8001"
    assert profile["email_masked"] == "w***@example.com"
    identifiers = {item["kind"]: item for item in document["identifiers"]}  # type: ignore[attr-defined]
    assert identifiers["id_number"]["value"] == "110105199003071239"
    assert identifiers["id_number"]["masked"] == "1101**********1239"


def test_export_leaves_out_hashes_and_others() -> None:
    text = json.dumps(_document(), ensure_ascii=False)

    for left_out in (
        "a" * 64,
        "c" * 64,
        "e" * 64,
        "cardfp1",
        OTHER,
        "ENTITLED",
        "Analyst/li",
        "aud_1",
        "g1:",
    ):
        assert left_out not in text, left_out


def test_export_keeps_unknown_items() -> None:
    document = _document()

    assert document["other_records"] == [{"record": "NEWKIND", "note": "kept"}]


def test_export_attaches_alert_deliveries() -> None:
    document = _document()
    (alert,) = document["alerts"]  # type: ignore[misc]

    assert sorted(delivery["channel"] for delivery in alert["deliveries"]) == ["email", "sms"]
    sms = next(delivery for delivery in alert["deliveries"] if delivery["channel"] == "sms")
    assert sms["delivery"] == "delivered"
    assert len(document["notifications"]) == 3  # type: ignore[arg-type]
    assert "subject_id" not in json.dumps(document["notifications"])


def test_export_html_escapes_and_is_bilingual() -> None:
    page = render_html(_document())

    assert "王&lt;小&gt;明" in page
    assert "<小>" not in page
    assert "个人资料" in page
    assert "Profile" in page
    assert "<script" not in page


def test_message_keys_follow_records() -> None:
    keys = message_keys(_records(os.urandom(32)), ["sgn_taker"])

    assert "alert:alt_1" in keys
    assert "invoice:in_1:failed:1" in keys
    assert "invoice:in_1:failed:2" in keys
    assert "invoice:in_1:reminder" in keys
    assert "code:code_1" in keys
    assert f"email_confirmation:1:{'e' * 64}" in keys
    assert f"mobile_invalid:{SUBSCRIBER}:{'c' * 64}" in keys
    assert "reassigned:job_reassigned_sgn_taker" in keys


def test_watch_keys_every_version() -> None:
    keys = watch_keys(_records(os.urandom(32)), ("mobile",))

    assert [(key.kind, key.version) for key in keys] == [("mobile", "1"), ("mobile", "2")]
    assert keys[1].watch_pk == f"WATCH#mobile#2#{'c' * 64}"
    assert keys[1].index_pk == f"mobile#2#{'c' * 64}"


def test_doc_rows_without_export_give_reasons() -> None:
    for row in field_rows():
        if not row.exported:
            assert row.reason, f"{row.item} {row.fields}: 'no' needs a reason after 'no:'"


def test_doc_verdicts_match_exporter() -> None:
    for row in field_rows():
        for name in row.fields:
            if row.item.startswith("NOTIFY#"):
                left_out = name not in export.DELIVERY_ATTRIBUTES
            elif row.item.startswith("SMS#"):
                left_out = name not in export.SMS_STATUS_ATTRIBUTES
            elif row.item == "SIGNUP" and name.endswith(export.ENCRYPTED_SUFFIX):
                left_out = True  # the signup's data key is gone, so these are never readable
            elif row.item == "OTP":
                left_out = True  # the export reads the signup item only, never its code
            else:
                left_out = name in export.LEFT_OUT
            assert left_out != row.exported, (
                f"{row.item}.{name}: docs/privacy.md says export={row.exported}"
            )


def test_pseudonym_is_keyed_and_stable() -> None:
    first = deletion.ledger_pseudonym(PEPPER, SUBSCRIBER)

    assert first == deletion.ledger_pseudonym(PEPPER, SUBSCRIBER)
    assert first != deletion.ledger_pseudonym(PEPPER, OTHER)
    assert first.startswith("psn_")
    assert len(first) == 36
    assert SUBSCRIBER.removeprefix("sbr_") not in first
    other_pepper = Pepper.from_secret(
        {"current": "1", "1": "another-unit-test-pepper-32-characters"}
    )
    assert first != deletion.ledger_pseudonym(other_pepper, SUBSCRIBER)


def test_deletion_steps_keep_their_order() -> None:
    steps = list(deletion.STEPS)

    assert steps[0] == "hold"
    assert steps[-1] == "finish"
    # Steps that decrypt (Twilio needs the number, SES the address) run before the data key goes.
    for needs_key in ("twilio", "ses"):
        assert steps.index(needs_key) < steps.index("partition") < steps.index("data_key")
    # The ledger is archived before the partition that contains it is deleted.
    assert steps.index("ledger") < steps.index("partition")
    # The billing link becomes a tombstone before anything billing could write to is removed.
    assert steps.index("stripe") < steps.index("references")


def test_message_keys_name_sign_ins_and_reports() -> None:
    records = _records(os.urandom(32))
    records.items["SIGNINMSG#code_7"] = {"sk": "SIGNINMSG#code_7", "message_key": "code:code_7"}
    records.items["REPORT#rpt_1"] = {"sk": "REPORT#rpt_1", "report_id": "rpt_1"}

    keys = message_keys(records)

    assert "code:code_7" in keys
    assert "report_ready:rpt_1" in keys


# --- the export's ZIP archive ----------------------------------------------------------------


class UnseekableStream:
    """A write-only stream like the streamed upload: write, tell and flush, no seek."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def tell(self) -> int:
        return len(self.data)

    def flush(self) -> None:
        return None


class StoredFiles:
    """Report files by key, read as the reports bucket's `open_object` does."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    @contextlib.contextmanager
    def open_object(self, key: str) -> Iterator[io.BytesIO]:
        if key not in self.files:
            raise FileNotFoundError(key)
        yield io.BytesIO(self.files[key])


def _report_records() -> SubscriberRecords:
    pk = f"SUB#{SUBSCRIBER}"
    items = {
        "PROFILE": {"pk": pk, "sk": "PROFILE"},
        "REPORT#rpt_a": {"pk": pk, "sk": "REPORT#rpt_a", "report_id": "rpt_a"},
        "REPORT#rpt_old": {"pk": pk, "sk": "REPORT#rpt_old", "report_id": "rpt_old"},
        "DOSSIER#dos_1": {"pk": pk, "sk": "DOSSIER#dos_1", "dossier_id": "dos_1"},
    }
    return SubscriberRecords(subscriber_id=SUBSCRIBER, items=items, signup={})


def test_stored_files_of_reports_and_dossiers() -> None:
    files = export_bundle.stored_files(_report_records())

    assert [(file.key, file.path) for file in files] == [
        (f"reports/{SUBSCRIBER}/dossiers/dos_1.pdf", "dossiers/dos_1.pdf"),
        (f"reports/{SUBSCRIBER}/rpt_a/report.html", "reports/rpt_a/report.html"),
        (f"reports/{SUBSCRIBER}/rpt_a/report.pdf", "reports/rpt_a/report.pdf"),
        (f"reports/{SUBSCRIBER}/rpt_old/report.html", "reports/rpt_old/report.html"),
        (f"reports/{SUBSCRIBER}/rpt_old/report.pdf", "reports/rpt_old/report.pdf"),
    ]


def test_archive_streams_files_and_skips_missing() -> None:
    pdf = b"%PDF-1.7 " + os.urandom(2048)
    source = StoredFiles(
        {
            f"reports/{SUBSCRIBER}/rpt_a/report.html": "<p>报告</p>".encode(),
            f"reports/{SUBSCRIBER}/rpt_a/report.pdf": pdf,
            f"reports/{SUBSCRIBER}/dossiers/dos_1.pdf": b"%PDF-1.7 dossier",
        }
    )
    stream = UnseekableStream()
    document: dict = {
        "reports": [{"report_id": "rpt_a"}, {"report_id": "rpt_old"}],
        "dossiers": [{"dossier_id": "dos_1"}],
    }

    with export_bundle.ExportArchive(stream, MOMENT) as archive:
        copied = export_bundle.copy_files(
            archive,
            source,  # type: ignore[arg-type]
            export_bundle.stored_files(_report_records()),
        )
        export_bundle.name_files(document, copied)
        archive.add("export.json", json.dumps(document).encode())

    unpacked = zipfile.ZipFile(io.BytesIO(bytes(stream.data)))
    assert unpacked.testzip() is None
    assert sorted(unpacked.namelist()) == [
        "dossiers/dos_1.pdf",
        "export.json",
        "reports/rpt_a/report.html",
        "reports/rpt_a/report.pdf",
    ]
    assert unpacked.read("reports/rpt_a/report.pdf") == pdf
    assert unpacked.getinfo("reports/rpt_a/report.pdf").compress_type == zipfile.ZIP_STORED
    assert unpacked.getinfo("export.json").compress_type == zipfile.ZIP_DEFLATED
    assert unpacked.getinfo("export.json").date_time == (2026, 12, 5, 8, 0, 0)
    assert document["reports"][0]["files"] == {
        "html": "reports/rpt_a/report.html",
        "pdf": "reports/rpt_a/report.pdf",
    }
    assert document["reports"][1]["files"] == {}
    assert document["dossiers"][0]["files"] == {"pdf": "dossiers/dos_1.pdf"}


class MultipartS3:
    """Records the multipart calls a streamed upload makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.parts: list[bytes] = []

    def create_multipart_upload(self, **request: object) -> dict:
        self.calls.append(("create", request))
        return {"UploadId": "upload-1"}

    def upload_part(self, **request: object) -> dict:
        body = request["Body"]
        assert isinstance(body, bytes)
        self.parts.append(body)
        self.calls.append(("part", {"PartNumber": request["PartNumber"]}))
        return {"ETag": f'"etag-{request["PartNumber"]}"'}

    def complete_multipart_upload(self, **request: object) -> dict:
        self.calls.append(("complete", request))
        return {}

    def abort_multipart_upload(self, **request: object) -> dict:
        self.calls.append(("abort", request))
        return {}

    def put_object(self, **request: object) -> dict:
        self.calls.append(("put", request))
        return {}


def test_streamed_upload_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "UPLOAD_PART_BYTES", 10)
    s3 = MultipartS3()
    objects = exports.ExportObjects("bucket", "arn:aws:kms:key", s3)

    with objects.open_upload("exports/a/export.zip", "application/zip") as upload:
        for piece in (b"0123456", b"789abcdef", b"ghijklmnopqrstuvw", b"xyz"):
            upload.write(piece)
        assert upload.tell() == 36

    assert s3.parts == [b"0123456789", b"abcdefghij", b"klmnopqrst", b"uvwxyz"]
    assert [name for name, _ in s3.calls] == ["create", "part", "part", "part", "part", "complete"]
    created = s3.calls[0][1]
    assert (created["ServerSideEncryption"], created["SSEKMSKeyId"]) == (
        "aws:kms",
        "arn:aws:kms:key",
    )
    completed = s3.calls[-1][1]
    assert completed["MultipartUpload"] == {
        "Parts": [{"PartNumber": number, "ETag": f'"etag-{number}"'} for number in range(1, 5)]
    }


def test_small_streamed_upload_one_put(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "UPLOAD_PART_BYTES", 10)
    s3 = MultipartS3()
    objects = exports.ExportObjects("bucket", "arn:aws:kms:key", s3)

    with objects.open_upload("exports/a/export.zip", "application/zip") as upload:
        upload.write(b"small")

    assert [name for name, _ in s3.calls] == ["put"]
    assert s3.calls[0][1]["Body"] == b"small"


def test_failed_streamed_upload_aborted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "UPLOAD_PART_BYTES", 10)
    s3 = MultipartS3()
    objects = exports.ExportObjects("bucket", "arn:aws:kms:key", s3)

    with pytest.raises(ValueError, match="midway"):
        with objects.open_upload("exports/a/export.zip", "application/zip") as upload:
            upload.write(b"x" * 25)
            raise ValueError("failed midway")

    assert [name for name, _ in s3.calls] == ["create", "part", "part", "abort"]
