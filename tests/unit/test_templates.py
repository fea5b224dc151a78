"""Unit tests for SMS lengths and encodings and for e-mail rendering with escaped variables."""

from __future__ import annotations

import html
import re

import pytest

from idsentry.i18n import SUPPORTED_LOCALES, Locale
from idsentry.templates import _EMAIL_TEXT, SMS_TEMPLATES, render_email, render_sms

pytestmark = pytest.mark.unit

# One UCS-2 segment contains 70 characters. Twilio adds this carrier signature for +86 numbers.
UCS2_SEGMENT = 70
SIGNATURE = "【身份哨兵】"
GSM7_SEGMENT = 160
# GSM 03.38 basic character set (3GPP TS 23.038, section 6.2.1), escape character excluded.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table, each sent as two septets.
GSM7_EXTENSION = "\f^{}\\[~]|€"
CODES = ("000000", "012345", "999999")

LINK = "https://idsentry.example/v1/email-confirmations/eyJleHAiOjF9.c2ln?x=1&y=2"
MASKED_EMAIL = "z***@example.com"


def gsm7_septets(text: str) -> int:
    """Count septets, raising ValueError for a character outside GSM-7."""
    count = 0
    for character in text:
        if character in GSM7_BASIC:
            count += 1
        elif character in GSM7_EXTENSION:
            count += 2
        else:
            raise ValueError(f"not GSM-7: {character!r}")
    return count


def test_sms_kinds_have_both_locales() -> None:
    for kind, entry in SMS_TEMPLATES.items():
        assert set(entry) == set(SUPPORTED_LOCALES), kind


@pytest.mark.parametrize("code", CODES)
def test_otp_sms_zh_one_segment(code: str) -> None:
    text = render_sms("otp", "zh-CN", code=code)

    assert code in text
    assert len(text) <= UCS2_SEGMENT - len(SIGNATURE)
    assert len(SIGNATURE + text) <= UCS2_SEGMENT
    # UCS-2 cannot hold characters outside the Basic Multilingual Plane.
    assert all(ord(character) <= 0xFFFF for character in text)


@pytest.mark.parametrize("code", CODES)
def test_otp_sms_en_gsm7(code: str) -> None:
    text = render_sms("otp", "en", code=code)

    assert code in text
    assert gsm7_septets(text) <= GSM7_SEGMENT


def test_gsm7_count_rejects_other_text() -> None:
    assert gsm7_septets("a{b}") == 6
    with pytest.raises(ValueError, match="not GSM-7"):
        gsm7_septets("验证码")
    with pytest.raises(ValueError, match="not GSM-7"):
        gsm7_septets("it’s")


def test_sms_missing_variable() -> None:
    with pytest.raises(KeyError):
        render_sms("otp", "en")


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_confirmation_email(locale: Locale) -> None:
    email = render_email("email_confirmation", locale, masked_email=MASKED_EMAIL, link=LINK)

    assert email.subject == _EMAIL_TEXT["email_confirmation"][locale][0]
    assert MASKED_EMAIL in email.text
    assert LINK in email.text
    assert email.html.startswith("<!doctype html>")
    assert f'<html lang="{locale}">' in email.html
    assert '<meta charset="utf-8">' in email.html
    assert f"<title>{html.escape(email.subject)}</title>" in email.html


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_email_link_is_anchor(locale: Locale) -> None:
    email = render_email("email_confirmation", locale, masked_email=MASKED_EMAIL, link=LINK)
    escaped = html.escape(LINK)

    assert f'<a href="{escaped}">{escaped}</a>' in email.html
    assert email.html.count("<a ") == 1
    # The raw '&' of the query string only appears escaped in the HTML.
    assert LINK not in email.html


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_email_escapes_variables(locale: Locale) -> None:
    hostile = "a<b>&\"c'@example.com"
    hostile_link = 'https://idsentry.example/x"><script>alert(1)</script>'

    email = render_email("email_confirmation", locale, masked_email=hostile, link=hostile_link)

    assert hostile in email.text
    assert hostile_link in email.text
    assert html.escape(hostile) in email.html
    assert "<b>" not in email.html
    assert "<script>" not in email.html
    assert hostile_link not in email.html
    assert f'href="{html.escape(hostile_link)}"' in email.html


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_email_paragraphs(locale: Locale) -> None:
    email = render_email("email_confirmation", locale, masked_email=MASKED_EMAIL, link=LINK)

    body = re.search(r"<body>(.*)</body>", email.html, re.DOTALL)
    assert body is not None
    assert body.group(1).count("<p>") == email.text.count("\n\n") + 1
    assert "\n" not in body.group(1)


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_reassigned_email(locale: Locale) -> None:
    masked = "1101**********109X"

    email = render_email("identifier_reassigned", locale, masked_identifier=masked)

    assert email.subject
    assert masked in email.text
    assert masked in email.html
    assert "<a " not in email.html


def test_email_kinds_have_both_locales() -> None:
    for kind, entry in _EMAIL_TEXT.items():
        assert set(entry) == set(SUPPORTED_LOCALES), kind


# Every variable any e-mail or SMS template uses, with a value of its usual shape.
TEMPLATE_VARIABLES = {
    "code": "123456",
    "masked_email": "w***@example.com",
    "masked_identifier": "1101**********1239",
    "masked_mobile": "138****8001",
    "link": "https://idsentry.example.com/v1/billing/token",
    "amount": "¥18.00",
    "until": "2026年12月11日",
    "attempt": "2",
    "months": "6",
    "title": "月度安全报告",
    "month": "2026-11",
    "purchased": "2026-12-04",
    "since": "2026-01-15",
}


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("kind", sorted(_EMAIL_TEXT))
def test_every_email_renders(kind: str, locale: Locale) -> None:
    email = render_email(kind, locale, **TEMPLATE_VARIABLES)

    assert "{" not in email.subject + email.text
    assert email.html.startswith(f'<!doctype html><html lang="{locale}">')


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("kind", sorted(SMS_TEMPLATES))
def test_every_sms_renders(kind: str, locale: Locale) -> None:
    text = render_sms(kind, locale, **TEMPLATE_VARIABLES)

    assert "{" not in text
    assert "http" not in text
