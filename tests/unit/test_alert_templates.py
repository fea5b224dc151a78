"""Unit tests for the alert SMS and e-mail: every template, locale and kind, lengths and content."""

from __future__ import annotations

import html
import itertools
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from idsentry.alert_templates import (
    ALERT_SMS_TEMPLATES,
    CARRIER_SIGNATURE,
    HIBP_URL,
    NEXT_STEPS,
    SMS_SEVERITIES,
    AlertContent,
    Confidence,
    FoundBy,
    Severity,
    render_alert_email,
    render_alert_sms,
)
from idsentry.i18n import SUPPORTED_LOCALES, Locale
from idsentry.identifiers import IdentifierKind, mask
from idsentry.models.breach import Breach, DataKind
from idsentry.sms_segments import count_segments
from idsentry.templates import SMS_TEMPLATES, render_sms

pytestmark = pytest.mark.unit

# Canonical identifiers (made up) and their masked forms, per kind.
RAW: dict[IdentifierKind, str] = {
    IdentifierKind.ID_NUMBER: "11010519491231002X",
    IdentifierKind.MOBILE: "+8619500000001",
    IdentifierKind.EMAIL: "zhang.san.example@mail.example-university.edu.cn",
    IdentifierKind.BANK_CARD: "6222021234567890123",
}
MASKED = {kind: mask(kind, raw) for kind, raw in RAW.items()}
# The longest masked forms we expect in practice: a foreign mobile and a long e-mail domain.
LONG_MASKED: dict[IdentifierKind, str] = {
    IdentifierKind.ID_NUMBER: MASKED[IdentifierKind.ID_NUMBER],
    IdentifierKind.MOBILE: mask(IdentifierKind.MOBILE, "+447911123456"),
    IdentifierKind.EMAIL: MASKED[IdentifierKind.EMAIL],
    IdentifierKind.BANK_CARD: MASKED[IdentifierKind.BANK_CARD],
}
TITLES: dict[Locale, str] = {
    "zh-CN": "某某网络科技有限公司会员中心数据库二〇二四年三月泄露事件汇总",
    "en": "Example Online Shopping Mall 2",
}
FOUND_AT = datetime(2026, 3, 1, 20, 30, tzinfo=UTC)  # 2026-03-02 04:30 in Asia/Shanghai

SEVERITIES: tuple[Severity, ...] = tuple(Severity)
CONFIDENCES: tuple[Confidence, ...] = tuple(Confidence)


def make_breach(source: str = "dataset", **fields: Any) -> Breach:
    record: dict[str, Any] = {
        "source": source,
        "Name": "CnShop2024",
        "Title": "某购物网站 2024",
        "BreachDate": "2024-02-10",
        "DataClasses": ["Email addresses", "Phone numbers"],
        "IsVerified": True,
    }
    record.update(fields)
    return Breach.model_validate(record)


def make_alert(
    kind: IdentifierKind = IdentifierKind.EMAIL,
    breach: Breach | None = None,
    found_by: FoundBy = "index",
    severity: Severity = "high",
    confidence: Confidence = "high",
) -> AlertContent:
    return AlertContent(
        kind=kind,
        masked_identifier=MASKED[kind],
        breach=breach or make_breach(),
        found_at=FOUND_AT,
        found_by=found_by,
        severity=severity,
        confidence=confidence,
    )


def test_long_title_is_30_characters() -> None:
    assert len(TITLES["zh-CN"]) == 30
    assert len(TITLES["en"]) == 30


def test_sms_templates_cover_severities_and_locales() -> None:
    assert set(ALERT_SMS_TEMPLATES) == set(SMS_SEVERITIES) == {"high", "critical"}
    for severity, entry in ALERT_SMS_TEMPLATES.items():
        assert set(entry) == set(SUPPORTED_LOCALES), severity


@pytest.mark.parametrize(
    ("severity", "locale", "kind"),
    list(itertools.product(SMS_SEVERITIES, SUPPORTED_LOCALES, IdentifierKind)),
)
def test_alert_sms_fits_two_segments(
    severity: Severity, locale: Locale, kind: IdentifierKind
) -> None:
    text = render_alert_sms(
        severity,
        locale,
        kind=kind,
        masked_identifier=LONG_MASKED[kind],
        breach_title=TITLES[locale],
    )
    count = count_segments(text, CARRIER_SIGNATURE)

    assert LONG_MASKED[kind] in text
    assert count.segments <= 2
    assert "http" not in text
    assert "www." not in text


@pytest.mark.parametrize(
    ("severity", "locale"), list(itertools.product(SMS_SEVERITIES, SUPPORTED_LOCALES))
)
def test_alert_sms_worst_case_title(severity: Severity, locale: Locale) -> None:
    # 30 full-width characters is the longest title the SMS shows.
    text = render_alert_sms(
        severity,
        locale,
        kind=IdentifierKind.EMAIL,
        masked_identifier=LONG_MASKED[IdentifierKind.EMAIL],
        breach_title="泄" * 30,
    )

    assert "泄" * 30 in text
    assert count_segments(text, CARRIER_SIGNATURE).segments <= 2


