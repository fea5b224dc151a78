"""Unit tests for dataset intake: encodings, chunk planning, row parsing and normalization."""

from __future__ import annotations

import io
import itertools
import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import phonenumbers
import pytest

from idsentry.crypto import Pepper
from idsentry.identifiers import (
    IdentifierError,
    IdentifierKind,
    canonical_bank_card,
    canonical_email,
    canonical_id_number,
    canonical_mobile,
    id_number_check_character,
    remove_separators,
)
from idsentry.models.breach import IntakeManifest
from idsentry.services import intake_rows
from idsentry.services.intake_parse import (
    ChunkResult,
    EncodingMismatchError,
    HeaderError,
    LeakedValueNormalizer,
    Rejected,
    RowLayout,
    check_encoding,
    fingerprint_function,
    ingest_records,
    iter_records,
    leaked_bank_card,
    leaked_email,
    leaked_mobile,
    plan_intake,
    plan_ranges,
    read_layout,
)
from infra.tools.breach_generator import generate, id_check_character, luhn_check_digit

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 4)
PEPPER = Pepper.from_secret({"current": "2", "1": "p1-" + "a" * 40, "2": "p2-" + "b" * 40})
ID_NUMBER, MOBILE, EMAIL, BANK_CARD = (
    IdentifierKind.ID_NUMBER,
    IdentifierKind.MOBILE,
    IdentifierKind.EMAIL,
    IdentifierKind.BANK_CARD,
)
ALL_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)
FULL_WIDTH = str.maketrans("0123456789Xx@+", "０１２３４５６７８９Ｘｘ＠＋")

# Synthetic people; the ID numbers carry valid check characters.
ID_A = "11010519900307" + "123"
ID_A += id_check_character(ID_A)
ID_B = "31010419851212" + "002"
ID_B += id_check_character(ID_B)
LEGACY_A = ID_A[:6] + ID_A[8:17]


def manifest(
    *,
    file_format: str = "csv",
    encoding: str = "utf-8",
    columns: dict[str, str] | None = None,
    multiline: bool = False,
) -> IntakeManifest:
    return IntakeManifest.model_validate(
        {
            "breach": {
                "Name": "UnitTestLeak",
                "Title": "Unit test leak",
                "BreachDate": "2026-01-01",
                "DataClasses": [
                    "Government issued IDs",
                    "Phone numbers",
                    "Email addresses",
                    "Credit cards",
                    "Names",
                ],
                "IsVerified": True,
            },
            "encoding": encoding,
            "format": file_format,
            "columns": columns
            or {"姓名": "name", "身份证号": "id_number", "手机号": "mobile", "邮箱": "email"},
            "multiline_fields": multiline,
            "provenance": {
                "source": "unit test",
                "legal_basis": "synthetic data",
                "approved_by": "tests",
                "approved_at": "2026-01-02T00:00:00Z",
            },
        }
    )


def ingest_file(data: bytes, intake: IntakeManifest, target_bytes: int = 1 << 20) -> ChunkResult:
    """Plan a file, ingest every range and merge the results."""
    plan = plan_intake(
        len(data), lambda start, end: data[start:end], intake, target_bytes=target_bytes
    )
    merged = ChunkResult(pepper_version=PEPPER.current, start_offset=0, end_offset=0, complete=True)
    for byte_range in plan.ranges:
        result = ingest_records(
            data[byte_range.start : byte_range.end],
            plan.layout,
            PEPPER,
            start_offset=byte_range.start,
            today=TODAY,
        )
        assert result.complete
        assert result.end_offset == byte_range.end
        merge_into(merged, result)
    return merged


def merge_into(merged: ChunkResult, result: ChunkResult) -> None:
    merged.rows_read += result.rows_read
    merged.rows_accepted += result.rows_accepted
    merged.rows_rejected.update(result.rows_rejected)
    merged.values_accepted.update(result.values_accepted)
    merged.values_rejected.update(result.values_rejected)
    merged.values_converted.update(result.values_converted)
    merged.end_offset = max(merged.end_offset, result.end_offset)
    for kind, values in result.fingerprints.items():
        merged.fingerprints[kind].update(values)


def fingerprint(kind: IdentifierKind, canonical: str) -> str:
    return PEPPER.fingerprint(kind, canonical).value


def csv_bytes(lines: list[str], encoding: str = "utf-8") -> bytes:
    return "".join(line + "\n" for line in lines).encode(encoding)


# Encodings


