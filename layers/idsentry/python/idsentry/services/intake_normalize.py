"""Canonical forms of identifiers found in leaked data, with fast paths for the common shapes.

Each function returns the same canonical string that signup produces (``idsentry.identifiers``)
or a Rejected reason code. Four rules differ from signup, because leaked data needs them. A
15-digit legacy ID number is converted to 18 digits. A bare ``86`` before an 11-digit
mainland mobile is read as the country code. Mobiles of every region are accepted. There is
no minimum age.

phonenumbers and email_validator take 20-30 µs per value, several times the cost of the
HMAC that follows, so the common shapes skip them. Unit tests compare every fast path with
the full validators on many values.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from typing import Final, NamedTuple

import phonenumbers

# The private tables and helpers are imported so that ID number rules and separator removal
# have one definition, shared with signup.
from idsentry.identifiers import (
    CHECK_CHARACTERS,
    CHECK_WEIGHTS,
    EARLIEST_BIRTH_DATE,
    PROVINCE_CODES,
    IdentifierError,
    IdentifierKind,
    canonical_bank_card,
    canonical_email,
    canonical_id_number,
    canonical_mobile,
    id_number_check_character,
    remove_separators,
)


class Rejected(NamedTuple):
    """A value that has no canonical form, with the reason code, such as ``mobile.invalid``.

    Codes are the IdentifierError codes plus ``<kind>.empty``. The rejected value is not stored.
    """

    reason: str


# Leaked mobiles may come from any region. Signup limits regions, but a fingerprint of a
# foreign number can only match a subscriber who registered that number.
_ALL_REGIONS: Final = frozenset(phonenumbers.SUPPORTED_REGIONS)
_MAINLAND: Final = ("CN",)
_PHONE_PUNCTUATION: Final = frozenset("().")

_MAINLAND_MOBILE_LENGTH: Final = 11
# phonenumbers 9.0.43 decides whether an 11-digit number starting with 1 is a valid CN mobile
# from its first 5 digits: the CN mobile pattern is
# 1(?:610\d|740[0-5])\d{6}|1(?:[38]\d|4[57]|[59][0-35-9]|6[25-7]|7[0-35-8])\d{8}, and no
# other CN type has 11-digit numbers starting with 1. A unit test checks every 5-digit prefix.
_MOBILE_PREFIX_DIGITS: Final = 5

# An address whose local part email_validator accepts unchanged (a subset of the RFC 5322
# dot-atom) and whose domain has only ASCII hostname characters. The domain is still
# validated, once per distinct domain. Other addresses go through the full validator.
_SIMPLE_ADDRESS: Final = re.compile(r"([A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*)@([A-Za-z0-9.\-]+)")
# RFC 5321 limits an address to 254 octets. Longer input goes through the full validator.
_MAX_FAST_EMAIL_LENGTH: Final = 254

# Longer input cannot be an identifier. The full validators reject it by length.
_MAX_RAW_LENGTH: Final = 512
# ASCII characters that remove_separators deletes: whitespace (as str.isspace defines it)
# and the hyphen, plus brackets and dots in phone numbers. The tables serve ASCII text only.
_SEPARATORS: Final = dict.fromkeys(
    [code for code in range(128) if chr(code).isspace() or chr(code) == "-"]
)
_PHONE_SEPARATORS: Final = _SEPARATORS | dict.fromkeys(map(ord, _PHONE_PUNCTUATION))

_ID_NUMBER_LENGTH: Final = 18
_LEGACY_ID_NUMBER_LENGTH: Final = 15
_CHECK_WEIGHT_SUM_OF_ZEROS: Final = ord("0") * sum(CHECK_WEIGHTS)

_BANK_CARD_MIN_LENGTH: Final = 12
_BANK_CARD_MAX_LENGTH: Final = 19
# Luhn: the digit sum of each doubled digit, indexed by the ASCII code of the digit.
_LUHN_DOUBLED: Final = {
    ord(str(digit)): (2 * digit) // 10 + (2 * digit) % 10 for digit in range(10)
}

_EMPTY: Final = {kind: Rejected(f"{kind}.empty") for kind in IdentifierKind}
_INVALID_ID_CHECKSUM: Final = Rejected("id_number.invalid_checksum")
_UNKNOWN_REGION: Final = Rejected("id_number.unknown_region")
_INVALID_BIRTH_DATE: Final = Rejected("id_number.invalid_birth_date")
_FUTURE_BIRTH_DATE: Final = Rejected("id_number.birth_date_in_future")

Normalizer = Callable[[str], "str | Rejected"]


class LeakedValueNormalizer:
    """Canonical forms of leaked identifiers, and a count of converted legacy ID numbers.

    ``today`` bounds birth dates in ID numbers. One instance serves one chunk, because the
    counter belongs to the chunk's result.
    """

    def __init__(self, today: date) -> None:
        self.today = today
        self.legacy_id_numbers = 0
        self._by_kind: dict[IdentifierKind, Normalizer] = {
            IdentifierKind.ID_NUMBER: self.id_number,
            IdentifierKind.MOBILE: leaked_mobile,
            IdentifierKind.EMAIL: leaked_email,
            IdentifierKind.BANK_CARD: leaked_bank_card,
        }

    def for_kind(self, kind: IdentifierKind) -> Normalizer:
        """Return the function that normalizes values of ``kind``."""
        return self._by_kind[kind]

    def id_number(self, raw: str) -> str | Rejected:
        """Return an ID number as 18 characters with an upper-case X, or the reason it is not one.

        A 15-digit legacy number gets "19" inserted after its 6-digit region code and a
        GB 11643-1999 check character appended. Its region and birth date are then checked
        like any other number.
        """
        if raw.isascii() and len(raw) == _ID_NUMBER_LENGTH and raw[:17].isdigit():
            return _fast_id_number(raw, self.today)
        if len(raw) > _MAX_RAW_LENGTH:
            return _checked_id_number(raw, self.today)

        text = _compact(raw, _SEPARATORS)
        if not text:
            return _EMPTY[IdentifierKind.ID_NUMBER]
        if text.isascii() and text[:15].isdigit():
            if len(text) == _ID_NUMBER_LENGTH and text[15:17].isdigit():
                return _fast_id_number(text, self.today)
            if len(text) == _LEGACY_ID_NUMBER_LENGTH:
                first_17 = text[:6] + "19" + text[6:]
                converted = _fast_id_number(
                    first_17 + id_number_check_character(first_17), self.today
                )
                if isinstance(converted, str):
                    self.legacy_id_numbers += 1
                return converted
        # The full validator reports the same reason for every other shape.
        return _checked_id_number(raw, self.today)


def leaked_mobile(raw: str) -> str | Rejected:
    """Return a mobile number in E.164 form, or the reason it is not a mobile number.

    Mainland numbers may come bare (11 digits) or after ``+86``, ``0086`` or ``86``, with
    spaces, hyphens, brackets or dots anywhere. Other numbers need ``+`` or ``00``.
    """
    if raw.isascii() and len(raw) == _MAINLAND_MOBILE_LENGTH and raw.isdigit():
        return _eleven_digit_mobile(raw)

    text = _compact(raw, _PHONE_SEPARATORS) if len(raw) <= _MAX_RAW_LENGTH else raw
    if not text:
        return _EMPTY[IdentifierKind.MOBILE]
    national = _mainland_national_number(text)
    if national is None:
        return _slow_mobile(text)
    return _eleven_digit_mobile(national)


def leaked_email(raw: str) -> str | Rejected:
    """Return an e-mail address lower-cased with an IDNA domain, or the reason it is invalid."""
    # canonical_email applies NFKC first too, which turns a full-width "＠" into "@".
    text = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)
    match = _SIMPLE_ADDRESS.fullmatch(text.strip()) if text.isascii() else None
    # email_validator also checks the length of the address with the domain in Unicode, which
    # an IDNA ("xn--") domain can make longer, so those addresses take the full validator.
    if match is None or match.end() > _MAX_FAST_EMAIL_LENGTH or "xn--" in match[2].lower():
        if not raw.strip():
            return _EMPTY[IdentifierKind.EMAIL]
        return _slow(canonical_email, raw)

    ascii_domain = _email_domain(match[2].lower())
    if ascii_domain is None:
        return Rejected("email.invalid_domain")
    return match[1].lower() + "@" + ascii_domain


def leaked_bank_card(raw: str) -> str | Rejected:
    """Return a bank card number as digits, or the reason it is not one (length, Luhn)."""
    digits = raw
    if not (raw.isascii() and raw.isdigit()) and len(raw) <= _MAX_RAW_LENGTH:
        digits = _compact(raw, _SEPARATORS)
    if not digits:
        return _EMPTY[IdentifierKind.BANK_CARD]

    if (
        digits.isascii()
        and digits.isdigit()
        and _BANK_CARD_MIN_LENGTH <= len(digits) <= _BANK_CARD_MAX_LENGTH
    ):
        if _luhn_is_valid(digits):
            return digits
        return Rejected("bank_card.invalid_checksum")
    return _slow(canonical_bank_card, raw)


def _compact(raw: str, separators: dict[int, None]) -> str:
    """Apply NFKC and delete separators, as remove_separators does, faster for ASCII text."""
    text = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)
    if text.isascii():
        return text.translate(separators)
    extra = _PHONE_PUNCTUATION if separators is _PHONE_SEPARATORS else frozenset()
    return remove_separators(raw, extra)


def _fast_id_number(number: str, today: date) -> str | Rejected:
    """Check an ASCII 18-character number whose first 17 characters are digits.

    The checks run in canonical_id_number's order (region, birth date, check character), so
    that both report the same reason.
    """
    last = number[17]
    if last == "x":
        number = number[:17] + "X"
        last = "X"
    elif not ("0" <= last <= "9" or last == "X"):
        return Rejected("id_number.invalid_characters")

    if number[:2] not in PROVINCE_CODES:
        return _UNKNOWN_REGION
    birth = _birth_date(number[6:14])
    if birth is None:
        return _INVALID_BIRTH_DATE
    if birth > today:
        return _FUTURE_BIRTH_DATE

    # Sum of digit * weight over the ASCII codes, minus what the 17 "0" codes contribute.
    total = sum(map(operator.mul, number[:17].encode("ascii"), CHECK_WEIGHTS))
    if CHECK_CHARACTERS[(total - _CHECK_WEIGHT_SUM_OF_ZEROS) % 11] != last:
        return _INVALID_ID_CHECKSUM
    return number


@lru_cache(maxsize=65536)
def _birth_date(digits: str) -> date | None:
    try:
        birth = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    return birth if birth >= EARLIEST_BIRTH_DATE else None


def _checked_id_number(raw: str, today: date) -> str | Rejected:
    try:
        return canonical_id_number(raw, today=today)
    except IdentifierError as exc:
        return Rejected(exc.code)


def _eleven_digit_mobile(digits: str) -> str | Rejected:
    """Check 11 ASCII digits, read as a mainland number, against the cached prefix verdict."""
    if digits[0] != "1":
        return _slow_mobile(digits)
    reason = _mainland_mobile_verdict(digits[:_MOBILE_PREFIX_DIGITS])
    if reason:
        return Rejected(reason)
    return "+86" + digits


def _mainland_national_number(text: str) -> str | None:
    """Return the 11 digits of a mainland mobile written with or without a country code."""
    if text.startswith("+86"):
        national = text[3:]
    elif text.startswith("0086"):
        national = text[4:]
    elif text.startswith("86") and len(text) == _MAINLAND_MOBILE_LENGTH + 2:
        national = text[2:]
    else:
        national = text
    if (
        len(national) == _MAINLAND_MOBILE_LENGTH
        and national.isascii()
        and national.isdigit()
        and national[0] == "1"
    ):
        return national
    return None


@lru_cache(maxsize=100_000)
def _mainland_mobile_verdict(prefix: str) -> str:
    """Return "" when 11-digit numbers with this prefix are valid CN mobiles, else the code."""
    sample = prefix.ljust(_MAINLAND_MOBILE_LENGTH, "0")
    try:
        canonical_mobile(sample, _MAINLAND)
    except IdentifierError as exc:
        return exc.code
    return ""


def _slow_mobile(text: str) -> str | Rejected:
    # canonical_mobile upper-cases every allowed region on each call, so the 245 regions are
    # only passed when the number is valid but not from mainland China.
    result = _slow(lambda value: canonical_mobile(value, _MAINLAND), text)
    if isinstance(result, Rejected) and result.reason == "mobile.country_not_allowed":
        return _slow(lambda value: canonical_mobile(value, _ALL_REGIONS), text)
    return result


@lru_cache(maxsize=8192)
def _email_domain(domain: str) -> str | None:
    """Return a domain in IDNA ASCII as email_validator validates it, or None if invalid.

    Leaked addresses share few domains (qq.com, 163.com), so each is validated once.
    """
    try:
        canonical = canonical_email("a@" + domain)
    except IdentifierError:
        return None
    return canonical.partition("@")[2]


def _luhn_is_valid(digits: str) -> bool:
    codes = digits.encode("ascii")
    kept = codes[-1::-2]
    doubled = codes[-2::-2]
    total = sum(kept) - ord("0") * len(kept) + sum(map(_LUHN_DOUBLED.__getitem__, doubled))
    return total % 10 == 0


def _slow(canonicalize: Callable[[str], str], raw: str) -> str | Rejected:
    try:
        return canonicalize(raw)
    except IdentifierError as exc:
        return Rejected(exc.code)
