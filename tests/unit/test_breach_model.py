"""Unit tests for the breach catalogue record, data-class kinds and intake manifests."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from idsentry.identifiers import IdentifierKind
from idsentry.models.breach import (
    Breach,
    DataKind,
    IntakeManifest,
    ManifestError,
    kind_for_data_class,
    parse_manifest,
)

pytestmark = pytest.mark.unit

# Shaped like an entry of HIBP's GET /api/v3/breaches, with made-up values.
HIBP_BREACH: dict[str, Any] = {
    "Name": "ExampleShop",
    "Title": "Example Shop",
    "Domain": "shop.example.com",
    "BreachDate": "2019-03-01",
    "AddedDate": "2019-05-20T08:15:00Z",
    "ModifiedDate": "2019-05-21T10:00:00Z",
    "PwnCount": 123456,
    "Description": "In March 2019, <a href='https://shop.example.com'>Example Shop</a> ...",
    "LogoPath": "https://haveibeenpwned.com/Content/Images/PwnedLogos/ExampleShop.png",
    "Attribution": None,
    "DisclosureUrl": None,
    "DataClasses": ["Email addresses", "Passwords", "Phone numbers"],
    "IsVerified": True,
    "IsFabricated": False,
    "IsSensitive": False,
    "IsRetired": False,
    "IsSpamList": False,
    "IsMalware": False,
    "IsStealerLog": False,
    "IsSubscriptionFree": False,
}

MANIFEST: dict[str, Any] = {
    "breach": {
        "Name": "CnForum2024",
        "Title": "某论坛 2024",
        "BreachDate": "2024-02-10",
        "DataClasses": ["Email addresses", "Government issued IDs", "Names", "Phone numbers"],
        "IsVerified": False,
    },
    "encoding": "gb18030",
    "format": "csv",
    "columns": {"身份证号": "id_number", "手机号": "mobile", "邮箱": "email", "姓名": "name"},
    "provenance": {
        "source": "Operator upload from a takedown request",
        "legal_basis": "PIPL art. 13(7): protecting the data subjects' rights",
        "approved_by": "analyst-17",
        "approved_at": "2024-03-01T10:00:00+08:00",
    },
}


def manifest_with(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(MANIFEST)
    for path, value in changes.items():
        target = document
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is None:
            target.pop(leaf)
        else:
            target[leaf] = value
    return document


def rejected_fields(document: Any) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(document)
    return caught.value.fields


def test_hibp_breach_parses() -> None:
    breach = Breach.from_hibp(HIBP_BREACH)

    assert breach.source == "hibp"
    assert breach.name == "ExampleShop"
    assert breach.breach_date == date(2019, 3, 1)
    assert breach.added_date == datetime(2019, 5, 20, 8, 15, tzinfo=UTC)
    assert breach.pwn_count == 123456
    assert breach.data_classes == ("Email addresses", "Passwords", "Phone numbers")


def test_hibp_breach_serializes_by_alias() -> None:
    dumped = Breach.from_hibp(HIBP_BREACH).model_dump(mode="json")

    assert dumped["Name"] == "ExampleShop"
    assert dumped["AddedDate"] == "2019-05-20T08:15:00Z"
    assert dumped["source"] == "hibp"
    assert "IsSubscriptionFree" not in dumped


def test_hibp_breach_minutes_only_date() -> None:
    # HIBP's documentation shows AddedDate without seconds ("2013-12-04T00:00Z").
    breach = Breach.from_hibp({**HIBP_BREACH, "AddedDate": "2013-12-04T00:00Z"})

    assert breach.added_date == datetime(2013, 12, 4, tzinfo=UTC)


def test_breach_round_trips() -> None:
    breach = Breach.from_hibp(HIBP_BREACH)

    assert Breach.model_validate(breach.model_dump(mode="json")) == breach


@pytest.mark.parametrize("name", ["Adobe", "000webhost", "Cn.Forum_2024-b"])
def test_breach_name_accepted(name: str) -> None:
    assert Breach.from_hibp({**HIBP_BREACH, "Name": name}).name == name


@pytest.mark.parametrize("name", ["", "Shop#1", "-leading", "a" * 129, "名字"])
def test_breach_name_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="Name"):
        Breach.from_hibp({**HIBP_BREACH, "Name": name})


def test_breach_requires_timezone() -> None:
    with pytest.raises(ValueError, match="AddedDate"):
        Breach.from_hibp({**HIBP_BREACH, "AddedDate": "2019-05-20T08:15:00"})


@pytest.mark.parametrize(
    ("data_class", "kind"),
    [
        ("Email addresses", DataKind.EMAIL),
        ("Phone numbers", DataKind.MOBILE),
        ("Government issued IDs", DataKind.ID_NUMBER),
        ("Passwords", DataKind.PASSWORD),
        ("Names", DataKind.NAME),
        ("Physical addresses", DataKind.ADDRESS),
        ("Bank account numbers", DataKind.BANK_CARD),
        ("Credit cards", DataKind.BANK_CARD),
        ("身份证号", DataKind.ID_NUMBER),
        ("身份证号码", DataKind.ID_NUMBER),
        ("手机号", DataKind.MOBILE),
        ("电话号码", DataKind.MOBILE),
        ("邮箱", DataKind.EMAIL),
        ("电子邮箱", DataKind.EMAIL),
        ("银行卡号", DataKind.BANK_CARD),
        ("信用卡号", DataKind.BANK_CARD),
        ("密码", DataKind.PASSWORD),
        ("姓名", DataKind.NAME),
        ("住址", DataKind.ADDRESS),
        ("收货地址", DataKind.ADDRESS),
    ],
)
def test_data_class_kind(data_class: str, kind: DataKind) -> None:
    assert kind_for_data_class(data_class) is kind


@pytest.mark.parametrize(
    "spelling", ["email addresses", " EMAIL ADDRESSES ", "Ｅｍａｉｌ addresses"]
)
def test_data_class_spelling_variants(spelling: str) -> None:
    assert kind_for_data_class(spelling) is DataKind.EMAIL


@pytest.mark.parametrize("data_class", ["Usernames", "IP addresses", "Partial credit card data"])
def test_data_class_without_kind(data_class: str) -> None:
    assert kind_for_data_class(data_class) is None


def test_identifier_kinds_match() -> None:
    assert {kind.identifier_kind for kind in DataKind} == {*IdentifierKind, None}
    assert DataKind.PASSWORD.identifier_kind is None
    assert DataKind.BANK_CARD.identifier_kind is IdentifierKind.BANK_CARD


def test_breach_kinds() -> None:
    breach = Breach.from_hibp(
        {**HIBP_BREACH, "DataClasses": ["Email addresses", "Usernames", "Credit cards"]}
    )

    assert breach.kinds == {DataKind.EMAIL, DataKind.BANK_CARD}


@pytest.mark.parametrize("flag", ["IsFabricated", "IsSpamList", "IsRetired"])
def test_filtered_flags_not_alertable(flag: str) -> None:
    breach = Breach.from_hibp({**HIBP_BREACH, flag: True})

    assert breach.alertable is False


@pytest.mark.parametrize("flag", ["IsSensitive", "IsMalware", "IsStealerLog"])
def test_other_flags_alertable(flag: str) -> None:
    assert Breach.from_hibp({**HIBP_BREACH, flag: True}).alertable is True


def test_unverified_needs_review() -> None:
    unverified = Breach.from_hibp({**HIBP_BREACH, "IsVerified": False})

    assert unverified.needs_review is True
    assert unverified.alertable is True
    assert Breach.from_hibp(HIBP_BREACH).needs_review is False


def test_manifest_parses() -> None:
    manifest = parse_manifest(json.dumps(MANIFEST, ensure_ascii=False).encode())

    assert manifest.breach.source == "dataset"
    assert manifest.breach.is_verified is False
    assert manifest.encoding == "gb18030"
    assert manifest.multiline_fields is False
    assert manifest.provenance.approved_by == "analyst-17"
    assert manifest.identifier_columns == {
        "身份证号": IdentifierKind.ID_NUMBER,
        "手机号": IdentifierKind.MOBILE,
        "邮箱": IdentifierKind.EMAIL,
    }


@pytest.mark.parametrize(
    ("spelling", "encoding"),
    [("UTF8", "utf-8"), ("utf-8-bom", "utf-8-sig"), ("GB18030", "gb18030"), ("CP936", "gbk")],
)
def test_manifest_encoding_spellings(spelling: str, encoding: str) -> None:
    assert parse_manifest(manifest_with(encoding=spelling)).encoding == encoding


def test_manifest_without_provenance() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest_with(provenance=None))

    assert caught.value.fields == ["provenance"]
    assert caught.value.problems[0].code == "field.missing"
    assert "provenance: field required" in str(caught.value)


@pytest.mark.parametrize("field", ["source", "legal_basis", "approved_by", "approved_at"])
def test_manifest_provenance_field_missing(field: str) -> None:
    assert rejected_fields(manifest_with(**{f"provenance__{field}": None})) == [
        f"provenance.{field}"
    ]


def test_manifest_provenance_blank() -> None:
    assert rejected_fields(manifest_with(provenance__legal_basis="   ")) == [
        "provenance.legal_basis"
    ]


def test_manifest_approval_needs_timezone() -> None:
    document = manifest_with(provenance__approved_at="2024-03-01T10:00:00")

    assert rejected_fields(document) == ["provenance.approved_at"]


def test_manifest_missing_is_verified() -> None:
    assert rejected_fields(manifest_with(breach__IsVerified=None)) == ["breach.IsVerified"]


def test_manifest_rejects_hibp_source() -> None:
    assert rejected_fields(manifest_with(breach__source="hibp")) == ["breach"]


def test_manifest_unsupported_encoding() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest_with(encoding="big5"))

    assert caught.value.fields == ["encoding"]
    assert "big5" not in str(caught.value)


def test_manifest_unsupported_format() -> None:
    assert rejected_fields(manifest_with(format="xlsx")) == ["format"]


def test_manifest_needs_identifier_column() -> None:
    document = manifest_with(columns={"姓名": "name", "住址": "address"})

    with pytest.raises(ManifestError) as caught:
        parse_manifest(document)

    assert caught.value.fields == ["columns"]
    assert "id_number, mobile, email or bank_card" in str(caught.value)


def test_manifest_column_kind_not_in_data_classes() -> None:
    document = manifest_with(columns={"手机号": "mobile", "银行卡号": "bank_card"})

    with pytest.raises(ManifestError) as caught:
        parse_manifest(document)

    assert caught.value.fields == ["columns"]
    assert "bank_card" in str(caught.value)


def test_manifest_unknown_column_kind() -> None:
    assert rejected_fields(manifest_with(columns={"手机号": "phone"})) == ["columns.手机号"]


def test_manifest_duplicate_column_names() -> None:
    document = manifest_with(columns={"手机号": "mobile", " 手机号": "mobile"})

    assert rejected_fields(document) == ["columns"]


def test_manifest_multiline_jsonl() -> None:
    document = manifest_with(format="jsonl", multiline_fields=True)

    assert rejected_fields(document) == ["multiline_fields"]


def test_manifest_unknown_field() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest_with(delimiter=";"))

    assert caught.value.fields == ["delimiter"]
    assert caught.value.problems[0].code == "field.unknown"


def test_manifest_lists_every_problem() -> None:
    document = manifest_with(provenance=None, format="xlsx", encoding="latin-1")

    assert sorted(rejected_fields(document)) == ["encoding", "format", "provenance"]


@pytest.mark.parametrize("document", [b"{not json", b"\xff\xfe{}", "[1, 2]"])
def test_manifest_not_a_json_object(document: bytes | str) -> None:
    assert rejected_fields(document) == ["manifest"]


def test_catalogue_record_fills_dates() -> None:
    manifest = IntakeManifest.model_validate(MANIFEST)
    now = datetime(2024, 3, 2, 1, 0, tzinfo=UTC)

    record = manifest.catalogue_record(now, pwn_count=42)

    assert record.added_date == now
    assert record.modified_date == now
    assert record.pwn_count == 42
    assert record.source == "dataset"


def test_catalogue_record_keeps_given_dates() -> None:
    added = "2024-02-20T00:00:00Z"
    manifest = IntakeManifest.model_validate(manifest_with(breach__AddedDate=added))

    record = manifest.catalogue_record(datetime(2024, 3, 2, tzinfo=UTC))

    assert record.added_date == datetime(2024, 2, 20, tzinfo=UTC)
    assert record.pwn_count == 0


def test_catalogue_record_needs_aware_now() -> None:
    manifest = IntakeManifest.model_validate(MANIFEST)

    with pytest.raises(ValueError, match="timezone"):
        manifest.catalogue_record(datetime(2024, 3, 2))