def test_alert_sms_shortens_long_title() -> None:
    text = render_alert_sms(
        "high",
        "zh-CN",
        kind=IdentifierKind.ID_NUMBER,
        masked_identifier=MASKED[IdentifierKind.ID_NUMBER],
        breach_title="泄" * 80,
    )

    assert "泄" * 29 + "…" in text
    assert "泄" * 30 not in text


def test_alert_sms_zh_wording() -> None:
    text = render_alert_sms(
        "critical",
        "zh-CN",
        kind=IdentifierKind.ID_NUMBER,
        masked_identifier="1101**********002X",
        breach_title="某购物网站",
    )

    assert (
        text
        == "紧急：您的身份证号1101**********002X出现在“某购物网站”泄露数据中。请立即按我们邮件中的步骤处理。"
    )


@pytest.mark.parametrize("severity", ["low", "medium"])
def test_alert_sms_rejects_low_severity(severity: Severity) -> None:
    with pytest.raises(ValueError, match="gets no SMS"):
        render_alert_sms(
            severity,
            "zh-CN",
            kind=IdentifierKind.MOBILE,
            masked_identifier=MASKED[IdentifierKind.MOBILE],
            breach_title="x",
        )


def test_alert_sms_rejects_raw_identifier() -> None:
    with pytest.raises(ValueError, match="masked_identifier"):
        render_alert_sms(
            "high",
            "en",
            kind=IdentifierKind.MOBILE,
            masked_identifier=RAW[IdentifierKind.MOBILE],
            breach_title="x",
        )


def test_alert_sms_rejects_long_identifier() -> None:
    with pytest.raises(ValueError, match="masked_identifier is too long"):
        render_alert_sms(
            "high",
            "en",
            kind=IdentifierKind.EMAIL,
            masked_identifier="z***@" + "a" * 120 + ".example",
            breach_title="x",
        )


def test_alert_sms_rejects_unknown_locale() -> None:
    with pytest.raises(ValueError, match="locale 'fr'"):
        render_alert_sms(
            "high",
            "fr",  # type: ignore[arg-type]
            kind=IdentifierKind.MOBILE,
            masked_identifier=MASKED[IdentifierKind.MOBILE],
            breach_title="x",
        )


def test_otp_sms_zh_one_segment_with_signature() -> None:
    text = render_sms("otp", "zh-CN", code="123456")

    assert count_segments(text, CARRIER_SIGNATURE).segments == 1


def test_otp_sms_en_one_segment_with_signature() -> None:
    text = render_sms("otp", "en", code="123456")

    assert count_segments(text, CARRIER_SIGNATURE).segments == 1


def test_otp_sms_en_one_segment_without_signature() -> None:
    text = render_sms("otp", "en", code="123456")
    count = count_segments(text)

    assert count.encoding == "GSM-7"
    assert count.segments == 1
    assert set(SMS_TEMPLATES["otp"]) == set(SUPPORTED_LOCALES)


@pytest.mark.parametrize(
    ("locale", "kind", "severity"),
    list(itertools.product(SUPPORTED_LOCALES, IdentifierKind, SEVERITIES)),
)
def test_alert_email_every_variant(
    locale: Locale, kind: IdentifierKind, severity: Severity
) -> None:
    alert = make_alert(kind=kind, severity=severity)
    email = render_alert_email(alert, locale)

    for part in (email.text, email.html):
        assert MASKED[kind] in part
        assert RAW[kind] not in part
        assert "2024-02-10" in part
        assert "2026-03-02 04:30" in part
        assert "2026-03-01" not in part
    assert RAW[kind] not in email.subject
    assert email.html.startswith(f'<!doctype html><html lang="{locale}">')


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_alert_email_every_confidence(locale: Locale) -> None:
    texts = {
        confidence: render_alert_email(make_alert(confidence=confidence), locale).text
        for confidence in CONFIDENCES
    }

    assert len(set(texts.values())) == len(CONFIDENCES)


def test_alert_email_zh_facts() -> None:
    breach = make_breach(IsVerified=False)
    email = render_alert_email(make_alert(breach=breach, severity="critical"), "zh-CN")

    assert email.subject == "您的邮箱出现在“某购物网站 2024”泄露数据中 - 身份哨兵"
    assert "泄露事件：某购物网站 2024" in email.text
    assert "泄露发生日期：2024-02-10" in email.text
    assert "我们发现的时间：2026-03-02 04:30（北京时间）" in email.text
    assert "是否已核实：未核实" in email.text
    assert "风险等级：严重。" in email.text
    assert "可信度：高。" in email.text


