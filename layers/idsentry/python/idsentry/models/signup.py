"""Signup and verification requests, validated into canonical identifiers or a list of problems."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from idsentry import identifiers
from idsentry.consents import CURRENT_VERSIONS, MISSING_CODES, ConsentKind, required_consents
from idsentry.errors import FieldProblem, RequestValidationError, pydantic_problems
from idsentry.i18n import SUPPORTED_LOCALES

PLANS = ("monthly", "annual")
MINIMUM_AGE = 14
# Letters of any script, combining marks, the middle dot of transliterated minority names
# (·, and its look-alikes after NFKC), spaces, apostrophes, periods and hyphens for Latin names.
_NAME_PATTERN = re.compile(r"^[^\W\d_][\w\s·・.'\-]*$")
_REFERRAL_PATTERN = re.compile(r"[A-Za-z0-9]{4,32}")
# Area/Location names such as Asia/Shanghai or America/Argentina/Buenos_Aires, and UTC.
_TIMEZONE_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}")
_CODE_PATTERN = re.compile(r"^[0-9]{6}$")


class ConsentInput(BaseModel):
    """One consent as the client sends it."""

    # The sign-in function imports this module for `parse_verify` only, so each model builds
    # its validator on first use (defer_build) rather than at import.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    accepted: bool
    version: str = Field(max_length=32)


class SignupBody(BaseModel):
    """The JSON body of POST /v1/signups, before identifier validation."""

    model_config = ConfigDict(extra="forbid", str_max_length=256, defer_build=True)

    name: str = Field(max_length=64)
    id_number: str = Field(max_length=64)
    mobile: str = Field(max_length=64)
    email: str = Field(max_length=254)
    locale: str | None = None
    # The IANA time zone the signup page reads from the browser; quiet hours follow it.
    timezone: str | None = Field(default=None, max_length=64)
    plan: str
    consents: dict[str, ConsentInput]
    referral_code: str | None = None
    human_check_token: str | None = Field(default=None, max_length=4096)


class VerifyBody(BaseModel):
    """The JSON body of POST /v1/signups/{signup_id}/verify."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    code: str = Field(max_length=16)


@dataclass(frozen=True)
class ValidSignup:
    """A signup request whose every field passed validation, identifiers in canonical form."""

    name: str
    id_number: str
    mobile: str
    email: str
    locale: str | None
    timezone: str | None
    plan: str
    consent_versions: dict[str, str]
    referral_code: str | None
    human_check_token: str | None


def is_known_timezone(name: str) -> bool:
    """Return whether `name` is an IANA time zone of the bundled database (not a file path)."""
    if not _TIMEZONE_PATTERN.fullmatch(name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _check_identifier(problems: list[FieldProblem], canonicalize: Any, raw: str) -> str | None:
    try:
        value: str = canonicalize(raw)
    except identifiers.IdentifierError as exc:
        problems.append(FieldProblem(exc.field, exc.code, dict(exc.params)))
        return None
    return value


def parse_signup(
    payload: dict[str, Any],
    *,
    allowed_regions: tuple[str, ...],
    cross_border: bool,
    today: date | None = None,
) -> ValidSignup:
    """Validate a signup body; raises RequestValidationError listing every invalid field."""
    canonicalizers: dict[str, Any] = {
        "id_number": lambda raw: identifiers.canonical_id_number(raw, today=today),
        "mobile": lambda raw: identifiers.canonical_mobile(raw, allowed_regions=allowed_regions),
        "email": identifiers.canonical_email,
    }
    try:
        body = SignupBody.model_validate(payload)
    except ValidationError as exc:
        # Report the identifiers' own problems too, so one correction round is enough.
        structural = pydantic_problems(exc)
        flagged = {problem.field for problem in structural}
        raw_values = payload if isinstance(payload, dict) else {}
        for field, canonicalize in canonicalizers.items():
            raw = raw_values.get(field)
            if isinstance(raw, str) and field not in flagged:
                _check_identifier(structural, canonicalize, raw)
        plan = raw_values.get("plan")
        if isinstance(plan, str) and "plan" not in flagged and plan not in PLANS:
            structural.append(FieldProblem("plan", "plan.unknown"))
        locale = raw_values.get("locale")
        if isinstance(locale, str) and "locale" not in flagged and locale not in SUPPORTED_LOCALES:
            structural.append(FieldProblem("locale", "locale.unsupported"))
        raise RequestValidationError(structural) from None

    problems: list[FieldProblem] = []

    name = " ".join(unicodedata.normalize("NFKC", body.name).split())
    if not name or not _NAME_PATTERN.match(name) or any(ch.isdigit() or ch == "_" for ch in name):
        problems.append(FieldProblem("name", "name.invalid"))

    id_number = _check_identifier(problems, canonicalizers["id_number"], body.id_number)
    if id_number is not None:
        try:
            identifiers.check_minimum_age(id_number, minimum_years=MINIMUM_AGE, today=today)
        except identifiers.IdentifierError as exc:
            problems.append(FieldProblem(exc.field, exc.code, dict(exc.params)))
            id_number = None

    mobile = _check_identifier(problems, canonicalizers["mobile"], body.mobile)
    email = _check_identifier(problems, canonicalizers["email"], body.email)

    if body.locale is not None and body.locale not in SUPPORTED_LOCALES:
        problems.append(FieldProblem("locale", "locale.unsupported"))
    if body.timezone is not None and not is_known_timezone(body.timezone):
        problems.append(FieldProblem("timezone", "timezone.unknown"))
    if body.plan not in PLANS:
        problems.append(FieldProblem("plan", "plan.unknown"))
    if body.referral_code is not None and not _REFERRAL_PATTERN.fullmatch(body.referral_code):
        problems.append(FieldProblem("referral_code", "referral_code.invalid"))

    consent_versions: dict[str, str] = {}
    for kind in required_consents(cross_border):
        given = body.consents.get(kind.value)
        field = f"consents.{kind.value}"
        if given is None or not given.accepted:
            problems.append(FieldProblem(field, MISSING_CODES[kind]))
        elif given.version != CURRENT_VERSIONS[kind]:
            current = CURRENT_VERSIONS[kind]
            problems.append(
                FieldProblem(field, "consent.version_outdated", {"current_version": current})
            )
        else:
            consent_versions[kind.value] = given.version
    for unknown in sorted(set(body.consents) - {kind.value for kind in ConsentKind}):
        problems.append(FieldProblem(f"consents.{unknown}", "field.unknown"))

    if problems or id_number is None or mobile is None or email is None:
        raise RequestValidationError(problems)
    return ValidSignup(
        name=name,
        id_number=id_number,
        mobile=mobile,
        email=email,
        locale=body.locale,
        timezone=body.timezone,
        plan=body.plan,
        consent_versions=consent_versions,
        referral_code=body.referral_code,
        human_check_token=body.human_check_token,
    )


def parse_verify(payload: dict[str, Any]) -> str:
    """Return the 6-digit code of a verify body (full-width digits accepted)."""
    try:
        body = VerifyBody.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(pydantic_problems(exc)) from None

    code = unicodedata.normalize("NFKC", body.code).strip()
    if not _CODE_PATTERN.match(code):
        raise RequestValidationError([FieldProblem("code", "code.format")])
    return code