SAMPLE_TEXT = "姓名,身份证号,手机号\n张伟,110105199003071234,13800138000\n李娜·买买提,310104198512120023,+86 139 0013 9002\n"


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (SAMPLE_TEXT.encode("utf-8"), "utf-8"),
        (SAMPLE_TEXT.encode("utf-8"), "utf-8-sig"),
        (b"\xef\xbb\xbf" + SAMPLE_TEXT.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + SAMPLE_TEXT.encode("utf-8"), "utf-8-sig"),
        (SAMPLE_TEXT.encode("gb18030"), "gb18030"),
        (SAMPLE_TEXT.encode("gbk"), "gbk"),
        (("\U00020bb7祥," + SAMPLE_TEXT).encode("gb18030"), "gb18030"),
        (b"id,mobile\n110105199003071234,13800138000\n", "gbk"),
        (b"id,mobile\n110105199003071234,13800138000\n", "utf-8"),
    ],
)
def test_encoding_accepted(data: bytes, declared: str) -> None:
    check_encoding(data, declared)


@pytest.mark.parametrize(
    ("data", "declared", "suggested"),
    [
        (SAMPLE_TEXT.encode("gb18030"), "utf-8", "gb18030"),
        (SAMPLE_TEXT.encode("gbk"), "utf-8-sig", "gb18030"),
        (SAMPLE_TEXT.encode("utf-8"), "gbk", "utf-8"),
        (SAMPLE_TEXT.encode("utf-8"), "gb18030", "utf-8"),
        (b"\xef\xbb\xbf" + SAMPLE_TEXT.encode("utf-8"), "gb18030", "utf-8-sig"),
        (("\U00020bb7祥\U00020bb7," * 20 + SAMPLE_TEXT).encode("gb18030"), "gbk", "gb18030"),
        (("繁體中文測試資料,身分證字號,電話號碼\n" * 5).encode("big5"), "gbk", None),
        (bytes(range(128, 256)) * 4, "utf-8", None),
    ],
)
def test_encoding_mismatch(data: bytes, declared: str, suggested: str | None) -> None:
    with pytest.raises(EncodingMismatchError) as caught:
        check_encoding(data, declared)

    assert caught.value.declared == declared
    assert caught.value.suggested == suggested
    assert caught.value.field == "encoding"
    assert f"declares encoding '{declared}'" in str(caught.value)


def test_encoding_message_has_no_bytes() -> None:
    data = ("13800138000,张伟\n" * 10).encode("gb18030")

    with pytest.raises(EncodingMismatchError) as caught:
        check_encoding(data, "utf-8")

    assert "13800138000" not in str(caught.value)
    assert "张伟" not in str(caught.value)


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_encoding_sample_ends_mid_character(encoding: str) -> None:
    data = ("张伟," * 50 + "\U00020bb7").encode(encoding)

    for cut in range(1, 4):
        check_encoding(data[:-cut], encoding)


def test_encoding_tolerates_few_damaged_bytes() -> None:
    data = bytearray(("张伟,13800138000\n" * 400).encode("utf-8"))
    data[100] = 0xFF

    check_encoding(bytes(data), "utf-8")


