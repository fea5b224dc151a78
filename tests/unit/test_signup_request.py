"""Unit tests for signup and verify request validation, including what errors may reveal."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from idsentry.api import error_response
from idsentry.consents import CURRENT_VERSIONS, ConsentKind
from idsentry.errors import FieldProblem, RequestValidationError
from idsentry.i18n import SUPPORTED_LOCALES, message
from idsentry.models.signup import ValidSignup, parse_signup, parse_verify

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 15)
IDENTIFIER_FIELDS = ("name", "id_number", "mobile", "email", "code")


def make_id_number(birth: str = "19900307", region: str = "110101", sequence: str = "123") -> str:
    """Build a synthetic ID number with its GB 11643-1999 (ISO 7064 MOD 11-2) check character."""
    first_17 = region + birth + sequence
    assert len(first_17) == 17
    total = sum(int(digit) * (2 ** (17 - index) % 11) for index, digit in enumerate(first_17))
    check = (12 - total % 11) % 11
    return first_17 + ("X" if check == 10 else str(check))


ID_NUMBER = make_id_number()
ID_NUMBER_X = make_id_number(sequence="109")


def consents(*, cross_border: bool = True, **overrides: Any) -> dict[str, Any]:
    consent_body: dict[str, Any] = {
        kind.value: {"accepted": True, "version": CURRENT_VERSIONS[kind]}
        for kind in ConsentKind
        if cross_border or kind is not ConsentKind.CROSS_BORDER_TRANSFER
    }
    for kind, value in overrides.items():
        if value is None:
            consent_body.pop(kind, None)
        else:
            consent_body[kind] = value
    return consent_body


def consents_with(kind: str, value: dict[str, Any] | None) -> dict[str, Any]:
    """Return all consents with one replaced by `value`, or left out when it is None."""
    consent_body = consents()
    if value is None:
        del consent_body[kind]
    else:
        consent_body[kind] = value
    return consent_body


def body(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": "张三",
        "id_number": ID_NUMBER,
        "mobile": "195 1234 0001",
        "email": "zhang.san@example.com",
        "plan": "monthly",
        "consents": consents(),
    }
    payload.update(overrides)
    return payload


def without(*names: str) -> dict[str, Any]:
    payload = body()
    for name in names:
        del payload[name]
    return payload


def parse(
    payload: dict[str, Any], *, cross_border: bool = True, regions: tuple[str, ...] = ("CN",)
) -> ValidSignup:
    return parse_signup(payload, allowed_regions=regions, cross_border=cross_border, today=TODAY)


def assert_reveals_nothing(error: RequestValidationError, payload: Any) -> None:
    """Check that no parameter, message or response body repeats an identifier from the request."""
    raw_values: list[str] = []
    if isinstance(payload, dict):
        for name in IDENTIFIER_FIELDS:
            value = payload.get(name)
            if isinstance(value, str) and len(value.strip()) >= 2:
                raw_values.append(value.strip())
                raw_values.append("".join(value.split()))

    for problem in error.problems:
        for raw_value in raw_values:
            assert all(raw_value not in value for value in problem.params.values()), problem
        for locale in SUPPORTED_LOCALES:
            text = message(problem.code, locale, problem.params)
            for raw_value in raw_values:
                assert raw_value not in text, (problem.code, locale)

    for locale in SUPPORTED_LOCALES:
        response_body = json.loads(error_response(error, locale)["body"])
        rendered = json.dumps(response_body, ensure_ascii=False)
        for raw_value in raw_values:
            assert raw_value not in rendered, locale
    for raw_value in raw_values:
        assert raw_value not in str(error)


def rejected(payload: Any, **options: Any) -> dict[str, FieldProblem]:
    """Return the problems of a rejected signup body by field, after the privacy checks."""
    with pytest.raises(RequestValidationError) as caught:
        parse_signup(
            payload,
            allowed_regions=options.get("regions", ("CN",)),
            cross_border=options.get("cross_border", True),
            today=options.get("today", TODAY),
        )
    error = caught.value
    assert_reveals_nothing(error, payload)

    fields = [problem.field for problem in error.problems]
    assert len(fields) == len(set(fields)), fields
    return {problem.field: problem for problem in error.problems}


def rejected_verify(payload: Any) -> dict[str, FieldProblem]:
    with pytest.raises(RequestValidationError) as caught:
        parse_verify(payload)
    assert_reveals_nothing(caught.value, payload)
    return {problem.field: problem for problem in caught.value.problems}


def test_fixture_check_characters() -> None:
    # Weighted sums 174 and 178, mod 11 = 9 and 2, select "3" and "X" from "10X98765432".
    assert ID_NUMBER == "110101199003071233"
    assert ID_NUMBER_X == "11010119900307109X"


def test_privacy_check_catches_leak() -> None:
    leaking = RequestValidationError(
        [FieldProblem("id_number", "field.too_long", {"max_length": ID_NUMBER})]
    )

    with pytest.raises(AssertionError):
        assert_reveals_nothing(leaking, body())


def test_valid_signup_canonical() -> None:
    payload = body(
        name="  Ｚｈａｎｇ　 San ",
        id_number=" 110101 19900307 109x ",
        mobile="+86 195-1234-0001",
        email=" Zhang.San@EXAMPLE.com ",
        locale="en",
        timezone="Europe/London",
        plan="annual",
        referral_code="Friend2026",
        human_check_token="token-123",
    )

    signup = parse(payload)

    assert signup == ValidSignup(
        name="Zhang San",
        id_number=ID_NUMBER_X,
        mobile="+8619512340001",
        email="zhang.san@example.com",
        locale="en",
        timezone="Europe/London",
        plan="annual",
        consent_versions={kind.value: CURRENT_VERSIONS[kind] for kind in ConsentKind},
        referral_code="Friend2026",
        human_check_token="token-123",
    )


def test_valid_signup_optional_absent() -> None:
    signup = parse(body())

    assert signup.name == "张三"
    assert signup.id_number == ID_NUMBER
    assert signup.mobile == "+8619512340001"
    assert signup.locale is None
    assert signup.referral_code is None
    assert signup.human_check_token is None


def test_valid_signup_other_region() -> None:
    signup = parse(body(mobile="+1 415 555 0100"), regions=("CN", "US"))

    assert signup.mobile == "+14155550100"


def test_every_invalid_field_listed() -> None:
    payload = body(
        name="",
        id_number=ID_NUMBER[:17] + ("0" if ID_NUMBER[17] != "0" else "1"),
        mobile="+1 415 555 0100",
        email="zhang.san.example.com",
        locale="fr",
        plan="weekly",
        referral_code="ab",
        consents=consents(
            terms={"accepted": False, "version": CURRENT_VERSIONS[ConsentKind.TERMS]},
            sensitive_personal_information={"accepted": True, "version": "2020-01-01"},
            cross_border_transfer=None,
            marketing={"accepted": True, "version": "1"},
        ),
    )

    problems = rejected(payload)

    assert {field: problem.code for field, problem in problems.items()} == {
        "name": "name.invalid",
        "id_number": "id_number.invalid_checksum",
        "mobile": "mobile.country_not_allowed",
        "email": "email.invalid",
        "locale": "locale.unsupported",
        "plan": "plan.unknown",
        "referral_code": "referral_code.invalid",
        "consents.terms": "consent.terms_required",
        "consents.sensitive_personal_information": "consent.version_outdated",
        "consents.cross_border_transfer": "consent.cross_border_required",
        "consents.marketing": "field.unknown",
    }
    assert problems["mobile"].params == {"region": "US"}


def test_missing_and_invalid_listed() -> None:
    payload = without("plan")
    payload["id_number"] = "123"
    payload["email"] = "zhang.san.example.com"

    problems = rejected(payload)

    assert problems["plan"].code == "field.missing"
    assert problems["id_number"].code == "id_number.invalid_length"
    assert problems["email"].code == "email.invalid"


def test_missing_fields() -> None:
    problems = rejected({})

    assert {field: problem.code for field, problem in problems.items()} == {
        "name": "field.missing",
        "id_number": "field.missing",
        "mobile": "field.missing",
        "email": "field.missing",
        "plan": "field.missing",
        "consents": "field.missing",
    }


@pytest.mark.parametrize("name", ["name", "id_number", "mobile", "email", "plan", "consents"])
def test_missing_field(name: str) -> None:
    problems = rejected(without(name))

    assert list(problems) == [name]
    assert problems[name].code == "field.missing"
    assert problems[name].params == {}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"password": "x"}, "password"),
        ({"Name": "张三"}, "Name"),
        ({"id_card": ID_NUMBER}, "id_card"),
    ],
)
def test_unknown_field(extra: dict[str, Any], field: str) -> None:
    problems = rejected({**body(), **extra})

    assert list(problems) == [field]
    assert problems[field].code == "field.unknown"


def test_unknown_consent_property() -> None:
    terms = {"accepted": True, "version": CURRENT_VERSIONS[ConsentKind.TERMS], "at": "now"}

    problems = rejected(body(consents=consents(terms=terms)))

    assert list(problems) == ["consents.terms.at"]
    assert problems["consents.terms.at"].code == "field.unknown"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": 123}, "name"),
        ({"id_number": 110101199003071235}, "id_number"),
        ({"mobile": None}, "mobile"),
        ({"email": ["zhang.san@example.com"]}, "email"),
        ({"plan": 1}, "plan"),
        ({"locale": 5}, "locale"),
        ({"referral_code": 1234}, "referral_code"),
        ({"human_check_token": {"t": 1}}, "human_check_token"),
        ({"consents": "yes"}, "consents"),
        ({"consents": ["terms"]}, "consents"),
        ({"consents": consents(terms="yes")}, "consents.terms"),
        (
            {"consents": consents(terms={"accepted": "maybe", "version": "x"})},
            "consents.terms.accepted",
        ),
        (
            {"consents": consents(terms={"accepted": True, "version": 20261201})},
            "consents.terms.version",
        ),
    ],
)
def test_invalid_type(overrides: dict[str, Any], field: str) -> None:
    problems = rejected(body(**overrides))

    assert list(problems) == [field]
    assert problems[field].code == "field.invalid_type"


@pytest.mark.parametrize("payload", [[], "body", None, 42])
def test_body_not_object(payload: Any) -> None:
    problems = rejected(payload)

    assert list(problems) == ["body"]
    assert problems["body"].code == "field.invalid_type"


@pytest.mark.parametrize(
    ("field", "value", "max_length"),
    [
        ("name", "张" * 65, "64"),
        ("id_number", "1" * 65, "64"),
        ("mobile", "1" * 65, "64"),
        ("email", "a" * 243 + "@example.com", "254"),
        ("plan", "m" * 257, "256"),
        ("locale", "z" * 257, "256"),
        ("referral_code", "R" * 257, "256"),
        ("human_check_token", "t" * 4097, "4096"),
    ],
)
def test_too_long(field: str, value: str, max_length: str) -> None:
    problems = rejected(body(**{field: value}))

    assert list(problems) == [field]
    assert problems[field].code == "field.too_long"
    assert problems[field].params == {"max_length": max_length}


def test_too_long_consent_version() -> None:
    terms = {"accepted": True, "version": "v" * 33}

    problems = rejected(body(consents=consents(terms=terms)))

    assert problems["consents.terms.version"].code == "field.too_long"
    assert problems["consents.terms.version"].params == {"max_length": "32"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "张" * 64),
        ("email", "a" * 52 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".cn"),
        ("human_check_token", "t" * 4096),
    ],
)
def test_at_max_length(field: str, value: str) -> None:
    signup = parse(body(**{field: value}))

    assert getattr(signup, field) == value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("张三", "张三"),
        # Chinese numerals are letters in names, not digits.
        ("王二小", "王二小"),
        ("阿依古丽·买买提", "阿依古丽·买买提"),
        ("阿依古丽・买买提", "阿依古丽・买买提"),
        # U+FF65 HALFWIDTH KATAKANA MIDDLE DOT becomes U+30FB under NFKC.
        ("阿依古丽\uff65买买提", "阿依古丽・买买提"),
        ("Zhang San", "Zhang San"),
        ("  Zhang \t San  ", "Zhang San"),
        ("O'Brien", "O'Brien"),
        ("Jean-Luc Picard", "Jean-Luc Picard"),
        ("J. R. Smith", "J. R. Smith"),
        ("Zoë", "Zoë"),
    ],
)
def test_name_accepted(raw: str, expected: str) -> None:
    assert parse(body(name=raw)).name == expected


UNDERSCORE_NAME_REASON = (
    "_NAME_PATTERN's continuation class [\\w\\s·・.'\\-] contains \\w, which matches '_', "
    "and the digit check added after it does not cover '_'"
)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "3张",
        "张3",
        "张３",
        "Zhang San 2",
        "张三٣",
        "·张三",
        "-Zhang",
        "张三!",
        "张三😀",
        "<script>",
        "张\u200b三",
        pytest.param("张_三"),
        pytest.param("Zhang_San"),
    ],
)
def test_name_rejected(raw: str) -> None:
    problems = rejected(body(name=raw))

    assert list(problems) == ["name"]
    assert problems["name"].code == "name.invalid"


def test_consents_without_cross_border() -> None:
    signup = parse(body(consents=consents(cross_border=False)), cross_border=False)

    assert signup.consent_versions == {
        "terms": CURRENT_VERSIONS[ConsentKind.TERMS],
        "sensitive_personal_information": CURRENT_VERSIONS[
            ConsentKind.SENSITIVE_PERSONAL_INFORMATION
        ],
    }


def test_cross_border_not_recorded_when_unneeded() -> None:
    signup = parse(body(), cross_border=False)

    assert "cross_border_transfer" not in signup.consent_versions


@pytest.mark.parametrize(
    ("kind", "cross_border", "code"),
    [
        ("terms", True, "consent.terms_required"),
        ("terms", False, "consent.terms_required"),
        ("sensitive_personal_information", True, "consent.sensitive_required"),
        ("sensitive_personal_information", False, "consent.sensitive_required"),
        ("cross_border_transfer", True, "consent.cross_border_required"),
    ],
)
def test_consent_missing(kind: str, cross_border: bool, code: str) -> None:
    field = f"consents.{kind}"
    version = CURRENT_VERSIONS[ConsentKind(kind)]
    declined = consents_with(kind, {"accepted": False, "version": version})

    absent_problems = rejected(body(consents=consents_with(kind, None)), cross_border=cross_border)
    declined_problems = rejected(body(consents=declined), cross_border=cross_border)

    assert list(absent_problems) == [field]
    assert absent_problems[field].code == code
    assert list(declined_problems) == [field]
    assert declined_problems[field].code == code


def test_consents_empty() -> None:
    problems = rejected(body(consents={}))

    assert {field: problem.code for field, problem in problems.items()} == {
        "consents.terms": "consent.terms_required",
        "consents.sensitive_personal_information": "consent.sensitive_required",
        "consents.cross_border_transfer": "consent.cross_border_required",
    }


@pytest.mark.parametrize("kind", [kind.value for kind in ConsentKind])
@pytest.mark.parametrize("version", ["2020-01-01", "", "2026-12-01 "])
def test_consent_version_outdated(kind: str, version: str) -> None:
    field = f"consents.{kind}"

    problems = rejected(body(consents=consents_with(kind, {"accepted": True, "version": version})))

    assert list(problems) == [field]
    assert problems[field].code == "consent.version_outdated"
    assert problems[field].params == {"current_version": CURRENT_VERSIONS[ConsentKind(kind)]}


@pytest.mark.parametrize(
    ("birth", "today"),
    [
        ("20121216", TODAY),
        ("20200229", TODAY),
        ("20000101", date(2013, 12, 31)),
    ],
)
def test_under_minimum_age(birth: str, today: date) -> None:
    problems = rejected(body(id_number=make_id_number(birth=birth)), today=today)

    assert list(problems) == ["id_number"]
    assert problems["id_number"].code == "id_number.under_minimum_age"
    assert problems["id_number"].params == {"minimum_age": "14"}


@pytest.mark.parametrize(
    ("birth", "today"),
    [
        ("20121215", TODAY),
        ("20000101", date(2014, 1, 1)),
        ("19000101", TODAY),
    ],
)
def test_minimum_age_reached(birth: str, today: date) -> None:
    number = make_id_number(birth=birth)

    signup = parse_signup(
        body(id_number=number), allowed_regions=("CN",), cross_border=True, today=today
    )

    assert signup.id_number == number


def test_future_birth_uses_today() -> None:
    problems = rejected(body(id_number=make_id_number(birth="20050601")), today=date(2000, 1, 1))

    assert problems["id_number"].code == "id_number.birth_date_in_future"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("id_number", "123", "id_number.invalid_length"),
        ("id_number", "110101900307123", "id_number.legacy_15_digit"),
        ("id_number", make_id_number(region="990101"), "id_number.unknown_region"),
        ("mobile", "01012345678", "mobile.not_mobile"),
        ("mobile", "12345", "mobile.invalid"),
        ("email", "张三@example.com", "email.undeliverable_local_part"),
        ("email", "zhang@example..com", "email.invalid_domain"),
    ],
)
def test_identifier_problem_passed_on(field: str, value: str, code: str) -> None:
    problems = rejected(body(**{field: value}))

    assert list(problems) == [field]
    assert problems[field].code == code


@pytest.mark.parametrize("plan", ["monthly", "annual"])
def test_plan_accepted(plan: str) -> None:
    assert parse(body(plan=plan)).plan == plan


@pytest.mark.parametrize("plan", ["weekly", "Monthly", "", "annual "])
def test_plan_unknown(plan: str) -> None:
    problems = rejected(body(plan=plan))

    assert list(problems) == ["plan"]
    assert problems["plan"].code == "plan.unknown"


@pytest.mark.parametrize("locale", [None, "zh-CN", "en"])
def test_locale_accepted(locale: str | None) -> None:
    assert parse(body(locale=locale)).locale == locale


@pytest.mark.parametrize("locale", ["fr", "zh", "zh-cn", "EN", "en-US", ""])
def test_locale_unsupported(locale: str) -> None:
    problems = rejected(body(locale=locale))

    assert list(problems) == ["locale"]
    assert problems["locale"].code == "locale.unsupported"


@pytest.mark.parametrize(
    "timezone", [None, "Asia/Shanghai", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT-8"]
)
def test_timezone_accepted(timezone: str | None) -> None:
    assert parse(body(timezone=timezone)).timezone == timezone


@pytest.mark.parametrize(
    "timezone", ["", "Mars/Olympus_Mons", "asia/shanghai ", "../../etc/passwd", "/etc/localtime"]
)
def test_timezone_unknown(timezone: str) -> None:
    problems = rejected(body(timezone=timezone))

    assert list(problems) == ["timezone"]
    assert problems["timezone"].code == "timezone.unknown"


@pytest.mark.parametrize("code", [None, "ABCD", "Ab12", "a" * 32, "2026"])
def test_referral_accepted(code: str | None) -> None:
    assert parse(body(referral_code=code)).referral_code == code


@pytest.mark.parametrize(
    "code",
    [
        "",
        "abc",
        "a" * 33,
        "AB-12",
        "AB 12",
        "邀请码1234",
        "ＡＢＣＤ",
        pytest.param(
            "ABCD\n",
        ),
    ],
)
def test_referral_invalid(code: str) -> None:
    problems = rejected(body(referral_code=code))

    assert list(problems) == ["referral_code"]
    assert problems["referral_code"].code == "referral_code.invalid"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123456", "123456"),
        ("012345", "012345"),
        ("１２３４５６", "123456"),
        (" 654321 ", "654321"),
        ("000000\n", "000000"),
    ],
)
def test_verify_accepted(raw: str, expected: str) -> None:
    assert parse_verify({"code": raw}) == expected


@pytest.mark.parametrize(
    "raw",
    ["12345", "1234567", "１２３４５", "12a456", "12 456", "", "١٢٣٤٥٦", "12345６7"],
)
def test_verify_format(raw: str) -> None:
    problems = rejected_verify({"code": raw})

    assert list(problems) == ["code"]
    assert problems["code"].code == "code.format"


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({}, "code", "field.missing"),
        ({"code": 123456}, "code", "field.invalid_type"),
        ({"code": None}, "code", "field.invalid_type"),
        ({"code": "1" * 17}, "code", "field.too_long"),
        ({"code": "123456", "signup_id": "sgn_x"}, "signup_id", "field.unknown"),
        ([], "body", "field.invalid_type"),
    ],
)
def test_verify_body_problems(payload: Any, field: str, code: str) -> None:
    problems = rejected_verify(payload)

    assert list(problems) == [field]
    assert problems[field].code == code


def test_missing_field_keeps_plan_and_locale() -> None:
    payload = without("name")
    payload["plan"] = "weekly"
    payload["locale"] = "fr"

    problems = rejected(payload)

    assert problems["name"].code == "field.missing"
    assert problems["plan"].code == "plan.unknown"
    assert problems["locale"].code == "locale.unsupported"
