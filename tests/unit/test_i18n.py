"""Unit tests for the message catalogue, its coverage of error codes and locale negotiation."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from pathlib import Path

import pytest

from idsentry import i18n
from idsentry.i18n import DEFAULT_LOCALE, MESSAGES, SUPPORTED_LOCALES, message, negotiate_locale
from idsentry.identifiers import ERROR_MESSAGES
from idsentry.services.otp import CodeCheck

pytestmark = pytest.mark.unit

PACKAGE = Path(i18n.__file__).resolve().parent
# Modules whose dotted string literals are all message codes (FieldProblem or DomainError codes).
CODE_SOURCES = (
    "models/signup.py",
    "services/signup.py",
    "services/idempotency.py",
    "services/limits.py",
    "services/email_links.py",
    "consents.py",
    "errors.py",
    "api.py",
    "routes/signup_routes.py",
    "services/unsubscribe.py",
    "routes/preference_routes.py",
    "models/sign_in.py",
    "models/account.py",
    "services/code_requests.py",
    "services/signin.py",
    "services/account.py",
    "routes/sign_in_routes.py",
    "routes/account_routes.py",
)
_CODE_LITERAL = re.compile(r"""["']([a-z_]+\.[a-z_]+)["']""")
# Parameters that messages may use. None of them can carry the value of an identifier.
SAFE_PLACEHOLDERS = {
    "max_length",
    "current_version",
    "minimum_age",
    "region",
    "retry_after",
    "attempts_left",
    # A list name from the catalogue, and a number of days.
    "list",
    "days",
}
_CJK = re.compile(r"[\u4e00-\u9fff]")


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def source_codes(paths: Iterable[str]) -> set[str]:
    codes: set[str] = set()
    for path in paths:
        codes.update(_CODE_LITERAL.findall((PACKAGE / path).read_text(encoding="utf-8")))
    return codes


SOURCE_CODES = sorted(source_codes(CODE_SOURCES))


def test_source_scan_finds_codes() -> None:
    # A broken pattern would make the coverage test below pass vacuously, so check the scan.
    assert len(SOURCE_CODES) >= 30
    for expected in ("field.missing", "code.incorrect", "idempotency.key_invalid", "limit.ip"):
        assert expected in SOURCE_CODES


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_entry_has_both_locales(code: str) -> None:
    entry = MESSAGES[code]

    assert set(entry) == set(SUPPORTED_LOCALES)
    assert entry["zh-CN"].strip()
    assert entry["en"].strip()


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_entry_placeholders_match(code: str) -> None:
    entry = MESSAGES[code]

    assert placeholders(entry["zh-CN"]) == placeholders(entry["en"])
    assert placeholders(entry["en"]) <= SAFE_PLACEHOLDERS


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_entry_languages_not_swapped(code: str) -> None:
    entry = MESSAGES[code]

    assert _CJK.search(entry["zh-CN"]), entry["zh-CN"]
    assert not _CJK.search(entry["en"]), entry["en"]


@pytest.mark.parametrize("code", SOURCE_CODES)
def test_source_code_in_catalogue(code: str) -> None:
    assert code in MESSAGES


@pytest.mark.parametrize(
    "code",
    [code for code in sorted(ERROR_MESSAGES)],
)
def test_identifier_code_in_catalogue(code: str) -> None:
    assert code in MESSAGES


@pytest.mark.parametrize("code", sorted(set(ERROR_MESSAGES) & set(MESSAGES)))
def test_identifier_params_cover_placeholders(code: str) -> None:
    # IdentifierError supplies the parameters that its developer message names.
    assert placeholders(MESSAGES[code]["en"]) <= placeholders(ERROR_MESSAGES[code])


@pytest.mark.parametrize(
    "outcome",
    [outcome for outcome in CodeCheck if outcome not in (CodeCheck.ACCEPTED, CodeCheck.INCORRECT)],
)
def test_code_check_outcome_in_catalogue(outcome: CodeCheck) -> None:
    assert f"code.{outcome.value}" in MESSAGES


def test_message_fills_params() -> None:
    assert message("field.too_long", "en", {"max_length": "64"}) == (
        "This field is too long: at most 64 characters."
    )
    assert message("field.too_long", "zh-CN", {"max_length": "64"}) == (
        "字段过长，最多 64 个字符。"
    )


def test_message_without_params() -> None:
    assert message("name.invalid", "zh-CN") == MESSAGES["name.invalid"]["zh-CN"]
    assert message("name.invalid", "en", {}) == MESSAGES["name.invalid"]["en"]


def test_message_unknown_code() -> None:
    with pytest.raises(KeyError, match=r"no\.such_code"):
        message("no.such_code", "en")


@pytest.mark.parametrize(
    ("preferred", "explicit", "expected"),
    [
        # An explicit supported choice wins over the header.
        (["zh-CN"], "en", "en"),
        (["en-US"], "zh-CN", "zh-CN"),
        ([], "en", "en"),
        # An unsupported explicit choice is ignored.
        (["en"], "fr", "en"),
        (["en"], "EN", "en"),
        (["en"], "", "en"),
        # zh* becomes zh-CN, whatever the script or region.
        (["zh"], None, "zh-CN"),
        (["zh-TW"], None, "zh-CN"),
        (["zh-Hant-HK"], None, "zh-CN"),
        (["ZH-cn"], None, "zh-CN"),
        # en* becomes en.
        (["en"], None, "en"),
        (["en-GB"], None, "en"),
        (["EN-us"], None, "en"),
        # The first supported tag wins.
        (["fr-FR", "en", "zh"], None, "en"),
        (["de", "zh-CN", "en"], None, "zh-CN"),
        # With nothing supported, the default applies.
        ([], None, "zh-CN"),
        (["fr", "de"], None, "zh-CN"),
        (["*"], None, "zh-CN"),
        (["eng"], None, "zh-CN"),
    ],
)
def test_negotiate_locale(preferred: list[str], explicit: str | None, expected: str) -> None:
    assert negotiate_locale(preferred, explicit) == expected


def test_default_locale() -> None:
    assert DEFAULT_LOCALE == "zh-CN"
    assert SUPPORTED_LOCALES == ("zh-CN", "en")
