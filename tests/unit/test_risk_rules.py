"""Unit tests for the severity and confidence rule tables and their validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from idsentry.models.breach import Breach
from idsentry.services.risk import (
    Confidence,
    ExposureFacts,
    RiskRules,
    RiskRulesError,
    Severity,
    assess,
    load_rules,
    parse_rules,
)

pytestmark = pytest.mark.unit

SHIPPED = load_rules()


def _breach(*data_classes: str, verified: bool = True) -> Breach:
    return Breach.model_validate(
        {
            "source": "dataset",
            "Name": "ExampleShop",
            "Title": "Example Shop",
            "BreachDate": "2024-02-10",
            "DataClasses": list(data_classes),
            "IsVerified": verified,
        }
    )


def _facts(
    *kinds: str, found_by: str = "index", shared: bool = False, confirmed: bool = False
) -> ExposureFacts:
    return ExposureFacts.model_validate(
        {
            "matched_kinds": kinds,
            "found_by": found_by,
            "mobile_shared": shared,
            "email_confirmed": confirmed,
        }
    )


def _document() -> dict[str, Any]:
    text = (
        Path(__file__).parents[2].joinpath("layers/idsentry/python/idsentry/config/risk_rules.json")
    )
    document: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return document


def _minimal() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "auto_confirm_min_confidence": "high",
        "severity": [{"name": "default", "when": {}, "result": "low"}],
        "confidence": [{"name": "default", "when": {}, "result": "low"}],
    }


def _fields(document: dict[str, Any]) -> list[str]:
    with pytest.raises(RiskRulesError) as caught:
        parse_rules(document)
    return caught.value.fields


# Severity: one case per shipped rule, in table order. Each case is (breach data classes,
# matched kinds, expected rule, expected severity).
SEVERITY_CASES = [
    (
        ("Government issued IDs", "Passwords"),
        ("id_number",),
        "id_number_with_bank_card_or_password",
        Severity.CRITICAL,
    ),
    (
        ("Email addresses", "Credit cards"),
        ("email",),
        "breach_exposes_id_number_bank_card_or_password",
        Severity.HIGH,
    ),
    (("Phone numbers", "Names"), ("mobile",), "mobile_matched", Severity.MEDIUM),
    (
        ("Email addresses", "Physical addresses"),
        ("email",),
        "email_with_phone_or_address",
        Severity.MEDIUM,
    ),
    (("Email addresses", "Names"), ("email",), "default", Severity.LOW),
]


@pytest.mark.parametrize(("data_classes", "kinds", "rule", "severity"), SEVERITY_CASES)
def test_severity_rule_fires(
    data_classes: tuple[str, ...], kinds: tuple[str, ...], rule: str, severity: Severity
) -> None:
    result = assess(_facts(*kinds), _breach(*data_classes), SHIPPED)

    assert result.severity_rule == rule
    assert result.severity is severity


def test_severity_cases_cover_table() -> None:
    covered = [case[2] for case in SEVERITY_CASES]

    assert covered == [rule.name for rule in SHIPPED.severity]


# Confidence: (matched kinds, found_by, mobile shared, e-mail confirmed, breach verified,
# expected rule, expected confidence).
CONFIDENCE_CASES = [
    (("bank_card",), "dataset", False, False, True, "exact_id_number_or_bank_card_verified", "high"),
    (("email",), "hibp", False, True, True, "confirmed_email_from_hibp_verified", "high"),
    (("id_number",), "index", False, False, False, "exact_id_number_or_bank_card_unverified", "medium"),
    (("mobile",), "dataset", False, False, True, "unshared_mobile_verified", "medium"),
    (("email",), "dataset", False, True, True, "confirmed_email_verified", "medium"),
    (("mobile",), "dataset", True, False, True, "default", "low"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kinds", "found_by", "shared", "confirmed", "verified", "rule", "confidence"),
    CONFIDENCE_CASES,
)
def test_confidence_rule_fires(
    kinds: tuple[str, ...],
    found_by: str,
    shared: bool,
    confirmed: bool,
    verified: bool,
    rule: str,
    confidence: str,
) -> None:
    facts = _facts(*kinds, found_by=found_by, shared=shared, confirmed=confirmed)
    breach = _breach("Email addresses", "Phone numbers", "Bank account numbers", verified=verified)

    result = assess(facts, breach, SHIPPED)

    assert result.confidence_rule == rule
    assert result.confidence == Confidence(confidence)
    assert result.auto_confirm is (confidence == "high")


def test_confidence_cases_cover_table() -> None:
    covered = [case[5] for case in CONFIDENCE_CASES]

    assert covered == [rule.name for rule in SHIPPED.confidence]


# Cases that the shipped tables were written for: which data leaked, and how sure the match is.
def test_example_id_number_with_bank_card() -> None:
    breach = _breach("Government issued IDs", "Bank account numbers", "Names")

    result = assess(_facts("id_number", found_by="dataset"), breach, SHIPPED)

    assert result.severity is Severity.CRITICAL
    assert result.confidence is Confidence.HIGH
    assert result.auto_confirm is True


def test_example_mobile_in_breach_with_id_numbers() -> None:
    breach = _breach("Phone numbers", "Government issued IDs")

    result = assess(_facts("mobile"), breach, SHIPPED)

    assert result.severity is Severity.HIGH
    assert result.severity_rule == "breach_exposes_id_number_bank_card_or_password"


def test_example_email_in_breach_with_phones() -> None:
    breach = _breach("Email addresses", "Phone numbers")

    result = assess(_facts("email", found_by="hibp", confirmed=True), breach, SHIPPED)

    assert result.severity is Severity.MEDIUM
    assert result.confidence is Confidence.HIGH
    assert result.auto_confirm is True


def test_example_shared_mobile_waits_for_review() -> None:
    breach = _breach("Phone numbers", "Names")

    result = assess(_facts("mobile", shared=True), breach, SHIPPED)

    assert result.severity is Severity.MEDIUM
    assert result.confidence is Confidence.LOW
    assert result.auto_confirm is False


def test_example_unverified_breach_waits_for_review() -> None:
    breach = _breach("Email addresses", "Passwords", verified=False)

    result = assess(_facts("email", found_by="hibp", confirmed=True), breach, SHIPPED)

    assert result.severity is Severity.HIGH
    assert result.confidence is Confidence.LOW
    assert result.auto_confirm is False


def test_first_match_order_decides() -> None:
    # An ID number in a breach with passwords satisfies rules 0 and 1. Rule 0 comes first.
    breach = _breach("Government issued IDs", "Passwords")
    assert assess(_facts("id_number"), breach, SHIPPED).severity is Severity.CRITICAL

    document = _document()
    document["severity"][0], document["severity"][1] = (
        document["severity"][1],
        document["severity"][0],
    )
    swapped = parse_rules(document)

    result = assess(_facts("id_number"), breach, swapped)

    assert result.severity is Severity.HIGH
    assert result.severity_rule == "breach_exposes_id_number_bank_card_or_password"


def test_default_rule_applies() -> None:
    document = _minimal()
    document["severity"].insert(
        0, {"name": "never", "when": {"matched_any": ["bank_card"]}, "result": "critical"}
    )
    rules = parse_rules(document)

    result = assess(_facts("email"), _breach("Email addresses"), rules)

    assert result.severity_rule == "default"
    assert result.severity is Severity.LOW


def test_unknown_breach_assessed() -> None:
    # The index found an ID number for a breach that the catalogue does not have.
    result = assess(_facts("id_number", found_by="index"), None, SHIPPED)

    assert result.severity is Severity.HIGH
    assert result.confidence is Confidence.MEDIUM
    assert result.auto_confirm is False


def test_unknown_breach_exposes_matched_kinds() -> None:
    document = _minimal()
    document["severity"].insert(
        0, {"name": "card", "when": {"breach_exposes_any": ["bank_card"]}, "result": "high"}
    )
    rules = parse_rules(document)

    assert assess(_facts("bank_card"), None, rules).severity is Severity.HIGH
    assert assess(_facts("email"), None, rules).severity is Severity.LOW


def test_catalogued_condition() -> None:
    document = _minimal()
    document["confidence"].insert(
        0, {"name": "uncatalogued", "when": {"catalogued": False}, "result": "medium"}
    )
    rules = parse_rules(document)

    assert assess(_facts("email"), None, rules).confidence_rule == "uncatalogued"
    assert assess(_facts("email"), _breach("Email addresses"), rules).confidence_rule == "default"


def test_matched_kind_counts_as_exposed() -> None:
    # A bank card matched although the breach's data classes list no cards. The match proves
    # that the breach exposed a bank card.
    breach = _breach("Email addresses", "Names")

    result = assess(_facts("bank_card"), breach, SHIPPED)

    assert result.severity_rule == "breach_exposes_id_number_bank_card_or_password"
    assert result.severity is Severity.HIGH


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        ("high", {"high": True, "medium": False, "low": False}),
        ("medium", {"high": True, "medium": True, "low": False}),
        ("low", {"high": True, "medium": True, "low": True}),
        (None, {"high": False, "medium": False, "low": False}),
    ],
)
def test_auto_confirm_threshold(threshold: str | None, expected: dict[str, bool]) -> None:
    for confidence, auto_confirm in expected.items():
        document = _minimal()
        document["auto_confirm_min_confidence"] = threshold
        document["confidence"][0]["result"] = confidence
        rules = parse_rules(document)

        result = assess(_facts("email"), _breach("Email addresses"), rules)

        assert result.auto_confirm is auto_confirm, confidence


def test_shipped_rules_load_from_path(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(_document()), encoding="utf-8")

    assert load_rules(path) == SHIPPED
    assert isinstance(SHIPPED, RiskRules)


def test_invalid_json_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"schema_version": 1,\n"severity": [', encoding="utf-8")

    with pytest.raises(RiskRulesError) as caught:
        load_rules(path)

    assert caught.value.fields == ["rules"]
    assert str(path) in str(caught.value)
    assert "line 2" in str(caught.value)


def test_non_object_rejected() -> None:
    with pytest.raises(RiskRulesError) as caught:
        parse_rules("[]")

    assert caught.value.fields == ["rules"]


def test_unknown_condition_rejected() -> None:
    document = _document()
    document["severity"][2]["when"]["matched_all"] = ["mobile"]

    assert _fields(document) == ["severity[2].when.matched_all"]


def test_unknown_rule_key_rejected() -> None:
    document = _document()
    document["confidence"][1]["then"] = "high"

    assert _fields(document) == ["confidence[1].then"]


def test_unknown_top_level_key_rejected() -> None:
    document = _minimal()
    document["auto_confirm"] = "high"

    assert _fields(document) == ["auto_confirm"]


def test_invalid_kind_rejected() -> None:
    document = _document()
    document["severity"][0]["when"]["matched_any"] = ["id_number", "phone"]

    with pytest.raises(RiskRulesError) as caught:
        parse_rules(document)

    assert caught.value.fields == ["severity[0].when.matched_any[1]"]
    assert "'mobile'" in str(caught.value)


def test_invalid_data_kind_rejected() -> None:
    document = _document()
    document["severity"][1]["when"]["breach_exposes_any"] = ["Passwords"]

    assert _fields(document) == ["severity[1].when.breach_exposes_any[0]"]


def test_invalid_result_rejected() -> None:
    document = _document()
    document["confidence"][0]["result"] = "critical"
    document["severity"][0]["result"] = "severe"

    assert _fields(document) == ["severity[0].result", "confidence[0].result"]


def test_string_boolean_rejected() -> None:
    document = _document()
    document["confidence"][0]["when"]["verified"] = "true"

    assert _fields(document) == ["confidence[0].when.verified"]


def test_empty_list_condition_rejected() -> None:
    document = _document()
    document["severity"][2]["when"]["matched_any"] = []

    assert _fields(document) == ["severity[2].when.matched_any"]


def test_missing_fields_rejected() -> None:
    document = _document()
    del document["severity"][3]["result"]
    del document["auto_confirm_min_confidence"]

    with pytest.raises(RiskRulesError) as caught:
        parse_rules(document)

    assert caught.value.fields == ["auto_confirm_min_confidence", "severity[3].result"]
    assert {problem.code for problem in caught.value.problems} == {"field.missing"}


def test_missing_default_rejected() -> None:
    document = _document()
    del document["severity"][-1]

    with pytest.raises(RiskRulesError) as caught:
        parse_rules(document)

    assert caught.value.fields == ["severity"]
    assert "last rule (3, 'email_with_phone_or_address')" in str(caught.value)


def test_early_default_rejected() -> None:
    document = _document()
    document["confidence"][2]["when"] = {}

    with pytest.raises(RiskRulesError) as caught:
        parse_rules(document)

    assert caught.value.fields == ["confidence"]
    assert "rule 2 ('exact_id_number_or_bank_card_unverified') has no conditions" in str(
        caught.value
    )


def test_null_conditions_count_as_empty() -> None:
    document = _document()
    document["confidence"][2]["when"] = {"verified": None}

    assert _fields(document) == ["confidence"]


def test_empty_table_rejected() -> None:
    document = _minimal()
    document["confidence"] = []

    with pytest.raises(RiskRulesError) as caught:
        parse_rules(document)

    assert caught.value.fields == ["confidence"]
    assert "at least one rule" in str(caught.value)


def test_repeated_name_rejected() -> None:
    document = _document()
    document["severity"][3]["name"] = "mobile_matched"

    with pytest.raises(RiskRulesError) as caught:
        parse_rules(document)

    assert caught.value.fields == ["severity"]
    assert "rule 3 repeats the name 'mobile_matched'" in str(caught.value)


def test_every_rule_invalid_reported_once() -> None:
    document = _minimal()
    document["severity"][0]["result"] = "none"

    assert _fields(document) == ["severity[0].result"]


def test_schema_version_checked() -> None:
    document = _minimal()
    document["schema_version"] = 2

    assert _fields(document) == ["schema_version"]


def test_facts_reject_unmatched_kind_facts() -> None:
    with pytest.raises(ValidationError, match="mobile_shared"):
        _facts("email", shared=True)

    with pytest.raises(ValidationError, match="email_confirmed"):
        _facts("mobile", confirmed=True)


def test_facts_reject_bad_input() -> None:
    with pytest.raises(ValidationError) as caught:
        ExposureFacts.model_validate({"matched_kinds": [], "found_by": "web"})

    fields = [error["loc"] for error in caught.value.errors()]
    assert fields == [("matched_kinds",), ("found_by",)]
