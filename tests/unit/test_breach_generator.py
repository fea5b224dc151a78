"""Unit tests for the synthetic breach file generator."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest

from idsentry.crypto import Pepper
from idsentry.identifiers import (
    IdentifierError,
    IdentifierKind,
    canonical_id_number,
    canonical_mobile,
)
from idsentry.models.breach import parse_manifest
from idsentry.services.intake_parse import check_encoding, ingest_records, plan_intake
from infra.tools.breach_generator import (
    COLUMNS,
    ID_NUMBER,
    MOBILE,
    PlantedIdentity,
    generate,
    id_check_character,
    load_plants,
    luhn_check_digit,
    main,
)

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 4)
PEPPER = Pepper.from_secret({"current": "1", "1": "generator-test-" + "x" * 32})
DEMO_IDENTITIES = Path(__file__).resolve().parents[2] / "events" / "demo" / "identities.json"


def data_rows(path: Path, encoding: str, delimiter: str = ",") -> list[list[str]]:
    """Return the well-formed data rows of a generated CSV/TSV file (decodable, 8 fields)."""
    text = path.read_bytes().decode("utf-8" if encoding == "utf-8-sig" else encoding, "replace")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter))
    return [row for row in rows[1:] if len(row) == len(COLUMNS) and "\ufffd" not in "".join(row)]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", rows=400, seed=99)
    second = generate(tmp_path / "b", rows=400, seed=99)
    other = generate(tmp_path / "c", rows=400, seed=100)

    assert first.data_path.read_bytes() == second.data_path.read_bytes()
    assert first.data_path.read_bytes() != other.data_path.read_bytes()
    assert first.expected == second.expected


def test_seed_recorded_when_random(tmp_path: Path) -> None:
    generated = generate(tmp_path, rows=10)

    assert isinstance(generated.expected["seed"], int)
    assert json.loads(generated.expected_path.read_text())["seed"] == generated.expected["seed"]


def test_id_numbers_valid(tmp_path: Path) -> None:
    generated = generate(tmp_path, rows=1500, encoding="utf-8", seed=5)
    lengths: set[int] = set()
    valid = 0

    for row in data_rows(generated.data_path, "utf-8"):
        raw = row[COLUMNS.index(ID_NUMBER)]
        compact = "".join(raw.split()).translate(
            str.maketrans("０１２３４５６７８９Ｘ", "0123456789X")
        )
        lengths.add(len(compact))
        if len(compact) == 15:
            first_17 = compact[:6] + "19" + compact[6:]
            compact = first_17 + id_check_character(first_17)
        try:
            canonical_id_number(compact, today=TODAY)
            valid += 1
        except IdentifierError as exc:
            # The generator writes a few bad check characters and empty values on purpose.
            assert exc.code in {"id_number.invalid_checksum", "id_number.invalid_length"}, raw

    assert {15, 18} <= lengths
    assert valid > 1300


def test_mobiles_valid_mainland(tmp_path: Path) -> None:
    generated = generate(tmp_path, rows=1500, encoding="gb18030", seed=6)
    valid = 0

    for row in data_rows(generated.data_path, "gb18030"):
        digits = "".join(
            character for character in row[COLUMNS.index(MOBILE)] if character.isdigit()
        )
        if len(digits) == 13:
            digits = digits.removeprefix("86")
        elif len(digits) == 15:
            digits = digits.removeprefix("0086")
        if len(digits) != 11:
            continue
        assert canonical_mobile(digits).startswith("+861")
        valid += 1

    assert valid > 1200


def test_check_digits_independent() -> None:
    # 11010519491231002X is the example number of GB 11643-1999.
    assert id_check_character("11010519491231002") == "X"
    assert luhn_check_digit("7992739871") == "3"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_encoding_matches_manifest(tmp_path: Path, encoding: str) -> None:
    generated = generate(tmp_path, rows=800, encoding=encoding, seed=7)
    data = generated.data_path.read_bytes()

    manifest = parse_manifest(generated.manifest_path.read_bytes())
    check_encoding(data, manifest.encoding)

    assert manifest.encoding == encoding
    assert data.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")


def test_gbk_file_has_no_four_byte_characters(tmp_path: Path) -> None:
    gbk = generate(tmp_path / "gbk", rows=3000, encoding="gbk", seed=8)
    gb18030 = generate(tmp_path / "gb18030", rows=3000, encoding="gb18030", seed=8)

    assert "\U00020bb7".encode("gb18030") in gb18030.data_path.read_bytes()
    gbk.data_path.read_bytes().decode("gbk", "replace")
    assert "\U00020bb7".encode("gb18030") not in gbk.data_path.read_bytes()


def test_messy_shapes_present(tmp_path: Path) -> None:
    generated = generate(tmp_path, rows=3000, encoding="utf-8", seed=9)
    text = generated.data_path.read_text("utf-8", errors="replace")

    assert "+86 " in text
    assert "0086" in text
    assert "１" in text
    assert "\n\n" in text
    assert b"\xff" in generated.data_path.read_bytes()
    assert generated.expected["values_converted"]["id_number.legacy_15_digit"] > 0
    assert generated.expected["rows_rejected"]["wrong_field_count"] > 0
    assert generated.expected["values_rejected"]["mobile.undecodable"] > 0


def test_multiline_addresses(tmp_path: Path) -> None:
    generated = generate(tmp_path, rows=500, multiline=True, encoding="utf-8", seed=10)
    manifest = json.loads(generated.manifest_path.read_text())

    records = list(csv.reader(io.StringIO(generated.data_path.read_text("utf-8", "replace"))))
    assert manifest["multiline_fields"] is True
    assert any("\n" in field for record in records for field in record)


def test_truncated_last_line(tmp_path: Path) -> None:
    generated = generate(tmp_path, rows=50, encoding="utf-8", seed=11, truncate=True)
    data = generated.data_path.read_bytes()

    assert not data.endswith(b"\n")
    assert generated.expected["rows_read"] == 50


def test_planted_identities_found(tmp_path: Path) -> None:
    plants = load_plants(DEMO_IDENTITIES)
    extra_id = "11010819850615007" + id_check_character("11010819850615007")
    plants.append(PlantedIdentity("测试", extra_id, "+8613800138009", "Plant@Example.com"))
    generated = generate(tmp_path, rows=400, encoding="gb18030", seed=12, plants=plants)
    data = generated.data_path.read_bytes()
    manifest = parse_manifest(generated.manifest_path.read_bytes())
    plan = plan_intake(len(data), lambda start, end: data[start:end], manifest)

    found: dict[IdentifierKind, set[str]] = {kind: set() for kind in IdentifierKind}
    for byte_range in plan.ranges:
        result = ingest_records(
            data[byte_range.start : byte_range.end],
            plan.layout,
            PEPPER,
            start_offset=byte_range.start,
            today=TODAY,
        )
        for kind, values in result.fingerprints.items():
            found[kind] |= values

    assert generated.expected["planted"] == len(plants)
    for plant in plants:
        assert plant.id_number is not None
        assert plant.mobile is not None
        number = PEPPER.fingerprint(IdentifierKind.ID_NUMBER, plant.id_number).value
        mobile = PEPPER.fingerprint(IdentifierKind.MOBILE, canonical_mobile(plant.mobile)).value
        assert number in found[IdentifierKind.ID_NUMBER]
        assert mobile in found[IdentifierKind.MOBILE]
    email = PEPPER.fingerprint(IdentifierKind.EMAIL, "plant@example.com").value
    assert email in found[IdentifierKind.EMAIL]


def test_invalid_plant_rejected(tmp_path: Path) -> None:
    plant = PlantedIdentity("坏", id_number="110105199003071230")

    with pytest.raises(ValueError, match="GB 11643"):
        generate(tmp_path, rows=10, plants=[plant], seed=1)


def test_plant_file_must_be_array(tmp_path: Path) -> None:
    path = tmp_path / "plants.json"
    path.write_text('{"name": "x"}')

    with pytest.raises(ValueError, match="JSON array"):
        load_plants(path)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--rows",
            "120",
            "--encoding",
            "gbk",
            "--format",
            "jsonl",
            "--out",
            str(tmp_path),
            "--seed",
            "3",
            "--plant",
            str(DEMO_IDENTITIES),
        ]
    )

    assert code == 0
    assert (tmp_path / "breach.jsonl").exists()
    assert parse_manifest((tmp_path / "manifest.json").read_bytes()).format == "jsonl"
    assert "seed 3" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments",
    [
        ["--rows", "0"],
        ["--rows", "10", "--encoding", "latin-1"],
        ["--rows", "10", "--format", "jsonl", "--multiline"],
    ],
)
def test_command_line_rejects(tmp_path: Path, arguments: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*arguments, "--out", str(tmp_path)])

    assert caught.value.code == 2