@pytest.mark.parametrize("declared", ["utf-8", "gb18030"])
def test_encoding_tolerates_damage_in_ascii(declared: str) -> None:
    data = bytearray(b"13800138000,a@qq.com\n" * 20_000)
    for position in range(1000, len(data), len(data) // 20):
        data[position] = 0xFF

    check_encoding(bytes(data), declared)


def test_encoding_unsupported_declaration() -> None:
    with pytest.raises(ValueError, match="Unsupported encoding"):
        check_encoding(b"abc", "latin-1")


def test_plan_rejects_wrong_declaration(tmp_path: Path) -> None:
    generated = generate(tmp_path, rows=300, encoding="gb18030", seed=1)
    data = generated.data_path.read_bytes()

    with pytest.raises(EncodingMismatchError) as caught:
        plan_intake(len(data), lambda start, end: data[start:end], manifest(encoding="utf-8"))

    assert caught.value.suggested == "gb18030"


def test_ingest_rejects_wrong_declaration() -> None:
    layout = RowLayout(
        format="csv",
        encoding="gbk",
        data_start=0,
        field_count=2,
        positions={1: MOBILE},
    )
    chunk = ("张伟,13800138000\n李娜,13900139002\n" * 50).encode("utf-8")

    with pytest.raises(EncodingMismatchError):
        ingest_records(chunk, layout, PEPPER, start_offset=0, today=TODAY)


# Chunk planning


def read_function(data: bytes) -> Callable[[int, int], bytes]:
    return lambda start, end: data[start:end]


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_boundary_inside_multibyte_character(encoding: str) -> None:
    rows = [f"\U00020bb7张{index},1380013{index:04d}" for index in range(40)]
    data = csv_bytes(["姓名,手机号", *rows], encoding)
    intake = manifest(encoding=encoding, columns={"姓名": "name", "手机号": "mobile"})
    layout = read_layout(data, intake, at_eof=True)

    # An offset inside the four-byte character of row 10: a split there would cut it.
    inside = data.index("\U00020bb7".encode(encoding), len(data) // 4) + 2
    with pytest.raises(UnicodeDecodeError):
        data[layout.data_start : inside].decode(encoding)
    target = inside - layout.data_start
    ranges = plan_ranges(len(data), read_function(data), layout.data_start, target_bytes=target)

    assert len(ranges) > 1
    assert ranges[0].start == layout.data_start
    assert ranges[-1].end == len(data)
    for first, second in itertools.pairwise(ranges):
        assert first.end == second.start
        assert data[second.start - 1 : second.start] == b"\n"
    for byte_range in ranges:
        data[byte_range.start : byte_range.end].decode(encoding)

    whole = ingest_file(data, intake)
    chunked = ingest_file(data, intake, target_bytes=target)
    assert chunked.fingerprints == whole.fingerprints
    assert chunked.rows_read == whole.rows_read == 40
    assert chunked.values_accepted[MOBILE] == 40


def test_ranges_cover_file_in_whole_lines() -> None:
    data = csv_bytes(["手机号", *(f"1380013{index:04d}" for index in range(500))])

    ranges = plan_ranges(len(data), read_function(data), 10, target_bytes=1000)

    assert ranges[0].start == 10
    assert ranges[-1].end == len(data)
    assert all(byte_range.length > 0 for byte_range in ranges)
    assert all(data[byte_range.end - 1] == ord("\n") for byte_range in ranges)
    assert all(1000 <= byte_range.length < 1012 for byte_range in ranges[:-1])


def test_ranges_tiny_target_gives_one_line_each() -> None:
    data = b"h\nline one\nline two\nline three\n"

    ranges = plan_ranges(len(data), read_function(data), 2, target_bytes=1)

    assert [data[r.start : r.end] for r in ranges] == [
        b"line one\n",
        b"line two\n",
        b"line three\n",
    ]


def test_ranges_long_line_needs_several_probes() -> None:
    data = b"h\n" + b"x" * 200_000 + b"\nshort\n"

    ranges = plan_ranges(len(data), read_function(data), 2, target_bytes=10)

    assert [r.end for r in ranges] == [200_003, len(data)]


def test_ranges_multiline_is_one_range() -> None:
    data = b"h\n" + b"a\n" * 1000

    ranges = plan_ranges(len(data), read_function(data), 2, target_bytes=10, multiline=True)

    assert [(r.start, r.end) for r in ranges] == [(2, len(data))]


def test_ranges_empty_data() -> None:
    assert plan_ranges(5, read_function(b"head\n"), 5) == []


def test_plan_reads_header_once() -> None:
    data = csv_bytes(
        ["姓名,身份证号,手机号,邮箱", *(f"王五,{ID_A},13800138000,a@qq.com" for _ in range(300))]
    )
    reads: list[tuple[int, int]] = []

    def read(start: int, end: int) -> bytes:
        reads.append((start, end))
        return data[start:end]

    plan = plan_intake(len(data), read, manifest(), target_bytes=2000)

    assert reads[0] == (0, len(data))
    assert plan.layout.data_start == len("姓名,身份证号,手机号,邮箱\n".encode())
    assert plan.layout.field_count == 4
    assert plan.layout.positions == {1: ID_NUMBER, 2: MOBILE, 3: EMAIL}
    assert len(plan.ranges) > 3


def test_layout_survives_json_round_trip() -> None:
    data = csv_bytes(["姓名,身份证号,手机号,邮箱"])
    layout = read_layout(data, manifest(), at_eof=True)

    assert RowLayout.model_validate_json(layout.model_dump_json()) == layout


# Header


def test_header_with_bom_and_variant_spellings() -> None:
    data = b"\xef\xbb\xbf" + csv_bytes([" 姓名 ,身份证号,  手机号,邮箱,注册时间"])

    layout = read_layout(data, manifest(encoding="utf-8-sig"), at_eof=True)

    assert layout.positions == {1: ID_NUMBER, 2: MOBILE, 3: EMAIL}
    assert layout.field_count == 5
    assert layout.data_start == len(data)


def test_header_quoted_names() -> None:
    data = csv_bytes(['"姓名","身份证号","手机号","邮箱"', "a,b,c,d"])

    layout = read_layout(data, manifest(), at_eof=True)

    assert layout.positions == {1: ID_NUMBER, 2: MOBILE, 3: EMAIL}


def test_header_missing_column() -> None:
    data = csv_bytes(["姓名,身份证号,电话,邮箱"])

    with pytest.raises(HeaderError, match="'手机号'") as caught:
        read_layout(data, manifest(), at_eof=True)

    assert caught.value.field == "columns"


def test_header_repeated_column() -> None:
    data = csv_bytes(["姓名,身份证号,手机号,手机号,邮箱"])

    with pytest.raises(HeaderError, match="more than once"):
        read_layout(data, manifest(), at_eof=True)


def test_header_without_line_feed_at_eof() -> None:
    data = "姓名,身份证号,手机号,邮箱".encode()

    layout = read_layout(data, manifest(), at_eof=True)

    assert layout.data_start == len(data)
    with pytest.raises(HeaderError, match="no complete header row"):
        read_layout(data, manifest(), at_eof=False)


def test_header_only_file_has_no_ranges() -> None:
    data = csv_bytes(["姓名,身份证号,手机号,邮箱"])

    plan = plan_intake(len(data), read_function(data), manifest())

    assert plan.ranges == ()


def test_header_undecodable() -> None:
    data = b"\xff\xfe,id\n"

    with pytest.raises(HeaderError, match="not valid utf-8"):
        read_layout(data, manifest(columns={"id": "id_number"}), at_eof=True)


def test_header_tab_separated() -> None:
    data = csv_bytes(["姓名\t身份证号\t手机号\t邮箱", f"张三\t{ID_A}\t13800138000\ta@qq.com"])

    result = ingest_file(data, manifest(file_format="tsv"))

    assert result.values_accepted == {ID_NUMBER: 1, MOBILE: 1, EMAIL: 1}


# Rows


HEADER = "姓名,身份证号,手机号,邮箱"


def test_valid_rows_fingerprinted() -> None:
    data = csv_bytes([HEADER, f"张三,{ID_A},13800138000,Zhang.San@QQ.com"])

    result = ingest_file(data, manifest())

    assert result.fingerprints[ID_NUMBER] == {fingerprint(ID_NUMBER, ID_A)}
    assert result.fingerprints[MOBILE] == {fingerprint(MOBILE, "+8613800138000")}
    assert result.fingerprints[EMAIL] == {fingerprint(EMAIL, "zhang.san@qq.com")}
    assert result.rows_accepted == 1
    assert {entry[1] for entry in result.entries()} == {"2"}


def test_malformed_lines_counted() -> None:
    lines = [
        HEADER,
        f"张三,{ID_A},13800138000,a@qq.com",
        f"张三,{ID_A},13800138000",
        f"张三,{ID_A},13800138000,a@qq.com,extra",
        f'"张三"x,{ID_A},13800138000,a@qq.com',
        f'"张三,{ID_A},13800138000,a@qq.com',
        "",
        "\r",
        f'"李,四",{ID_B},"13900139002",b@qq.com',
        f"王五,{ID_B},13900139002,c@qq.com,,",
    ]

    result = ingest_file(csv_bytes(lines), manifest())

    assert result.rows_read == 9
    assert result.rows_accepted == 3
    assert result.rows_rejected == {
        "wrong_field_count": 2,
        "invalid_quoting": 2,
        "blank_line": 2,
    }


def test_undecodable_value_counted() -> None:
    data = csv_bytes([HEADER]) + f"张三,{ID_A},".encode() + b"\xff138001380\xfe,a@qq.com\n"

    result = ingest_file(data, manifest())

    assert result.values_rejected["mobile.undecodable"] == 1
    assert result.values_accepted == {ID_NUMBER: 1, EMAIL: 1}
    assert result.rows_accepted == 1


def test_undecodable_value_in_quoted_line() -> None:
    data = csv_bytes([HEADER]) + f'"张,三",{ID_A},'.encode() + b"\xff1380013800,a@qq.com\n"

    result = ingest_file(data, manifest())

    assert result.values_rejected["mobile.undecodable"] == 1
    assert result.values_accepted == {ID_NUMBER: 1, EMAIL: 1}


def test_invalid_values_counted_by_reason() -> None:
    bad_checksum = ID_A[:17] + ("0" if ID_A[17] != "0" else "1")
    lines = [
        HEADER,
        f"a,{bad_checksum},1380013800,no-at-sign.qq.com",
        "b,,,",
        f"c,99{ID_A[2:]},12345678901,a@localhost",
    ]

    result = ingest_file(csv_bytes(lines), manifest())

    assert result.values_rejected == {
        "id_number.invalid_checksum": 1,
        "mobile.invalid": 2,
        "email.invalid": 1,
        "id_number.empty": 1,
        "mobile.empty": 1,
        "email.empty": 1,
        "id_number.unknown_region": 1,
        "email.invalid_domain": 1,
    }
    assert result.rows_rejected == {"no_valid_identifier": 3}
    assert result.rows_accepted == 0


def test_duplicate_rows_give_one_fingerprint() -> None:
    lines = [
        HEADER,
        f"张三,{ID_A},13800138000,zhang@qq.com",
        f"张三,{ID_A},13800138000,zhang@qq.com",
        f"张三,{ID_A.translate(FULL_WIDTH)},+86 138-0013-8000,ZHANG@QQ.COM",
        f"张三,{LEGACY_A},0086 13800138000, zhang@qq.com ",
        f"张三,{ID_A[:6]} {ID_A[6:14]} {ID_A[14:]},86 13800138000,zhang＠qq.com",
    ]

    result = ingest_file(csv_bytes(lines), manifest())

    assert result.rows_accepted == 5
    assert result.values_accepted == {ID_NUMBER: 5, MOBILE: 5, EMAIL: 5}
    assert result.distinct_fingerprints == 3


def test_legacy_id_numbers_converted() -> None:
    lines = [HEADER, f"a,{LEGACY_A},,", f"b,{ID_A},,", f"c,{LEGACY_A[:8]}99{LEGACY_A[10:]},,"]

    result = ingest_file(csv_bytes(lines), manifest())

    assert result.fingerprints[ID_NUMBER] == {fingerprint(ID_NUMBER, ID_A)}
    assert result.values_converted == {"id_number.legacy_15_digit": 1}
    assert result.values_rejected["id_number.invalid_birth_date"] == 1


def test_line_too_long_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake_rows, "MAX_LINE_BYTES", 80)
    monkeypatch.setattr(intake_rows, "READ_BLOCK_BYTES", 16)
    lines = [HEADER, f"a,{ID_A},13800138000,a@qq.com", "x" * 500, f"b,{ID_B},13900139002,b@qq.com"]

    result = ingest_file(csv_bytes(lines), manifest())

    assert result.rows_rejected == {"line_too_long": 1}
    assert result.rows_accepted == 2


def test_stream_in_small_reads_matches_bytes() -> None:
    data = csv_bytes(
        [HEADER, *(f"张{index},{ID_A},1380013{index:04d},a{index}@qq.com" for index in range(200))]
    )
    layout = read_layout(data, manifest(), at_eof=True)
    chunk = data[layout.data_start :]

    class SmallReads(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            return super().read(7)

    from_bytes = ingest_records(chunk, layout, PEPPER, start_offset=layout.data_start, today=TODAY)
    from_stream = ingest_records(
        SmallReads(chunk), layout, PEPPER, start_offset=layout.data_start, today=TODAY
    )

    assert from_stream.fingerprints == from_bytes.fingerprints
    assert from_stream.summary() == from_bytes.summary()
    assert from_stream.end_offset == len(data)


def test_summary_holds_counts_only() -> None:
    data = csv_bytes([HEADER, f"张三,{ID_A},13800138000,zhang@qq.com"])

    summary = ingest_file(data, manifest()).summary()
    text = json.dumps(summary, ensure_ascii=False)

    assert summary["rows_accepted"] == 1
    assert summary["distinct_fingerprints"] == {
        "id_number": 1,
        "mobile": 1,
        "email": 1,
        "bank_card": 0,
    }
    for value in (ID_A, "13800138000", "zhang@qq.com", "张三"):
        assert value not in text


def test_logs_hold_no_identifiers(caplog: pytest.LogCaptureFixture) -> None:
    data = csv_bytes([HEADER, f"张三,{ID_A},13800138000,zhang@qq.com", "bad line"])

    with caplog.at_level(logging.DEBUG):
        ingest_file(data, manifest())

    assert caplog.records
    for record in caplog.records:
        rendered = record.getMessage() + json.dumps(
            record.__dict__, default=str, ensure_ascii=False
        )
        for value in (ID_A, "13800138000", "zhang@qq.com", "张三"):
            assert value not in rendered


# JSON Lines


def jsonl_bytes(documents: list[Any], encoding: str = "utf-8") -> bytes:
    return "".join(
        json.dumps(document, ensure_ascii=False) + "\n" for document in documents
    ).encode(encoding)


def test_jsonl_rows() -> None:
    data = (
        jsonl_bytes(
            [
                {"身份证号": ID_A, "手机号": 13800138000, "邮箱": "a@qq.com", "other": {"x": 1}},
                {" 手机号 ": "13900139002"},
                {"手机号": 1.39e10, "邮箱": None, "身份证号": True},
                [1, 2],
                "not an object",
            ]
        )
        + b'{"broken": \n\n'
    )

    result = ingest_file(data, manifest(file_format="jsonl", encoding="utf-8"))

    assert result.rows_read == 7
    assert result.fingerprints[MOBILE] == {
        fingerprint(MOBILE, "+8613800138000"),
        fingerprint(MOBILE, "+8613900139002"),
    }
    assert result.values_rejected == {
        "id_number.empty": 1,
        "email.empty": 2,
        "mobile.invalid_type": 1,
        "id_number.invalid_type": 1,
    }
    assert result.rows_rejected == {
        "not_an_object": 2,
        "invalid_json": 1,
        "blank_line": 1,
        "no_valid_identifier": 1,
    }


def test_jsonl_undecodable_line() -> None:
    data = jsonl_bytes([{"手机号": "13800138000"}], "gb18030") + b'{"\xff": 1}\n'

    result = ingest_file(data, manifest(file_format="jsonl", encoding="gb18030"))

    assert result.rows_rejected == {"undecodable": 1}
    assert result.rows_accepted == 1


def test_jsonl_with_bom() -> None:
    data = b"\xef\xbb\xbf" + jsonl_bytes([{"手机号": "13800138000"}])

    result = ingest_file(data, manifest(file_format="jsonl", encoding="utf-8-sig"))

    assert result.rows_accepted == 1
    assert result.rows_rejected == {}


# Truncated files


def test_truncated_inside_multibyte_character() -> None:
    data = csv_bytes([HEADER, f"张三,{ID_A},13800138000,a@qq.com"], "gb18030")
    data += "\U00020bb7".encode("gb18030")[:2]

    result = ingest_file(data, manifest(encoding="gb18030"))

    assert result.rows_accepted == 1
    assert result.rows_rejected == {"wrong_field_count": 1}


def test_truncated_inside_identifier() -> None:
    data = (
        csv_bytes([HEADER, f"张三,{ID_A},13800138000,a@qq.com"]) + f"李四,{ID_B},1390013".encode()
    )

    result = ingest_file(data, manifest())

    assert result.rows_read == 2
    assert result.rows_rejected == {"wrong_field_count": 1}


def test_truncated_jsonl() -> None:
    data = jsonl_bytes([{"手机号": "13800138000"}]) + '{"手机号": "1390'.encode()

    result = ingest_file(data, manifest(file_format="jsonl"))

    assert result.rows_rejected == {"invalid_json": 1}


def test_truncated_inside_quoted_field() -> None:
    data = csv_bytes([HEADER, f'张三,{ID_A},13800138000,"a@qq.com"']) + f'"李\n四,{ID_B}'.encode()

    result = ingest_file(data, manifest(multiline=True))

    assert result.rows_accepted == 1
    assert result.rows_rejected == {"truncated_record": 1}


# Quoted line breaks and checkpoints


def multiline_file(rows: int) -> bytes:
    lines = [HEADER + ",住址"]
    for index in range(rows):
        address = f'"北京市\n朝阳区{index}号"' if index % 3 == 0 else "上海市"
        lines.append(
            f"张{index},{ID_A if index % 2 else ID_B},1380013{index:04d},u{index}@qq.com,{address}"
        )
    return csv_bytes(lines)


def multiline_manifest() -> IntakeManifest:
    columns = {
        "姓名": "name",
        "身份证号": "id_number",
        "手机号": "mobile",
        "邮箱": "email",
        "住址": "name",
    }
    return manifest(columns=columns, multiline=True)


def test_multiline_records() -> None:
    data = multiline_file(30)

    result = ingest_file(data, multiline_manifest())

    assert result.rows_read == 30
    assert result.rows_accepted == 30
    assert result.values_accepted == {ID_NUMBER: 30, MOBILE: 30, EMAIL: 30}


def test_record_offsets_allow_resume() -> None:
    data = multiline_file(40)
    layout = read_layout(data, multiline_manifest(), at_eof=True)
    records = list(iter_records(data[layout.data_start :], layout, start_offset=layout.data_start))

    assert records[-1].end_offset == len(data)
    for index in (0, 3, 17, 38):
        offset = records[index].end_offset
        assert data[offset - 1 : offset] == b"\n"
        resumed = list(iter_records(data[offset:], layout, start_offset=offset))
        assert resumed == records[index + 1 :]


def test_checkpoint_and_resume() -> None:
    data = multiline_file(3000)
    intake = multiline_manifest()
    plan = plan_intake(len(data), read_function(data), intake)
    (byte_range,) = plan.ranges
    whole = ingest_records(
        data[byte_range.start :], plan.layout, PEPPER, start_offset=byte_range.start, today=TODAY
    )

    first = ingest_records(
        data[byte_range.start :],
        plan.layout,
        PEPPER,
        start_offset=byte_range.start,
        should_stop=lambda: True,
        today=TODAY,
    )
    assert first.complete is False
    assert first.rows_read == 1024
    assert first.next_offset is not None
    rest = ingest_records(
        data[first.next_offset :], plan.layout, PEPPER, start_offset=first.next_offset, today=TODAY
    )

    assert rest.complete is True
    assert rest.next_offset is None
    assert first.rows_read + rest.rows_read == whole.rows_read == 3000
    assert first.values_accepted + rest.values_accepted == whole.values_accepted
    for kind in IdentifierKind:
        assert first.fingerprints[kind] | rest.fingerprints[kind] == whole.fingerprints[kind]


def test_multiline_bad_quoting_resyncs() -> None:
    lines = [HEADER, f'"张三"x,{ID_A},13800138000,a@qq.com', f"李四,{ID_B},13900139002,b@qq.com"]

    result = ingest_file(csv_bytes(lines), manifest(multiline=True))

    assert result.rows_rejected == {"invalid_quoting": 1}
    assert result.rows_accepted == 1


# Generated files


@pytest.mark.parametrize(
    ("encoding", "file_format", "multiline"),
    [
        ("gb18030", "csv", False),
        ("gbk", "csv", False),
        ("utf-8", "tsv", False),
        ("utf-8-sig", "csv", False),
        ("gb18030", "jsonl", False),
        ("utf-8", "csv", True),
    ],
)
def test_generated_file_counts(
    tmp_path: Path, encoding: str, file_format: str, multiline: bool
) -> None:
    generated = generate(
        tmp_path,
        rows=1500,
        encoding=encoding,
        file_format=file_format,
        multiline=multiline,
        truncate=True,
        seed=20261204,
    )
    intake = IntakeManifest.model_validate_json(generated.manifest_path.read_bytes())
    expected = generated.expected

    result = ingest_file(generated.data_path.read_bytes(), intake, target_bytes=16 << 10)

    assert result.rows_read == expected["rows_read"]
    assert result.rows_accepted == expected["rows_accepted"]
    assert result.rows_rejected == expected["rows_rejected"]
    assert result.values_accepted == expected["values_accepted"]
    assert result.values_rejected == expected["values_rejected"]
    assert result.values_converted == expected["values_converted"]
    distinct = {str(kind): len(values) for kind, values in result.fingerprints.items() if values}
    assert distinct == expected["distinct"]


# Normalization: fast paths against the full validators


def reference(kind: IdentifierKind, raw: str) -> str | Rejected:
    """Canonicalize with idsentry.identifiers, adding the rules for leaked data."""
    extra = frozenset("().") if kind is MOBILE else frozenset()
    compact = remove_separators(raw, extra)
    if not compact:
        return Rejected(f"{kind}.empty")
    try:
        if kind is ID_NUMBER:
            if len(compact) == 15 and compact.isascii() and compact.isdigit():
                first_17 = compact[:6] + "19" + compact[6:]
                raw = first_17 + id_check_character(first_17)
            return canonical_id_number(raw, today=TODAY)
        if kind is MOBILE:
            if len(compact) == 13 and compact.startswith("861") and compact.isdigit():
                raw = "+" + compact
            return canonical_mobile(raw, ALL_REGIONS)
        if kind is EMAIL:
            return canonical_email(raw)
        return canonical_bank_card(raw)
    except IdentifierError as exc:
        return Rejected(exc.code)


def id_number_samples(rng: random.Random) -> list[str]:
    samples = [
        "",
        "  ",
        "x",
        "X" * 18,
        "1" * 17,
        "1" * 19,
        ID_A + "1",
        "11010519900307123X ",
        "１２３",
    ]
    for _ in range(3000):
        region = rng.choice(["110105", "310104", "440305", "990101", "000000", "710101", "830000"])
        birth = rng.choice(
            [
                f"{rng.randrange(1900, 2026)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}",
                "19000229",
                "20300101",
                "18991231",
                "19901301",
                "20000230",
            ]
        )
        first_17 = region + birth + f"{rng.randrange(1000):03d}"
        number = first_17 + rng.choice([id_check_character(first_17)] * 3 + list("0123456789Xx"))
        shape = rng.randrange(8)
        if shape == 1:
            number = number.lower()
        elif shape == 2:
            number = number.translate(FULL_WIDTH)
        elif shape == 3:
            number = f"{number[:6]} {number[6:14]}-{number[14:]}"
        elif shape == 4:
            number = number[:6] + number[8:17]
        elif shape == 5:
            number = number[: rng.randrange(1, 18)]
        elif shape == 6:
            number = f"\u3000{number}\t"
        samples.append(number)
    return samples


def test_fast_id_number_matches_validator() -> None:
    normalizer = LeakedValueNormalizer(TODAY)
    for raw in id_number_samples(random.Random(1)):
        assert normalizer.id_number(raw) == reference(ID_NUMBER, raw), raw


def test_legacy_check_character_matches_identifiers() -> None:
    rng = random.Random(2)
    for _ in range(500):
        first_17 = "".join(rng.choices("0123456789", k=17))
        assert id_check_character(first_17) == id_number_check_character(first_17)


def test_legacy_conversion_counted_once() -> None:
    normalizer = LeakedValueNormalizer(TODAY)

    assert normalizer.id_number(LEGACY_A) == ID_A
    assert normalizer.id_number(ID_A) == ID_A
    assert normalizer.legacy_id_numbers == 1


def test_fast_mobile_every_prefix() -> None:
    rng = random.Random(3)
    for prefix in range(10_000, 20_000):
        # The cache computes each prefix's verdict from the suffix 000000.
        for suffix in (999_999, rng.randrange(1_000_000)):
            raw = f"{prefix}{suffix:06d}"
            assert leaked_mobile(raw) == reference(MOBILE, raw), raw


def test_fast_mobile_shapes_match_validator() -> None:
    rng = random.Random(4)
    samples = [
        "",
        " ",
        "+86",
        "86",
        "010-12345678",
        "+86 10 1234 5678",
        "+1 415 555 0100",
        "+44 7700 900123",
        "+852 6123 4567",
        "00852 61234567",
        "8613800138000",
        "862380013800",
        "+86 (138) 0013.8000",
        "138 0013 8000 1",
        "abc",
        "1380013800O",
    ]
    for _ in range(3000):
        national = rng.choice(["1", "1", "1", "2", "0"]) + "".join(
            rng.choices("0123456789", k=rng.choice([10, 10, 10, 9, 11]))
        )
        shape = rng.choice(
            [
                "{n}",
                "+86{n}",
                "+86 {a} {b} {c}",
                "0086-{n}",
                "86 {n}",
                "86{n}",
                "({a}){b}-{c}",
                "+86-{a}-{b}-{c}",
                "{fw}",
                " {n}\t",
            ]
        )
        raw = shape.format(
            n=national,
            a=national[:3],
            b=national[3:7],
            c=national[7:],
            fw=national.translate(FULL_WIDTH),
        )
        samples.append(raw)
    for raw in samples:
        assert leaked_mobile(raw) == reference(MOBILE, raw), raw


def test_fast_email_matches_validator() -> None:
    rng = random.Random(5)
    samples = [
        "",
        "   ",
        "a@b",
        "a@localhost",
        "a@x.local",
        "a@123.45",
        "a@-x.com",
        "a@x-.com",
        "a@x..com",
        "a@.x.com",
        ".a@x.com",
        "a.@x.com",
        "a..b@x.com",
        "a@@x.com",
        "@x.com",
        "a@",
        '"quoted"@x.com',
        "a!b#c@x.com",
        "Name <a@x.com>",
        "用户@x.com",
        "a@例子.中国",
        "a@xn--fsqu00a.xn--fiqs8s",
        "A@XN--FSQU00A.XN--FIQS8S",
        "a@" + "b" * 64 + ".com",
        "a" * 65 + "@x.com",
        "a" * 250 + "@x.com",
        "a@" + ".".join(["b" * 60] * 4) + ".com",
        "postmaster@x.com",
        "a@x.c0m",
        "a@x.co_m",
        "a_b+c-d@sub-domain.x.com",
    ]
    domains = [
        "qq.com",
        "163.com",
        "QQ.COM",
        "Gmail.Com",
        "mail.example.cn",
        "x.test",
        "x.invalid",
        "a.b",
    ]
    for _ in range(3000):
        local = "".join(rng.choices("abcXYZ019._+-", k=rng.randrange(1, 12)))
        domain = rng.choice(domains)
        at_sign = rng.choice(["@", "@", "@", "＠", ""])
        samples.append(
            rng.choice(["{}{}{}", " {}{}{} ", "{}{}{}\u3000"]).format(local, at_sign, domain)
        )
    for raw in samples:
        assert leaked_email(raw) == reference(EMAIL, raw), raw


def test_fast_bank_card_matches_validator() -> None:
    rng = random.Random(6)
    samples = [
        "",
        " ",
        "abc",
        "1234",
        "4" * 20,
        "6222-0212-3456-7890-128",
        "６２２２０２１２３４５６７８９０１２８",
    ]
    for _ in range(3000):
        length = rng.randrange(10, 22)
        body = "".join(rng.choices("0123456789", k=length - 1))
        number = body + rng.choice([luhn_check_digit(body), str(rng.randrange(10))])
        shape = rng.randrange(4)
        if shape == 1:
            number = " ".join(number[index : index + 4] for index in range(0, len(number), 4))
        elif shape == 2:
            number = number.translate(FULL_WIDTH)
        samples.append(number)
    for raw in samples:
        assert leaked_bank_card(raw) == reference(BANK_CARD, raw), raw


def test_fingerprint_function_matches_pepper() -> None:
    rng = random.Random(7)
    for kind in IdentifierKind:
        function = fingerprint_function(PEPPER, kind)
        for _ in range(50):
            canonical = "".join(rng.choices("abc0123456789@.+中", k=rng.randrange(0, 30)))
            assert function(canonical) == PEPPER.fingerprint(kind, canonical).value


def test_fingerprint_function_long_pepper() -> None:
    pepper = Pepper.from_secret({"current": "9", "9": "k" * 200})

    function = fingerprint_function(pepper, EMAIL)

    assert function("a@qq.com") == pepper.fingerprint(EMAIL, "a@qq.com").value


def test_reason_counts_use_identifier_codes() -> None:
    normalizer = LeakedValueNormalizer(TODAY)
    reasons = Counter(
        result.reason
        for result in (
            normalizer.id_number("1" * 16),
            leaked_mobile("12"),
            leaked_email("no-at"),
            leaked_bank_card("1234567890123"),
        )
        if isinstance(result, Rejected)
    )

    assert reasons == {
        "id_number.invalid_length": 1,
        "mobile.invalid": 1,
        "email.invalid": 1,
        "bank_card.invalid_checksum": 1,
    }
