"""Property-based breach rows and intake manifests: nothing crashes, nothing malformed is indexed.

Rows: a chunk mixes valid rows, rows whose identifiers are junk, and garbage lines, in every
supported format and encoding. Reading it never raises, counts every record once, and yields
exactly the fingerprints of the valid rows' identifiers.

Manifests: a manifest mutated around a valid one is uploaded with its data file, and its S3
notification is delivered to the intake function in-process. The function never fails the
message. A rejected manifest leaves only its job record, which names the invalid fields, and
an accepted one adds the breach, the job and one chunk job per range. Those chunk jobs are then
delivered to the ingest function, and the breach index gets exactly the entries of the data
file's valid row.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import unquote_plus

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from idsentry.crypto import Pepper
from idsentry.identifiers import IdentifierKind
from idsentry.services.intake_parse import RowLayout, ingest_records
from infra.local.service import LocalService
from tests.hypothesis_profiles import examples
from tests.integration.bad_input import strategies as bad
from tests.integration.bad_input.support import (
    ShortRepr,
    StackProbe,
    Tally,
    compare,
    sqs_event,
    take_message,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

TODAY = date(2026, 12, 4)
PEPPER = Pepper.from_secret({"current": "1", "1": "bad-input-pepper-" + "p" * 32})
ID_NUMBER, MOBILE, EMAIL = IdentifierKind.ID_NUMBER, IdentifierKind.MOBILE, IdentifierKind.EMAIL
KINDS = (ID_NUMBER, MOBILE, EMAIL)
NAMES = ("王小明", "李雷", "Alice Li", "阿依古丽", "陈静")
# Letters and punctuation without digits, "@", quotes, delimiters or line breaks: text that can
# never be a valid identifier and never changes how a line splits into fields.
JUNK = st.text(
    alphabet=st.sampled_from("abcdefghxyzABCXYZ-_.!#$%&*()[]{}~ 张王李·"), min_size=0, max_size=24
)
# Characters for garbage lines: the junk letters plus delimiters and quotes, still no digits.
GARBAGE = st.text(
    alphabet=st.sampled_from('abcxyz,\t";:{}[]\\/ 张王李·\r'), min_size=0, max_size=60
)
JSON_KEYS = {
    ID_NUMBER: ["id_number", "ID_Number", "ｉｄ_ｎｕｍｂｅｒ"],
    MOBILE: ["mobile", "Mobile "],
    EMAIL: ["email", "EMAIL"],
}


@dataclass(repr=False)
class Chunk(ShortRepr):
    """One drawn chunk: its bytes, layout, and what reading it must find."""

    data: bytes
    layout: RowLayout
    records: int
    valid_rows: int
    fingerprints: set[tuple[IdentifierKind, str]]


@st.composite
def identifiers(draw: st.DrawFn) -> tuple[dict[IdentifierKind, str], dict[IdentifierKind, str]]:
    """Valid identifiers as a leak writes them, and their canonical forms."""
    id_number = draw(bad.id_numbers())
    mobile = draw(st.sampled_from(bad.MOBILE_PREFIXES)) + draw(st.from_regex(r"\A[0-9]{8}\Z"))
    email = draw(st.from_regex(r"\A[a-z][a-z0-9]{0,8}(\.[a-z0-9]{1,6})?\Z")) + "@example.com"
    canonical = {ID_NUMBER: id_number, MOBILE: "+86" + mobile, EMAIL: email}

    written = {
        ID_NUMBER: draw(st.sampled_from([id_number, id_number.lower(), " " + id_number + " "])),
        MOBILE: draw(
            st.sampled_from(
                [
                    mobile,
                    "+86 " + mobile,
                    "86" + mobile,
                    f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
                    "".join(chr(ord(digit) + 0xFEE0) for digit in mobile),
                ]
            )
        ),
        EMAIL: draw(st.sampled_from([email, email.upper(), " " + email])),
    }
    return written, canonical


@st.composite
def chunks(draw: st.DrawFn) -> Chunk:
    """A chunk of valid rows, junk rows and garbage lines in one format and encoding."""
    file_format = draw(st.sampled_from(["csv", "tsv", "jsonl"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "gbk"]))
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    delimiter = "\t" if file_format == "tsv" else ","
    order = draw(st.permutations(["name", *KINDS]))
    positions = {index: column for index, column in enumerate(order) if column != "name"}

    lines: list[bytes] = []
    valid_rows = 0
    fingerprints: set[tuple[IdentifierKind, str]] = set()
    damaged = 0
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        row_kind = draw(st.sampled_from(["valid", "valid", "junk", "garbage", "blank"]))
        if row_kind == "blank":
            lines.append(b"")
            continue
        if row_kind == "garbage":
            line = draw(GARBAGE).encode(codec)
            extra = draw(st.sampled_from([b"", b"", b"\xff", bad.nested(3_000, "[").encode()]))
            if extra == b"\xff":
                # Undecodable bytes stay within the encoding check's allowance of 3.
                if damaged >= 3:
                    extra = b""
                damaged += len(extra)
            lines.append(line + extra)
            continue

        written, canonical = draw(identifiers())
        if row_kind == "junk":
            written = {kind: draw(JUNK) for kind in KINDS}
        else:
            # Some of a valid row's identifiers may be missing or junk, but one stays valid.
            valid_kinds = draw(st.sets(st.sampled_from(KINDS), min_size=1))
            for kind in KINDS:
                if kind not in valid_kinds:
                    written[kind] = draw(JUNK)
            valid_rows += 1
            fingerprints.update(
                (kind, PEPPER.fingerprint(kind, canonical[kind]).value) for kind in valid_kinds
            )
        name = draw(st.sampled_from(NAMES))
        if file_format == "jsonl":
            document = {"name": name}
            for kind in KINDS:
                document[draw(st.sampled_from(JSON_KEYS[kind]))] = written[kind]
            lines.append(json.dumps(document, ensure_ascii=draw(st.booleans())).encode(codec))
        else:
            fields = [name if column == "name" else written[column] for column in order]
            lines.append(delimiter.join(fields).encode(codec))

    data = b"\n".join(lines) + (b"\n" if lines and draw(st.booleans()) else b"")
    # No line contains a line feed, and a last line without one is a record too.
    records = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    if file_format == "jsonl":
        layout = RowLayout(
            format="jsonl",
            encoding=encoding,
            data_start=0,
            keys={"id_number": ID_NUMBER, "mobile": MOBILE, "email": EMAIL},
        )
    else:
        layout = RowLayout(
            format=file_format,
            encoding=encoding,
            data_start=0,
            field_count=len(order),
            positions=positions,
        )
    return Chunk(data, layout, records, valid_rows, fingerprints)


def test_breach_rows() -> None:
    tally = Tally("input.breach_rows", "Breach file chunks: valid, junk and garbage rows")

    @settings(max_examples=examples(fast=40, full=500))
    @given(chunk=chunks())
    def check(chunk: Chunk) -> None:
        result = ingest_records(chunk.data, chunk.layout, PEPPER, start_offset=0, today=TODAY)
        tally.tried += 1
        tally.accepted += result.rows_accepted
        tally.rejected += sum(result.rows_rejected.values())
        tally.extra["values_rejected"] += sum(result.values_rejected.values())
        tally.extra["index_entries"] += result.distinct_fingerprints
        found = {(kind, value) for kind, _, value in result.entries()}
        # A fingerprint that no valid identifier explains is a malformed value in the index.
        malformed = found - chunk.fingerprints
        missing = chunk.fingerprints - found
        tally.stray_writes += len(malformed)
        tally.lost += len(missing)

        assert result.complete
        assert result.end_offset == len(chunk.data)
        assert result.rows_read == chunk.records
        assert result.rows_accepted == chunk.valid_rows
        assert sum(result.rows_rejected.values()) == result.rows_read - result.rows_accepted
        assert not malformed
        assert not missing

    try:
        check()
    finally:
        tally.record()
    tally.check_totals()


PROVENANCE = {
    "source": "Rows generated by the bad-input tests; no real people",
    "legal_basis": "PIPL art. 13(7): processing publicly disclosed data within a reasonable scope",
    "approved_by": "operator-1",
    "approved_at": "2026-12-04T08:00:00+08:00",
}
BREACH = {
    "Name": "BadInputDataset2026",
    "Title": "Bad input dataset",
    "BreachDate": "2026-10-01",
    "DataClasses": ["Names", "Government issued IDs", "Phone numbers", "Email addresses"],
    "IsVerified": False,
}
COLUMNS = {"姓名": "name", "身份证号": "id_number", "手机号": "mobile", "邮箱": "email"}
DATA_ROWS = "姓名,身份证号,手机号,邮箱\n王小明,110105199003071239,13800138001,wang@example.com\n"


@dataclass(repr=False)
class ManifestCase(ShortRepr):
    """One drawn manifest upload: the manifest bytes and the data file beside it."""

    manifest: bytes
    data: bytes
    data_name: str
    broken_field: str | None


def _valid_manifest() -> dict[str, Any]:
    return {
        "breach": dict(BREACH),
        "encoding": "gb18030",
        "format": "csv",
        "columns": dict(COLUMNS),
        "provenance": dict(PROVENANCE),
    }


@st.composite
def manifest_cases(draw: st.DrawFn) -> ManifestCase:
    """A valid manifest, or one broken in one field, in the body or as bytes."""
    manifest = _valid_manifest()
    change = draw(
        st.sampled_from(["none", "none", "drop", "extra", "field", "breach", "provenance", "bytes"])
    )
    broken: str | None = None
    raw: bytes | None = None
    if change == "drop":
        broken = draw(st.sampled_from(["breach", "encoding", "format", "columns", "provenance"]))
        del manifest[broken]
    elif change == "extra":
        broken = draw(st.from_regex(r"\A[a-z_]{1,12}\Z").filter(lambda key: key not in manifest))
        manifest[broken] = draw(bad.json_values)
    elif change == "field":
        broken = draw(st.sampled_from(["encoding", "format", "columns", "multiline_fields"]))
        manifest[broken] = draw(st.one_of(bad.json_values, bad.huge_text))
    elif change == "breach":
        name = draw(st.sampled_from([*sorted(BREACH), "PwnCount", "AddedDate", "source"]))
        manifest["breach"][name] = draw(st.one_of(bad.json_values, bad.huge_text))
        broken = None  # an odd value may still be valid, such as a Title of injection text
    elif change == "provenance":
        name = draw(st.sampled_from(sorted(PROVENANCE)))
        manifest["provenance"][name] = draw(st.one_of(bad.json_values, bad.huge_text))
        broken = None
    elif change == "bytes":
        raw = draw(bad.broken_bodies)
    if raw is None:
        raw = json.dumps(manifest, ensure_ascii=draw(st.booleans())).encode()

    file_format = manifest.get("format") if isinstance(manifest.get("format"), str) else "csv"
    data = DATA_ROWS.encode("gb18030")
    data_kind = draw(st.sampled_from(["rows", "rows", "garbage_after", "bytes"]))
    if data_kind == "garbage_after":
        # Garbage lines after the valid row: they have no digits or "@", so no identifier.
        garbage = draw(st.lists(GARBAGE, min_size=1, max_size=5))
        data += "\n".join(garbage).encode("gb18030")
    elif data_kind == "bytes":
        data = draw(st.one_of(st.binary(max_size=200), st.just(b"")))
    return ManifestCase(raw, data, f"data.{file_format}"[:40], broken)


def _names_manifest(manifest_key: str) -> Callable[[str], bool]:
    def matches(body: str) -> bool:
        records = json.loads(body).get("Records", [])
        return manifest_key in [unquote_plus(entry["s3"]["object"]["key"]) for entry in records]

    return matches


def test_intake_manifests(input_service: LocalService, probe: StackProbe) -> None:
    tally = Tally(
        "input.intake_manifests",
        "Intake manifests: mutated fields, types and bytes, with their data files",
    )
    assert input_service.stack is not None
    runtime = input_service.stack.runtime
    environment = runtime.environment
    main_table = environment["TABLE_NAME"]
    bucket = environment["INTAKE_BUCKET"]
    chunk_queue = environment["CHUNK_QUEUE_URL"]
    intake_queue = next(url for url in probe.queues if url.endswith("-breach-intake"))
    s3 = runtime.client("s3")
    index_table = environment["BREACH_INDEX_TABLE"]
    pepper = Pepper.from_secret(input_service.pepper)
    valid_row = [
        ("id_number", pepper.fingerprint("id_number", "110105199003071239")),
        ("mobile", pepper.fingerprint("mobile", "+8613800138001")),
        ("email", pepper.fingerprint("email", "wang@example.com")),
    ]
    uploads = itertools.count()
    probe.clear_tables()
    start = probe.state()
    chunks_sent = 0
    explained: set[tuple[str, str]] = set()

    @settings(max_examples=examples(fast=10, full=100))
    @given(case=manifest_cases())
    # A manifest whose integer has 5,000 digits: json.loads raises a plain ValueError.
    @example(case=ManifestCase(b'{"breach": ' + b"9" * 5000 + b"}", b"", "data.csv", None))
    # A manifest nested past the JSON decoder's recursion limit.
    @example(case=ManifestCase(bad.nested(5_000, "{").encode(), b"", "data.csv", None))
    def check(case: ManifestCase) -> None:
        nonlocal chunks_sent
        prefix = f"bad-input/{next(uploads)}"
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{case.data_name}", Body=case.data)
        s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest.json", Body=case.manifest)
        manifest_key = f"{prefix}/manifest.json"
        message = take_message(input_service, intake_queue, _names_manifest(manifest_key))
        event = sqs_event(input_service, intake_queue, message)

        scope = {"tables": [main_table], "queues": [chunk_queue], "buckets": [bucket]}
        before = probe.state(**scope)
        result = runtime.invoke("BreachIntakeFunction", event)
        change = compare(before, probe.state(**scope))
        failed = result.get("batchItemFailures", [])
        tally.tried += 1
        if failed:
            tally.server_errors += 1
        assert not failed, "the intake function failed the notification"

        jobs = [item for key, item in change.added_in(main_table).items() if key.endswith("|JOB")]
        assert len(jobs) == 1, change.describe()
        job = jobs[0]
        status = job["status"]["S"]
        tally.extra[f"status_{status}"] += 1
        explained.update(change.added)
        explained.update(change.changed)
        chunks = change.messages.get(chunk_queue, 0)
        chunks_sent += chunks

        if status == "rejected":
            tally.rejected += 1
            reason = job["reason"]["S"]
            tally.extra[f"reason_{reason}"] += 1
            if reason == "manifest_invalid":
                fields = [entry["S"] for entry in job["detail"]["M"]["fields"]["L"]]
                assert fields, job["detail"]
                if case.broken_field is not None:
                    assert any(name.split(".")[0] == case.broken_field for name in fields), fields
            stray = [
                key for (table, key) in [*change.added, *change.changed] if not key.endswith("|JOB")
            ]
            stray += [str(key) for key in change.removed] + [f"+{chunks} chunk jobs"] * bool(chunks)
            stray += [f"object {key}" for key in change.objects]
            tally.stray_writes += len(stray)
            assert not stray, change.describe()
            return

        tally.accepted += 1
        assert status in ("running", "done"), job
        expected_chunks = int(job["chunks_total"]["N"])
        tally.lost += max(expected_chunks - chunks, 0)
        tally.duplicated += max(chunks - expected_chunks, 0)
        touched = [key for (table, key) in [*change.added, *change.changed]]
        stray = [key for key in touched if not key.endswith(("|JOB", "|BREACH"))]
        # A job without data rows finishes at once and deletes its two files, and no other.
        deleted = {key for key, etag in change.objects.items() if etag is None}
        files = {(bucket, f"{prefix}/manifest.json"), (bucket, f"{prefix}/{case.data_name}")}
        if status != "done" or deleted != files:
            stray += [f"object {key}" for key in change.objects]
        tally.stray_writes += len(stray)
        assert not stray, change.describe()
        assert chunks == expected_chunks, change.describe()
        _ingest(case, job["job_id"]["S"], job["breach_name"]["S"], expected_chunks)

    def _ingest(case: ManifestCase, job_id: str, breach_name: str, chunks: int) -> None:
        """Deliver the job's chunk jobs; the index must get exactly the valid row's entries."""
        # Earlier examples indexed the same row under the same breach: start from no entries.
        probe.clear_tables([index_table])
        scope = {"tables": [main_table, index_table], "queues": [chunk_queue], "buckets": []}
        before = probe.state(**scope)
        for _ in range(chunks):
            message = take_message(
                input_service, chunk_queue, lambda body: json.loads(body)["job_id"] == job_id
            )
            result = runtime.invoke(
                "BreachIngestFunction", sqs_event(input_service, chunk_queue, message)
            )
            assert result["batchItemFailures"] == []
        change = compare(before, probe.state(**scope))
        explained.update(change.added)
        explained.update(change.changed)

        expected = set()
        if case.data.startswith(DATA_ROWS.encode("gb18030")):
            expected = {f"{kind}#{fp.version}#{fp.value}|{breach_name}" for kind, fp in valid_row}
        indexed = set(change.added_in(index_table))
        tally.extra["index_entries"] += len(indexed)
        tally.stray_writes += len(indexed - expected)
        tally.lost += len(expected - indexed)
        assert indexed == expected, change.describe()
        touched = [key for (table, key) in [*change.added, *change.changed] if table == main_table]
        stray = [key for key in touched if not key.startswith(f"INTAKE#{job_id}|")]
        tally.stray_writes += len(stray)
        assert not stray, change.describe()

    try:
        check()
        end = compare(start, probe.state())
        unexplained = [key for key in [*end.added, *end.changed] if key not in explained]
        # The test itself takes every notification off the intake queue.
        queues = {
            url: n for url, n in end.messages.items() if url not in (chunk_queue, intake_queue)
        }
        tally.stray_writes += len(unexplained) + len(queues)
        assert not unexplained, end.describe()
        assert not queues, end.describe()
        # Every chunk job was delivered, so none is left on the queue.
        assert end.messages.get(chunk_queue, 0) == 0
        tally.extra["chunk_jobs"] = chunks_sent
    finally:
        tally.record()
    tally.check_totals()
