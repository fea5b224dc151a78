"""Canonical form, validation and masking of the identifiers that subscribers watch.

phonenumbers, email_validator and python-stdnum are imported by the functions that use them,
because most functions import this module for `IdentifierKind` and masks only, and loading
the three costs each of their cold starts tens of milliseconds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Final, assert_never
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import phonenumbers
    from email_validator import ValidatedEmail


class IdentifierKind(StrEnum):
    """Kind of identifier. Each value is also the name of its request field."""

    ID_NUMBER = "id_number"
    MOBILE = "mobile"
    EMAIL = "email"
    BANK_CARD = "bank_card"


# English messages for developers, keyed by error code. Subscriber-facing text is looked up
# by code elsewhere. No message may contain the rejected value.
ERROR_MESSAGES: Final[Mapping[str, str]] = {
    "id_number.invalid_length": "The ID number must have {length} characters.",
    "id_number.legacy_15_digit": (
        "15-digit ID numbers are not accepted. Enter the 18-digit ID number."
    ),
    "id_number.invalid_characters": (
        "The ID number must contain only digits, with an optional X as the last character."
    ),
    "id_number.unknown_region": (
        "The ID number does not start with a known province-level region code."
    ),
    "id_number.invalid_birth_date": (
        "Characters 7 to 14 of the ID number are not a valid birth date (YYYYMMDD) "
        "on or after 1900-01-01."
    ),
    "id_number.birth_date_in_future": "The birth date in the ID number is in the future.",
    "id_number.invalid_checksum": (
        "The check digit of the ID number does not match its first 17 digits. "
        "Check the number for typing errors."
    ),
    "id_number.under_minimum_age": (
        "The holder of the ID number must be at least {minimum_age} years old."
    ),
    "mobile.invalid": (
        "The mobile number is invalid. Enter an 11-digit mainland number, "
        "or an international number that starts with + or 00."
    ),
    "mobile.not_mobile": "The phone number is valid but is not a mobile number.",
    "mobile.country_not_allowed": "Mobile numbers from region {region} are not accepted.",
    "email.invalid": "The e-mail address is invalid.",
    "email.undeliverable_local_part": (
        "The part of the e-mail address before the @ must contain only ASCII characters."
    ),
    "email.invalid_domain": "The domain of the e-mail address is invalid.",
    "bank_card.invalid_characters": "The bank card number must contain only digits.",
    "bank_card.invalid_length": (
        "The bank card number must have {min_length} to {max_length} digits."
    ),
    "bank_card.invalid_checksum": (
        "The bank card number fails the Luhn check. Check the number for typing errors."
    ),
}


class IdentifierError(ValueError):
    """Invalid identifier input, with the request field, a stable code and message parameters.

    Neither the message nor ``params`` contains the rejected value, so the error is safe to log.
    """

    def __init__(self, field: str, code: str, params: Mapping[str, str] | None = None) -> None:
        self.field = str(field)
        self.code = code
        self.params: dict[str, str] = dict(params or {})
        super().__init__(ERROR_MESSAGES[code].format_map(self.params))


# Longer input cannot be an identifier, even with separators. The check runs before NFKC,
# which can expand one character into up to 18.
_MAX_RAW_LENGTH: Final = 512

# Hyphen-like characters that remain after NFKC. NFKC already maps U+2011, U+FE58, U+FE63
# and U+FF0D onto members of this set.
_HYPHENS: Final = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
_PHONE_PUNCTUATION: Final = frozenset("().")

# [0-9] matches ASCII digits only, while str.isdigit() and \d also accept digits such as
# U+0661 ARABIC-INDIC DIGIT ONE.
_ASCII_DIGITS: Final = re.compile(r"[0-9]*")
_ID_NUMBER_CHARACTERS: Final = re.compile(r"[0-9]*X?")

_ID_NUMBER_LENGTH: Final = 18
_LEGACY_ID_NUMBER_LENGTH: Final = 15

# Province-level codes of GB/T 2260, including 71 Taiwan, 81 Hong Kong and 82 Macao, plus 83.
# Residence permits for Hong Kong, Macao and Taiwan residents, issued since 2018, use the
# region codes 810000, 820000 and 830000. County codes are not checked, because re-issued
# cards keep codes of renamed or abolished counties (for example 110103 Chongwen and 110104
# Xuanwu, merged in 2010).
PROVINCE_CODES: Final = frozenset(
    [
        *(str(code) for code in range(11, 16)),
        *(str(code) for code in range(21, 24)),
        *(str(code) for code in range(31, 38)),
        *(str(code) for code in range(41, 47)),
        *(str(code) for code in range(50, 55)),
        *(str(code) for code in range(61, 66)),
        "71",
        "81",
        "82",
        "83",
    ]
)
EARLIEST_BIRTH_DATE: Final = date(1900, 1, 1)

# GB 11643-1999 check digit (ISO 7064 MOD 11-2). Weight i is 2**(17 - i) mod 11, and the
# weighted sum mod 11 indexes the check character.
CHECK_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS: Final = "10X98765432"

_CHINA_REGION: Final = "CN"
_CHINA_COUNTRY_CODE: Final = 86
_CHINA_TIME_ZONE: Final = "Asia/Shanghai"
_MAINLAND_MOBILE_LENGTH: Final = 11

_BANK_CARD_MIN_LENGTH: Final = 12
_BANK_CARD_MAX_LENGTH: Final = 19


def canonicalize(
    kind: IdentifierKind,
    raw: str,
    *,
    allowed_regions: Collection[str] = (_CHINA_REGION,),
    today: date | None = None,
) -> str:
    """Validate ``raw`` as an identifier of ``kind`` and return its canonical form.

    ``allowed_regions`` applies to mobile numbers and ``today`` to ID numbers.
    Raises IdentifierError whose ``field`` is the kind's value.
    """
    match kind:
        case IdentifierKind.ID_NUMBER:
            return canonical_id_number(raw, today=today)
        case IdentifierKind.MOBILE:
            return canonical_mobile(raw, allowed_regions)
        case IdentifierKind.EMAIL:
            return canonical_email(raw)
        case IdentifierKind.BANK_CARD:
            return canonical_bank_card(raw)
        case _:
            assert_never(kind)


def canonical_id_number(raw: str, *, today: date | None = None) -> str:
    """Validate a resident ID number and return it as 18 characters with an upper-case X.

    The number must start with a known province-level code, contain a real birth date from
    1900-01-01 to ``today`` (default: the current date in Asia/Shanghai), and end with the
    GB 11643-1999 check digit. Raises IdentifierError.
    """
    number = _normalize_id_number(raw)

    if number[:2] not in PROVINCE_CODES:
        raise _id_number_error("id_number.unknown_region")

    birth = _parse_birth_date(number)
    if birth > (today or _today_in_china()):
        raise _id_number_error("id_number.birth_date_in_future")

    if id_number_check_character(number[:17]) != number[17]:
        raise _id_number_error("id_number.invalid_checksum")

    return number


def id_number_birth_date(canonical: str) -> date:
    """Parse the birth date from characters 7 to 14 (YYYYMMDD) of an ID number.

    Input that is not yet canonical is normalized first. Raises IdentifierError when the
    characters are not a real date on or after 1900-01-01.
    """
    return _parse_birth_date(_normalize_id_number(canonical))


def age_on(birth: date, today: date) -> int:
    """Return the age in full years on ``today`` of a person born on ``birth``.

    A person turns a year older on their birthday. Someone born on 29 February turns a year
    older on 1 March in non-leap years. The result is negative when ``birth`` is after
    ``today``.
    """
    age = today.year - birth.year
    if (today.month, today.day) < (birth.month, birth.day):
        age -= 1
    return age


def is_under(birth: date, years: int, today: date) -> bool:
    """Return whether a person born on ``birth`` is younger than ``years`` on ``today``."""
    return age_on(birth, today) < years


def check_minimum_age(
    canonical: str, minimum_years: int = 14, *, today: date | None = None
) -> None:
    """Raise IdentifierError unless the ID number holder is at least ``minimum_years`` old.

    ``today`` defaults to the current date in Asia/Shanghai. The error code is
    ``id_number.under_minimum_age`` with the ``minimum_age`` parameter.
    """
    birth = id_number_birth_date(canonical)

    if is_under(birth, minimum_years, today or _today_in_china()):
        raise _id_number_error("id_number.under_minimum_age", {"minimum_age": str(minimum_years)})


def canonical_mobile(raw: str, allowed_regions: Collection[str] = (_CHINA_REGION,)) -> str:
    """Validate a mobile number and return it in E.164 form.

    Accepted forms are ``+<country code>...``, ``00<country code>...`` and a bare 11-digit
    number, which is read as a mainland China number. The number must be valid, belong to
    one of ``allowed_regions`` (ISO 3166 codes, as phonenumbers reports them) and be a
    mobile number. Raises IdentifierError.
    """
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    if isinstance(allowed_regions, str):
        raise TypeError("allowed_regions must be a collection of region codes, not a str")
    allowed = {region.upper() for region in allowed_regions}

    number = _parse_phone_number(raw)

    region = phonenumbers.region_code_for_number(number) or "ZZ"
    if region not in allowed:
        raise IdentifierError(
            IdentifierKind.MOBILE, "mobile.country_not_allowed", {"region": region}
        )

    # phonenumbers reports FIXED_LINE_OR_MOBILE where a region's ranges do not tell the
    # two apart (for example US). Mainland ranges do, so CN numbers must be MOBILE.
    mobile_types = {PhoneNumberType.MOBILE}
    if region != _CHINA_REGION:
        mobile_types.add(PhoneNumberType.FIXED_LINE_OR_MOBILE)
    if phonenumbers.number_type(number) not in mobile_types:
        raise IdentifierError(IdentifierKind.MOBILE, "mobile.not_mobile")

    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def canonical_email(raw: str) -> str:
    """Validate an e-mail address and return it lower-cased, with the domain in IDNA ASCII.

    The local part must be ASCII and unquoted, because Amazon SES does not support SMTPUTF8
    (RFC 6531). Deliverability (DNS) is not checked. Raises IdentifierError with
    ``email.undeliverable_local_part``, ``email.invalid_domain`` or ``email.invalid``.
    """
    if len(raw) > _MAX_RAW_LENGTH:
        raise IdentifierError(IdentifierKind.EMAIL, "email.invalid")
    address = unicodedata.normalize("NFKC", raw).strip()

    local_part, at_sign, domain = address.rpartition("@")
    if not at_sign:
        raise IdentifierError(IdentifierKind.EMAIL, "email.invalid")

    # Validator messages quote parts of the address, so they are dropped (from None).
    try:
        validated = _validate_email_syntax(address)
    except ValueError:
        raise IdentifierError(
            IdentifierKind.EMAIL, _classify_email_error(local_part, domain)
        ) from None

    if validated.ascii_local_part is None:
        raise IdentifierError(IdentifierKind.EMAIL, "email.undeliverable_local_part")
    return f"{validated.ascii_local_part}@{validated.ascii_domain}".lower()


def canonical_bank_card(raw: str) -> str:
    """Validate a bank card number and return its digits.

    The number must have 12 to 19 digits and pass the Luhn check. Raises IdentifierError.
    """
    if len(raw) > _MAX_RAW_LENGTH:
        raise _bank_card_length_error()
    digits = remove_separators(raw)

    if not _ASCII_DIGITS.fullmatch(digits):
        raise IdentifierError(IdentifierKind.BANK_CARD, "bank_card.invalid_characters")
    if not _BANK_CARD_MIN_LENGTH <= len(digits) <= _BANK_CARD_MAX_LENGTH:
        raise _bank_card_length_error()

    from stdnum import luhn

    if not luhn.is_valid(digits):
        raise IdentifierError(IdentifierKind.BANK_CARD, "bank_card.invalid_checksum")
    return digits


def bank_card_last_four(canonical: str) -> str:
    """Return the last four digits of a canonical bank card number.

    Raises ValueError when ``canonical`` is not a canonical bank card number.
    """
    _require_canonical_bank_card(canonical)
    return canonical[-4:]


def mask(kind: IdentifierKind, canonical: str) -> str:
    """Return the display form of a canonical identifier, with most characters hidden.

    ID numbers keep the first and last 4 characters (``1101**********100X``). Mainland
    mobiles keep the first 3 and last 4 digits of the national number (``195****0001``),
    and other mobiles also keep the country code (``+1 415***0100``). E-mail addresses keep
    the first character of the local part and the domain (``z***@example.com``). Bank cards
    keep only the last 4 digits (``**** **** **** 1234``), whatever their length.
    Raises ValueError when ``canonical`` is not in canonical form.
    """
    match kind:
        case IdentifierKind.ID_NUMBER:
            return _mask_id_number(canonical)
        case IdentifierKind.MOBILE:
            return _mask_mobile(canonical)
        case IdentifierKind.EMAIL:
            return _mask_email(canonical)
        case IdentifierKind.BANK_CARD:
            return _mask_bank_card(canonical)
        case _:
            assert_never(kind)


def remove_separators(raw: str, extra: frozenset[str] = frozenset()) -> str:
    """Apply NFKC, then remove whitespace, hyphens and the ``extra`` characters."""
    text = unicodedata.normalize("NFKC", raw).strip()
    return "".join(
        character
        for character in text
        if not (character.isspace() or character in _HYPHENS or character in extra)
    )


def _today_in_china() -> date:
    # NOTE: ZoneInfo needs the system time zone database or the tzdata package, and
    # pyproject.toml does not list tzdata, so a runtime image without /usr/share/zoneinfo fails.
    return datetime.now(ZoneInfo(_CHINA_TIME_ZONE)).date()


def _id_number_error(code: str, params: Mapping[str, str] | None = None) -> IdentifierError:
    return IdentifierError(IdentifierKind.ID_NUMBER, code, params)


def _normalize_id_number(raw: str) -> str:
    """Return the separator-free, upper-case-X form of an ID number with a valid shape."""
    if len(raw) > _MAX_RAW_LENGTH:
        raise _id_number_length_error()
    number = remove_separators(raw)
    if number.endswith("x"):
        number = number[:-1] + "X"

    if not _ID_NUMBER_CHARACTERS.fullmatch(number):
        raise _id_number_error("id_number.invalid_characters")
    if len(number) == _LEGACY_ID_NUMBER_LENGTH and not number.endswith("X"):
        raise _id_number_error("id_number.legacy_15_digit")
    if len(number) != _ID_NUMBER_LENGTH:
        raise _id_number_length_error()
    return number


def _id_number_length_error() -> IdentifierError:
    return _id_number_error("id_number.invalid_length", {"length": str(_ID_NUMBER_LENGTH)})


def _parse_birth_date(number: str) -> date:
    digits = number[6:14]
    try:
        birth = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise _id_number_error("id_number.invalid_birth_date") from None

    if birth < EARLIEST_BIRTH_DATE:
        raise _id_number_error("id_number.invalid_birth_date")
    return birth


def id_number_check_character(first_17_digits: str) -> str:
    total = sum(
        int(digit) * weight for digit, weight in zip(first_17_digits, CHECK_WEIGHTS, strict=True)
    )
    return CHECK_CHARACTERS[total % 11]


def _parse_phone_number(raw: str) -> phonenumbers.PhoneNumber:
    """Parse ``+...``, ``00...`` or a bare 11-digit mainland number into a valid number."""
    import phonenumbers

    if len(raw) > _MAX_RAW_LENGTH:
        raise IdentifierError(IdentifierKind.MOBILE, "mobile.invalid")
    text = remove_separators(raw, _PHONE_PUNCTUATION)
    if text.startswith("00"):
        text = "+" + text[2:]

    # A bare 86 followed by 11 digits is rejected, because without + or 00 the 86 could be
    # part of the number. phonenumbers would strip it as a country code.
    if text.startswith("+"):
        is_well_formed = bool(_ASCII_DIGITS.fullmatch(text[1:]))
        default_region = None
    else:
        is_well_formed = len(text) == _MAINLAND_MOBILE_LENGTH and bool(
            _ASCII_DIGITS.fullmatch(text)
        )
        default_region = _CHINA_REGION
    if not is_well_formed:
        raise IdentifierError(IdentifierKind.MOBILE, "mobile.invalid")

    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise IdentifierError(IdentifierKind.MOBILE, "mobile.invalid") from None

    if not phonenumbers.is_valid_number(number):
        raise IdentifierError(IdentifierKind.MOBILE, "mobile.invalid")
    return number


def _validate_email_syntax(address: str) -> ValidatedEmail:
    # Every option is passed explicitly, so that email_validator's module-level defaults,
    # which any importer can change, do not affect the canonical form. strict=False keeps
    # local parts over the 64 characters of RFC 5321, as email_validator 2.4 does by default.
    from email_validator import validate_email

    return validate_email(
        address,
        allow_smtputf8=False,
        allow_empty_local=False,
        allow_quoted_local=False,
        allow_domain_literal=False,
        allow_display_name=False,
        strict=False,
        check_deliverability=False,
        test_environment=False,
        globally_deliverable=True,
    )


def _classify_email_error(local_part: str, domain: str) -> str:
    """Return the error code for an address that email_validator rejected.

    The code comes from checking each part again, not from the validator's message text.
    email_validator raises EmailNotValidError and wraps idna's UnicodeError, and both are
    ValueError subclasses.
    """
    if not local_part.isascii():
        return "email.undeliverable_local_part"

    try:
        _validate_email_syntax(f"a@{domain}")
    except ValueError:
        return "email.invalid_domain"
    return "email.invalid"


def _bank_card_length_error() -> IdentifierError:
    params = {"min_length": str(_BANK_CARD_MIN_LENGTH), "max_length": str(_BANK_CARD_MAX_LENGTH)}
    return IdentifierError(IdentifierKind.BANK_CARD, "bank_card.invalid_length", params)


def _require_canonical_bank_card(canonical: str) -> None:
    is_canonical = (
        _BANK_CARD_MIN_LENGTH <= len(canonical) <= _BANK_CARD_MAX_LENGTH
        and _ASCII_DIGITS.fullmatch(canonical) is not None
    )
    if not is_canonical:
        raise ValueError("expected a canonical bank card number (12 to 19 ASCII digits)")


def _mask_id_number(canonical: str) -> str:
    if len(canonical) != _ID_NUMBER_LENGTH or not _ID_NUMBER_CHARACTERS.fullmatch(canonical):
        raise ValueError("expected a canonical ID number (17 digits and a digit or X)")
    return canonical[:4] + "*" * (_ID_NUMBER_LENGTH - 8) + canonical[-4:]


def _mask_mobile(canonical: str) -> str:
    import phonenumbers

    if not canonical.startswith("+") or not _ASCII_DIGITS.fullmatch(canonical[1:]):
        raise ValueError("expected a canonical mobile number in E.164 form")
    try:
        number = phonenumbers.parse(canonical, None)
    except phonenumbers.NumberParseException:
        raise ValueError("expected a canonical mobile number in E.164 form") from None

    national = phonenumbers.national_significant_number(number)
    masked = _mask_digits(national)
    if number.country_code == _CHINA_COUNTRY_CODE:
        return masked
    return f"+{number.country_code} {masked}"


def _mask_digits(digits: str) -> str:
    """Keep 2 or 3 leading and 2 or 4 trailing digits, so that at least 1 digit is hidden."""
    length = len(digits)
    head = 3 if length >= 10 else 2
    tail = 4 if length >= 8 else 2
    if length <= head + tail:
        return "*" * length
    return digits[:head] + "*" * (length - head - tail) + digits[-tail:]


def _mask_email(canonical: str) -> str:
    local_part, at_sign, domain = canonical.rpartition("@")
    if not (local_part and at_sign and domain):
        raise ValueError("expected a canonical e-mail address")
    return f"{local_part[0]}***@{domain}"


def _mask_bank_card(canonical: str) -> str:
    _require_canonical_bank_card(canonical)
    return f"**** **** **** {canonical[-4:]}"