def test_alert_email_en_facts() -> None:
    email = render_alert_email(make_alert(severity="medium", confidence="low"), "en")

    assert email.subject == "Your e-mail address is in the 某购物网站 2024 breach - IDSentry"
    assert "Breach date: 2024-02-10" in email.text
    assert "We found it on: 2026-03-02 04:30 (China Standard Time)" in email.text
    assert "Breach verified: Yes" in email.text
    assert "Severity: Medium." in email.text
    assert "Confidence: Low." in email.text


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_alert_email_steps_per_kind(locale: Locale) -> None:
    classes = [
        "Government issued IDs",
        "Bank account numbers",
        "Passwords",
        "Phone numbers",
        "Email addresses",
        "Physical addresses",
        "Names",
    ]
    breach = make_breach(DataClasses=classes)
    email = render_alert_email(make_alert(breach=breach), locale)

    for kind in DataKind:
        steps = NEXT_STEPS[kind][locale]
        assert 1 <= len(steps) <= 3, kind
        for step in steps:
            assert step in email.text, kind
            assert html.escape(step) in email.html, kind


def test_alert_email_steps_only_leaked_kinds() -> None:
    email = render_alert_email(make_alert(kind=IdentifierKind.EMAIL), "zh-CN")

    for step in NEXT_STEPS[DataKind.EMAIL]["zh-CN"] + NEXT_STEPS[DataKind.MOBILE]["zh-CN"]:
        assert step in email.text
    for step in NEXT_STEPS[DataKind.ID_NUMBER]["zh-CN"] + NEXT_STEPS[DataKind.PASSWORD]["zh-CN"]:
        assert step not in email.text


def test_alert_email_matched_kind_has_steps() -> None:
    # The matched identifier leaked even when the breach's data classes leave it out.
    email = render_alert_email(make_alert(kind=IdentifierKind.BANK_CARD), "en")

    assert NEXT_STEPS[DataKind.BANK_CARD]["en"][0] in email.text


def test_id_number_steps_name_services() -> None:
    zh = "".join(NEXT_STEPS[DataKind.ID_NUMBER]["zh-CN"])
    en = "".join(NEXT_STEPS[DataKind.ID_NUMBER]["en"])

    for name in ("一证通查", "云闪付", "一键查卡", "人民银行征信中心", "110", "国家反诈中心"):
        assert name in zh, name
        assert name in en, name
    assert "96110" in "".join(NEXT_STEPS[DataKind.MOBILE]["en"])


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_alert_email_credits_hibp(locale: Locale) -> None:
    email = render_alert_email(make_alert(found_by="hibp"), locale)

    assert "Have I Been Pwned" in email.text
    assert HIBP_URL in email.text
    assert "CC BY 4.0" in email.text
    assert f'<a href="{HIBP_URL}">{HIBP_URL}</a>' in email.html


def test_alert_email_credits_hibp_catalogue() -> None:
    breach = make_breach(source="hibp")
    email = render_alert_email(make_alert(breach=breach, found_by="index"), "en")

    assert HIBP_URL in email.text


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_alert_email_no_hibp_credit(locale: Locale) -> None:
    email = render_alert_email(make_alert(found_by="dataset"), locale)

    assert "Have I Been Pwned" not in email.text
    assert "haveibeenpwned" not in email.html


def test_alert_email_escapes_html() -> None:
    breach = make_breach(Title='<script>alert("x")</script> & Co')
    email = render_alert_email(make_alert(breach=breach), "en")

    assert "<script>" not in email.html
    assert "&lt;script&gt;" in email.html
    assert "&amp; Co" in email.html
    assert '<script>alert("x")</script> & Co' in email.text


def test_alert_email_rejects_raw_identifier() -> None:
    alert = AlertContent(
        kind=IdentifierKind.EMAIL,
        masked_identifier=RAW[IdentifierKind.EMAIL],
        breach=make_breach(),
        found_at=FOUND_AT,
        found_by="index",
        severity="high",
        confidence="high",
    )

    with pytest.raises(ValueError, match="masked_identifier"):
        render_alert_email(alert, "zh-CN")


def test_alert_email_rejects_naive_found_at() -> None:
    alert = AlertContent(
        kind=IdentifierKind.EMAIL,
        masked_identifier=MASKED[IdentifierKind.EMAIL],
        breach=make_breach(),
        found_at=datetime(2026, 3, 1, 20, 30),
        found_by="index",
        severity="high",
        confidence="high",
    )

    with pytest.raises(ValueError, match="found_at must be timezone-aware"):
        render_alert_email(alert, "en")


@pytest.mark.parametrize(
    ("timezone", "locale", "shown"),
    [
        ("Asia/Shanghai", "zh-CN", "2026-11-20 18:30（北京时间）"),
        ("Europe/London", "en", "2026-11-20 10:30 (Europe/London time)"),
        ("Mars/Olympus_Mons", "en", "2026-11-20 18:30 (China Standard Time)"),
    ],
)
def test_discovery_time_on_subscriber_clock(timezone: str, locale: Locale, shown: str) -> None:
    alert = replace(make_alert(), found_at=datetime(2026, 11, 20, 10, 30, tzinfo=UTC))

    email = render_alert_email(alert, locale, timezone=timezone)

    assert shown in email.text
