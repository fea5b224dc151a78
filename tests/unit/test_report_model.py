"""Report data built from main-table items: exposures, alerts, deliveries, steps and checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from idsentry.identifiers import IdentifierKind
from idsentry.reports.model import (
    MaskedIdentifier,
    ReportDataError,
    from_records,
    related_keys,
    report_data,
    sms_pointer_keys,
)
from infra.tools.report_samples import (
    GENERATED_AT,
    MASKED,
    REPORT_MONTH,
    SUBSCRIBER_ID,
    epoch,
    sample_records,
)

pytestmark = pytest.mark.unit

RAW_ID_NUMBER = "11010519491231002X"
RAW_MOBILE = "19512340001"


def _facts(locale: str = "zh-CN"):
    partition, related = sample_records(locale)
    return from_records(SUBSCRIBER_ID, partition, related, MASKED)


def _by_breach(facts):
    return {exposure.breach.name: exposure for exposure in facts.exposures}


def test_profile_locale_and_time_zone():
    assert _facts("zh-CN").locale == "zh-CN"
    assert _facts("en").locale == "en"
    assert _facts().timezone == "Asia/Shanghai"


def test_unknown_locale_falls_back_to_chinese():
    partition, related = sample_records("fr")
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    assert facts.locale == "zh-CN"


def test_identifiers_masked_most_harmful_first():
    facts = _facts()
    assert [(identifier.kind.value, identifier.masked) for identifier in facts.identifiers] == [
        ("id_number", "1101**********100X"),
        ("mobile", "195****0001"),
        ("email", "z***@example.com"),
    ]


def test_exposure_fields_from_items():
    shop = _by_breach(_facts())["ExampleShop"]
    assert shop.breach.title == "示例商城"
    assert shop.breach.breach_date.isoformat() == "2026-04-20"
    assert shop.breach.verified is True
    assert shop.breach.source == "dataset"
    assert shop.breach.pwn_count == 1_250_000
    assert shop.found_at == datetime.fromtimestamp(epoch(2026, 5, 3, 10, 15), UTC)
    assert shop.found_by == "dataset"
    assert shop.status == "confirmed"
    assert shop.severity == "critical"
    assert shop.confidence == "high"
    assert shop.confirmed_by == "rules"
    assert [identifier.masked for identifier in shop.matched] == [
        "1101**********100X",
        "195****0001",
    ]


def test_exposed_kinds_add_breach_data_classes():
    shop = _by_breach(_facts())["ExampleShop"]
    assert [kind.value for kind in shop.exposed_kinds] == ["id_number", "mobile", "address", "name"]


def test_analyst_confirmation_uses_decision_time():
    mail = _by_breach(_facts())["MailCloud"]
    assert mail.confirmed_by == "analyst"
    assert mail.confirmed_at == datetime.fromtimestamp(epoch(2026, 2, 15, 11), UTC)


def test_statuses_of_unconfirmed_exposures():
    exposures = _by_breach(_facts())
    assert exposures["Telecom2026"].status == "pending_review"
    assert exposures["SpamList"].status == "dismissed"
    assert exposures["Telecom2026"].confirmed_at is None


def test_exposure_without_alert_is_not_scored():
    partition, related = sample_records()
    del partition["ALERT#ExampleShop"]
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    shop = _by_breach(facts)["ExampleShop"]
    assert shop.status == "not_scored"
    assert shop.steps_done == ()


def test_uncatalogued_breach_has_unknown_verification():
    partition, related = sample_records()
    del related[("BREACH#ExampleShop", "BREACH")]
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    shop = _by_breach(facts)["ExampleShop"]
    assert shop.breach.verified is None
    assert shop.breach.title == "ExampleShop"
    assert [kind.value for kind in shop.exposed_kinds] == ["id_number", "mobile"]


def test_steps_done_with_their_times():
    mail = _by_breach(_facts())["MailCloud"]
    assert [(step.step_id, step.done_at) for step in mail.steps_done] == [
        ("change_reused_passwords", datetime.fromtimestamp(epoch(2026, 5, 10, 21), UTC)),
        ("enable_two_step_verification", datetime.fromtimestamp(epoch(2026, 5, 10, 21, 5), UTC)),
    ]


def test_delivery_statuses_from_provider_reports():
    deliveries = {(d.alert_id, d.channel): d for d in _facts().deliveries}
    assert deliveries[("alt_shop", "email")].status == "sent"
    assert deliveries[("alt_shop", "sms")].status == "delivered"
    assert deliveries[("alt_mail", "email")].status == "bounced"
    assert deliveries[("alt_shop", "email")].at == datetime.fromtimestamp(
        epoch(2026, 5, 3, 10, 20), UTC
    )
    # Channels without a ledger record or a deferred job are not listed.
    assert ("alt_mail", "sms") not in deliveries


def test_deferred_sms_and_failed_email():
    partition, related = sample_records()
    del related[("NOTIFY#alert:alt_shop", "sms")]
    related[("DEFER#job_alt_shop", "DEFER")] = {
        "pk": "DEFER#job_alt_shop",
        "sk": "DEFER",
        "release_at": epoch(2026, 5, 4, 8),
    }
    related[("NOTIFY#alert:alt_shop", "email")].update(state="failed", error_code="MessageRejected")
    deliveries = {
        (d.alert_id, d.channel): d
        for d in from_records(SUBSCRIBER_ID, partition, related, MASKED).deliveries
    }
    assert deliveries[("alt_shop", "sms")].status == "deferred"
    assert deliveries[("alt_shop", "sms")].at == datetime.fromtimestamp(epoch(2026, 5, 4, 8), UTC)
    assert deliveries[("alt_shop", "email")].status == "failed"
    assert deliveries[("alt_shop", "email")].error_code == "MessageRejected"


def test_check_results_from_items():
    results = sorted((r.check, r.quarter, r.counts) for r in _facts().check_results)
    assert results == [
        ("bank_cards", "2026q1", {"bank_cards": 4}),
        ("yizhengtongcha", "2026q1", {"phone_cards": 2, "internet_accounts": 5}),
        ("yizhengtongcha", "2026q2", {"phone_cards": 3, "internet_accounts": 5}),
    ]


def test_related_keys_cover_every_lookup():
    partition, related = sample_records()
    keys = related_keys(partition)
    assert ("BREACH#ExampleShop", "BREACH") in keys
    assert ("NOTIFY#alert:alt_shop", "email") in keys
    assert ("NOTIFY#alert:alt_shop", "sms") in keys
    assert ("DEFER#job_alt_shop", "DEFER") in keys
    assert len(keys) == len(set(keys))
    assert sms_pointer_keys(related) == [("SMS#SMshop", "SMS")]


def test_masked_field_rejects_a_full_id_number():
    with pytest.raises(ReportDataError, match="masked"):
        from_records(SUBSCRIBER_ID, *sample_records(), {**MASKED, "id_number": RAW_ID_NUMBER})


def test_masked_field_rejects_a_full_mobile():
    with pytest.raises(ReportDataError, match="masked"):
        from_records(SUBSCRIBER_ID, *sample_records(), {**MASKED, "mobile": RAW_MOBILE})


def test_masked_field_rejects_starred_full_number():
    with pytest.raises(ValueError, match="at most 10 digits"):
        MaskedIdentifier(kind=IdentifierKind.ID_NUMBER, masked=f"***{RAW_ID_NUMBER}")


def test_missing_found_at_names_item_and_field():
    partition, related = sample_records()
    del partition["EXPOSURE#OldForum"]["found_at"]
    with pytest.raises(ReportDataError, match=r"EXPOSURE#OldForum: found_at must be epoch seconds"):
        from_records(SUBSCRIBER_ID, partition, related, MASKED)


def test_invalid_time_zone_names_the_field():
    partition, related = sample_records()
    partition["PREFS"]["timezone"] = "Mars/Olympus"
    with pytest.raises(ReportDataError, match="timezone: must be an IANA time zone"):
        from_records(SUBSCRIBER_ID, partition, related, MASKED)


def test_unknown_identifier_kind_is_rejected():
    with pytest.raises(ReportDataError, match="unknown identifier kind 'passport'"):
        from_records(SUBSCRIBER_ID, *sample_records(), {"passport": "E1***567"})


def test_report_month_must_be_yyyy_mm():
    facts = _facts()
    with pytest.raises(ReportDataError, match="month"):
        report_data(facts, "2026-13", GENERATED_AT)
    assert report_data(facts, REPORT_MONTH, GENERATED_AT).month == "2026-05"


def test_generated_at_must_carry_a_time_zone():
    with pytest.raises(ReportDataError, match="generated_at"):
        report_data(_facts(), REPORT_MONTH, datetime(2026, 6, 1, 9))
