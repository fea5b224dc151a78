"""Unit tests for identifier canonical forms, validation, age checks and masking."""

from datetime import date

import phonenumbers
import pytest

from idsentry.identifiers import (
    ERROR_MESSAGES,
    IdentifierError,
    IdentifierKind,
    age_on,
    bank_card_last_four,
    canonical_bank_card,
    canonical_email,
    canonical_id_number,
    canonical_mobile,
    canonicalize,
    check_minimum_age,
    id_number_birth_date,
    is_under,
    mask,
)

pytestmark = pytest.mark.unit

TODAY = date(2024, 6, 15)


def make_id_number(region: str = "110101", birth: str = "19900307", sequence: str = "123") -> str:
    """Build a synthetic 18-character ID number with its GB 11643-1999 check character.

    The weights are derived here as 2**(17 - i) mod 11, independently of the table in the
    module under test.
    """
    first_17 = region + birth + sequence
    assert len(first_17) == 17
    total = sum(int(digit) * (2 ** (17 - index) % 11) for index, digit in enumerate(first_17))
    check = (12 - total % 11) % 11
    return first_17 + ("X" if check == 10 else str(check))


def with_wrong_check_character(number: str) -> str:
    wrong = "0" if number[17] != "0" else "1"
    return number[:17] + wrong


def with_luhn_digit(body: str) -> str:
    """Append the Luhn check digit, computed here without stdnum."""
    total = 0
    for index, character in enumerate(reversed(body)):
        digit = int(character)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return body + str((10 - total % 10) % 10)


# A synthetic number whose check character is X: 110101 19900307 109 X.
ID_WITH_X = make_id_number(sequence="109")
ID_WITH_DIGIT = make_id_number(sequence="123")
FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def raised_error(
    kind: IdentifierKind,
    raw: str,
    *,
    allowed_regions: tuple[str, ...] = ("CN",),
    today: date = TODAY,
) -> IdentifierError:
    with pytest.raises(IdentifierError) as caught:
        canonicalize(kind, raw, allowed_regions=allowed_regions, today=today)
    return caught.value


def test_fixture_check_characters() -> None:
    assert ID_WITH_X == "11010119900307109X"
    assert make_id_number(region="830000") == "830000199003071230"
    assert with_luhn_digit("411111111111111") == "4111111111111111"
    assert with_luhn_digit("622202123456789012") == "6222021234567890128"


def test_kind_values() -> None:
    assert [kind.value for kind in IdentifierKind] == ["id_number", "mobile", "email", "bank_card"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (ID_WITH_DIGIT, ID_WITH_DIGIT),
        (ID_WITH_X, ID_WITH_X),
        (ID_WITH_X[:17] + "x", ID_WITH_X),
        (ID_WITH_X.translate(FULL_WIDTH), ID_WITH_X),
        (ID_WITH_X[:17].translate(FULL_WIDTH) + "ｘ", ID_WITH_X),
        (f"  {ID_WITH_DIGIT}\t\n", ID_WITH_DIGIT),
        (f"{ID_WITH_X[:6]} {ID_WITH_X[6:14]} {ID_WITH_X[14:]}", ID_WITH_X),
        (f"\u3000{ID_WITH_X[:6]}\u3000{ID_WITH_X[6:]}\u3000", ID_WITH_X),
        (f"{ID_WITH_X[:6]}\u00a0{ID_WITH_X[6:]}", ID_WITH_X),
        (f"{ID_WITH_X[:6]}-{ID_WITH_X[6:14]}-{ID_WITH_X[14:]}", ID_WITH_X),
        (f"{ID_WITH_X[:6]}\u2010{ID_WITH_X[6:]}", ID_WITH_X),
        (f"{ID_WITH_X[:6]}\u2014{ID_WITH_X[6:]}", ID_WITH_X),
        (f"{ID_WITH_X[:6]}\u2212{ID_WITH_X[6:]}", ID_WITH_X),
        (f"{ID_WITH_X[:6]}\ufe63{ID_WITH_X[6:]}", ID_WITH_X),
        (f"{ID_WITH_X[:6]}\uff0d{ID_WITH_X[6:]}", ID_WITH_X),
    ],
)
def test_id_number_canonical(raw: str, expected: str) -> None:
    assert canonical_id_number(raw, today=TODAY) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("110101900307123", "id_number.legacy_15_digit"),
        ("110101 900307 123", "id_number.legacy_15_digit"),
        ("１１０１０１９００３０７１２３", "id_number.legacy_15_digit"),
        (ID_WITH_DIGIT[:17], "id_number.invalid_length"),
        (ID_WITH_DIGIT + "1", "id_number.invalid_length"),
        ("11010119900307", "id_number.invalid_length"),
        ("11010190030712X", "id_number.invalid_length"),
        ("", "id_number.invalid_length"),
        ("   ", "id_number.invalid_length"),
        ("1" * 600, "id_number.invalid_length"),
        ("A" + ID_WITH_DIGIT[1:], "id_number.invalid_characters"),
        (ID_WITH_DIGIT[:10] + "X" + ID_WITH_DIGIT[11:], "id_number.invalid_characters"),
        (ID_WITH_DIGIT[:17] + "Y", "id_number.invalid_characters"),
        (ID_WITH_DIGIT[:5] + "\u0661" + ID_WITH_DIGIT[6:], "id_number.invalid_characters"),
        (ID_WITH_DIGIT[:17] + "\u0661", "id_number.invalid_characters"),
        ("+" + ID_WITH_DIGIT[1:], "id_number.invalid_characters"),
        (ID_WITH_DIGIT[:6] + "." + ID_WITH_DIGIT[6:], "id_number.invalid_characters"),
        (with_wrong_check_character(ID_WITH_DIGIT), "id_number.invalid_checksum"),
        (with_wrong_check_character(ID_WITH_X), "id_number.invalid_checksum"),
        (ID_WITH_DIGIT[:17] + "X", "id_number.invalid_checksum"),
        (ID_WITH_X[:15] + "4" + ID_WITH_X[16:], "id_number.invalid_checksum"),
    ],
)
def test_id_number_rejected(raw: str, code: str) -> None:
    error = raised_error(IdentifierKind.ID_NUMBER, raw)

    assert error.code == code
    assert error.field == "id_number"


def test_id_number_length_params() -> None:
    error = raised_error(IdentifierKind.ID_NUMBER, "1234")

    assert error.params == {"length": "18"}


@pytest.mark.parametrize(
    "birth",
    ["20000229", "20040229", "19960229", "19000101", "19900101", "19901231", "20240615"],
)
def test_id_number_birth_date_accepted(birth: str) -> None:
    number = make_id_number(birth=birth)

    assert canonical_id_number(number, today=TODAY) == number
    assert id_number_birth_date(number) == date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))


@pytest.mark.parametrize(
    "birth",
    [
        "19990229",
        "19000229",
        "20230229",
        "20000230",
        "20000231",
        "19900431",
        "19901301",
        "19900001",
        "19900100",
        "19900132",
        "18991231",
        "18000101",
        "00000101",
    ],
)
def test_id_number_birth_date_invalid(birth: str) -> None:
    error = raised_error(IdentifierKind.ID_NUMBER, make_id_number(birth=birth))

    assert error.code == "id_number.invalid_birth_date"


@pytest.mark.parametrize("birth", ["20240616", "20250101", "29991231"])
def test_id_number_birth_date_future(birth: str) -> None:
    error = raised_error(IdentifierKind.ID_NUMBER, make_id_number(birth=birth))

    assert error.code == "id_number.birth_date_in_future"


def test_id_number_default_today() -> None:
    # Year 2999 is in the future whatever the current date in Asia/Shanghai is.
    with pytest.raises(IdentifierError) as caught:
        canonical_id_number(make_id_number(birth="29990101"))

    assert caught.value.code == "id_number.birth_date_in_future"
    assert canonical_id_number(ID_WITH_X) == ID_WITH_X


@pytest.mark.parametrize(
    "region",
    [
        "110102",  # Xicheng, Beijing: current.
        "110103",  # Chongwen, Beijing: merged into Dongcheng in 2010.
        "110104",  # Xuanwu, Beijing: merged into Xicheng in 2010.
        "310103",  # Luwan, Shanghai: merged into Huangpu in 2011.
        "310108",  # Zhabei, Shanghai: merged into Jing'an in 2015.
        "320103",  # Baixia, Nanjing: merged into Qinhuai in 2013.
        "320107",  # Xiaguan, Nanjing: merged into Gulou in 2013.
        "119999",  # Not a county code at all: only the province is checked.
        "710000",  # Taiwan in GB/T 2260.
        "810000",  # Residence permit for Hong Kong residents.
        "820000",  # Residence permit for Macao residents.
        "830000",  # Residence permit for Taiwan residents.
    ],
)
def test_id_number_region_accepted(region: str) -> None:
    number = make_id_number(region=region)

    assert canonical_id_number(number, today=TODAY) == number


@pytest.mark.parametrize(
    "prefix",
    ["11", "15", "21", "23", "31", "37", "41", "46", "50", "54", "61", "65"],
)
def test_id_number_province_bounds(prefix: str) -> None:
    number = make_id_number(region=prefix + "0101")

    assert canonical_id_number(number, today=TODAY) == number


@pytest.mark.parametrize(
    "prefix",
    [
        "00",
        "10",
        "16",
        "20",
        "24",
        "30",
        "38",
        "40",
        "47",
        "55",
        "60",
        "66",
        "70",
        "72",
        "80",
        "84",
        "91",
        "99",
    ],
)
def test_id_number_region_unknown(prefix: str) -> None:
    error = raised_error(IdentifierKind.ID_NUMBER, make_id_number(region=prefix + "0101"))

    assert error.code == "id_number.unknown_region"


@pytest.mark.parametrize(
    ("birth", "today", "age"),
    [
        (date(2010, 6, 15), date(2024, 6, 14), 13),
        (date(2010, 6, 15), date(2024, 6, 15), 14),
        (date(2010, 6, 15), date(2024, 6, 16), 14),
        (date(2010, 12, 31), date(2024, 1, 1), 13),
        (date(2008, 2, 29), date(2022, 2, 28), 13),
        (date(2008, 2, 29), date(2022, 3, 1), 14),
        (date(2008, 2, 29), date(2024, 2, 28), 15),
        (date(2008, 2, 29), date(2024, 2, 29), 16),
        (date(2024, 6, 16), date(2024, 6, 15), -1),
    ],
)
def test_age_on(birth: date, today: date, age: int) -> None:
    assert age_on(birth, today) == age


def test_is_under_boundary() -> None:
    assert is_under(date(2010, 6, 16), 14, TODAY)
    assert not is_under(date(2010, 6, 15), 14, TODAY)


@pytest.mark.parametrize(
    ("birth", "today"),
    [
        ("20100615", TODAY),  # Turns 14 today.
        ("20000101", TODAY),
        ("20080229", date(2022, 3, 1)),  # Leap-day birth, 1 March of a non-leap year.
    ],
)
def test_minimum_age_met(birth: str, today: date) -> None:
    check_minimum_age(make_id_number(birth=birth), 14, today=today)


@pytest.mark.parametrize(
    ("birth", "today"),
    [
        ("20100616", TODAY),  # Turns 14 tomorrow.
        ("20240101", TODAY),
        ("20080229", date(2022, 2, 28)),  # Leap-day birth, 28 February of a non-leap year.
    ],
)
def test_minimum_age_not_met(birth: str, today: date) -> None:
    with pytest.raises(IdentifierError) as caught:
        check_minimum_age(make_id_number(birth=birth), 14, today=today)

    assert caught.value.code == "id_number.under_minimum_age"
    assert caught.value.field == "id_number"
    assert caught.value.params == {"minimum_age": "14"}


def test_minimum_age_other_limit() -> None:
    number = make_id_number(birth="20060615")

    check_minimum_age(number, 18, today=TODAY)
    with pytest.raises(IdentifierError) as caught:
        check_minimum_age(number, 18, today=date(2024, 6, 14))
    assert caught.value.params == {"minimum_age": "18"}


@pytest.mark.parametrize(
    "raw",
    [
        "+8619512340001",
        "+86 195 1234 0001",
        "+86-195-1234-0001",
        "0086 195 1234 0001",
        "008619512340001",
        "19512340001",
        "195 1234 0001",
        "195-1234-0001",
        "195\u20101234\u20100001",
        "(+86) 195.1234.0001",
        "+86 (195) 1234 0001",
        "＋８６ １９５ １２３４ ０００１",
        "１９５１２３４０００１",
        "（＋８６）１９５－１２３４－０００１",
        "\u3000195\u30001234\u30000001\u3000",
        " 19512340001\n",
    ],
)
def test_mobile_canonical(raw: str) -> None:
    assert canonical_mobile(raw) == "+8619512340001"


@pytest.mark.parametrize(
    ("raw", "allowed", "expected"),
    [
        ("+1 (415) 555-0100", ("CN", "US"), "+14155550100"),
        ("001 415 555 0100", ("us",), "+14155550100"),
        ("+852 6123 4567", ("HK",), "+85261234567"),
        ("+44 7911 123456", ("GG",), "+447911123456"),
        ("19512340001", ("CN", "HK"), "+8619512340001"),
    ],
)
def test_mobile_other_regions(raw: str, allowed: tuple[str, ...], expected: str) -> None:
    assert canonical_mobile(raw, allowed) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("8619512340001", "mobile.invalid"),  # 86 without + or 00.
        ("86 195 1234 0001", "mobile.invalid"),
        ("1951234000", "mobile.invalid"),
        ("195123400012", "mobile.invalid"),
        ("+8612345678901", "mobile.invalid"),
        ("+8614012345678", "mobile.invalid"),
        ("+86 195 1234 000\u0661", "mobile.invalid"),
        ("\u0661\u0669\u0665\u0661\u0662\u0663\u0664\u0660\u0660\u0660\u0661", "mobile.invalid"),
        ("+86 195 1234 0001 ext. 12", "mobile.invalid"),
        ("+86195abcd0001", "mobile.invalid"),
        ("+", "mobile.invalid"),
        ("", "mobile.invalid"),
        ("1" * 600, "mobile.invalid"),
        ("01012345678", "mobile.not_mobile"),  # Beijing fixed line.
        ("+86 10 1234 5678", "mobile.not_mobile"),
        ("+1 415 555 0100", "mobile.country_not_allowed"),
        ("+852 6123 4567", "mobile.country_not_allowed"),
        ("+886 912 345 678", "mobile.country_not_allowed"),
    ],
)
def test_mobile_rejected(raw: str, code: str) -> None:
    error = raised_error(IdentifierKind.MOBILE, raw)

    assert error.code == code
    assert error.field == "mobile"


@pytest.mark.parametrize(
    ("raw", "allowed", "region"),
    [
        ("+1 415 555 0100", ("CN",), "US"),
        ("+852 6123 4567", ("CN",), "HK"),
        ("19512340001", ("US",), "CN"),
    ],
)
def test_mobile_region_params(raw: str, allowed: tuple[str, ...], region: str) -> None:
    error = raised_error(IdentifierKind.MOBILE, raw, allowed_regions=allowed)

    assert error.code == "mobile.country_not_allowed"
    assert error.params == {"region": region}


@pytest.mark.parametrize(
    "raw",
    [
        "+44 20 7183 8750",  # Fixed line.
        "+44 56 1234 5678",  # VoIP.
        "+44 70 1234 5678",  # Personal number.
    ],
)
def test_mobile_other_types_abroad(raw: str) -> None:
    error = raised_error(IdentifierKind.MOBILE, raw, allowed_regions=("GB",))

    assert error.code == "mobile.not_mobile"


def test_mobile_shared_cost_number() -> None:
    error = raised_error(IdentifierKind.MOBILE, "+86 400 123 4567")

    assert error.code == "mobile.not_mobile"


def test_mobile_ambiguous_type_in_china(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real mainland mobiles are MOBILE in phonenumbers 9.0.43, so the rule that CN numbers
    # must not be FIXED_LINE_OR_MOBILE is exercised with a patched number_type.
    ambiguous = phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE
    monkeypatch.setattr(phonenumbers, "number_type", lambda number: ambiguous)

    error = raised_error(IdentifierKind.MOBILE, "19512340001")

    assert error.code == "mobile.not_mobile"
    assert canonical_mobile("+1 415 555 0100", ("US",)) == "+14155550100"


def test_mobile_regions_not_str() -> None:
    with pytest.raises(TypeError):
        canonical_mobile("19512340001", "CN")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("zhang.san@example.com", "zhang.san@example.com"),
        ("Zhang.San@Example.COM", "zhang.san@example.com"),
        ("  user@example.com\t", "user@example.com"),
        ("\u3000user@example.com\u3000", "user@example.com"),
        ("ＵＳＥＲ＠ＥＸＡＭＰＬＥ．ｃｏｍ", "user@example.com"),
        ("user+tag@example.com", "user+tag@example.com"),
        ("user@bücher.de", "user@xn--bcher-kva.de"),
        ("User@BÜCHER.de", "user@xn--bcher-kva.de"),
        ("user@XN--BCHER-KVA.DE", "user@xn--bcher-kva.de"),
        ("user@例子.测试", "user@xn--fsqu00a.xn--0zwm56d"),
        ("user@mail.例子.中国", "user@mail.xn--fsqu00a.xn--fiqs8s"),
    ],
)
def test_email_canonical(raw: str, expected: str) -> None:
    assert canonical_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("张三@example.com", "email.undeliverable_local_part"),
        ("josé@example.com", "email.undeliverable_local_part"),
        ("zhang.三@bücher.de", "email.undeliverable_local_part"),
        ("user@xn--.com", "email.invalid_domain"),
        ("user@-bad-.com", "email.invalid_domain"),
        ("user@例子..com", "email.invalid_domain"),
        ("user@" + "a" * 64 + ".com", "email.invalid_domain"),
        ("user@xn--abc.com", "email.invalid_domain"),
        ("user@xn--ls8h.la", "email.invalid_domain"),
        ("user@☃.com", "email.invalid_domain"),
        ("user@exa_mple.com", "email.invalid_domain"),
        ("user@example", "email.invalid_domain"),
        ("user@localhost", "email.invalid_domain"),
        ("user@[192.0.2.1]", "email.invalid_domain"),
        ("user@", "email.invalid_domain"),
        ("user@example.com.", "email.invalid_domain"),
        ('"quoted"@example.com', "email.invalid"),
        ('"a b"@example.com', "email.invalid"),
        ("plainaddress", "email.invalid"),
        ("", "email.invalid"),
        ("@example.com", "email.invalid"),
        ("a..b@example.com", "email.invalid"),
        (".user@example.com", "email.invalid"),
        ("a b@example.com", "email.invalid"),
        ("user@@example.com", "email.invalid"),
        ("x" * 250 + "@example.com", "email.invalid"),
        ("Zhang San <user@example.com>", "email.invalid_domain"),  # Domain is "example.com>".
        ("user@example.com" + " " * 600, "email.invalid"),
    ],
)
def test_email_rejected(raw: str, code: str) -> None:
    error = raised_error(IdentifierKind.EMAIL, raw)

    assert error.code == code
    assert error.field == "email"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("4111111111111111", "4111111111111111"),
        ("4111 1111 1111 1111", "4111111111111111"),
        ("4111-1111-1111-1111", "4111111111111111"),
        ("４１１１ １１１１ １１１１ １１１１", "4111111111111111"),
        ("\u30004111\u30001111\u30001111\u30001111\u3000", "4111111111111111"),
        (with_luhn_digit("62220212345678901"), with_luhn_digit("62220212345678901")),
        (with_luhn_digit("12345678901"), with_luhn_digit("12345678901")),
        (with_luhn_digit("621234567890123456"), with_luhn_digit("621234567890123456")),
    ],
)
def test_bank_card_canonical(raw: str, expected: str) -> None:
    assert canonical_bank_card(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (with_luhn_digit("1234567890"), "bank_card.invalid_length"),
        (with_luhn_digit("6" * 19), "bank_card.invalid_length"),
        ("", "bank_card.invalid_length"),
        ("1" * 600, "bank_card.invalid_length"),
        ("4111 1111 1111 111a", "bank_card.invalid_characters"),
        ("4111 1111 1111 111\u0661", "bank_card.invalid_characters"),
        ("4111.1111.1111.1111", "bank_card.invalid_characters"),
        ("4111111111111112", "bank_card.invalid_checksum"),
        ("6222021234567890127", "bank_card.invalid_checksum"),
        ("6222021234567890182", "bank_card.invalid_checksum"),
    ],
)
def test_bank_card_rejected(raw: str, code: str) -> None:
    error = raised_error(IdentifierKind.BANK_CARD, raw)

    assert error.code == code
    assert error.field == "bank_card"


def test_bank_card_length_params() -> None:
    error = raised_error(IdentifierKind.BANK_CARD, "4111")

    assert error.params == {"min_length": "12", "max_length": "19"}


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (IdentifierKind.ID_NUMBER, ID_WITH_X[:17] + "x", ID_WITH_X),
        (IdentifierKind.MOBILE, "195 1234 0001", "+8619512340001"),
        (IdentifierKind.EMAIL, "User@Example.com", "user@example.com"),
        (IdentifierKind.BANK_CARD, "4111 1111 1111 1111", "4111111111111111"),
    ],
)
def test_canonicalize_dispatch(kind: IdentifierKind, raw: str, expected: str) -> None:
    assert canonicalize(kind, raw, today=TODAY) == expected


def test_canonicalize_options() -> None:
    assert canonicalize(IdentifierKind.MOBILE, "+14155550100", allowed_regions=("US",)) == (
        "+14155550100"
    )
    with pytest.raises(IdentifierError):
        canonicalize(IdentifierKind.ID_NUMBER, ID_WITH_X, today=date(1990, 3, 6))


@pytest.mark.parametrize(
    ("kind", "canonical", "expected"),
    [
        (IdentifierKind.ID_NUMBER, ID_WITH_X, "1101**********109X"),
        (IdentifierKind.ID_NUMBER, "830000199003071230", "8300**********1230"),
        (IdentifierKind.MOBILE, "+8619512340001", "195****0001"),
        (IdentifierKind.MOBILE, "+8613800138000", "138****8000"),
        (IdentifierKind.MOBILE, "+14155550100", "+1 415***0100"),
        (IdentifierKind.MOBILE, "+447911123456", "+44 791***3456"),
        (IdentifierKind.MOBILE, "+85261234567", "+852 61**4567"),
        (IdentifierKind.MOBILE, "+886912345678", "+886 91***5678"),
        (IdentifierKind.EMAIL, "zhang.san@example.com", "z***@example.com"),
        (IdentifierKind.EMAIL, "a@example.com", "a***@example.com"),
        (IdentifierKind.EMAIL, "user@xn--bcher-kva.de", "u***@xn--bcher-kva.de"),
        (IdentifierKind.BANK_CARD, "4111111111111111", "**** **** **** 1111"),
        (IdentifierKind.BANK_CARD, "123456789015", "**** **** **** 9015"),
        (IdentifierKind.BANK_CARD, "6222021234567890128", "**** **** **** 0128"),
    ],
)
def test_mask(kind: IdentifierKind, canonical: str, expected: str) -> None:
    assert mask(kind, canonical) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (IdentifierKind.ID_NUMBER, ID_WITH_X[:17]),
        (IdentifierKind.ID_NUMBER, ID_WITH_X[:17] + "x"),
        (IdentifierKind.MOBILE, "19512340001"),
        (IdentifierKind.MOBILE, "+86195abcd0001"),
        (IdentifierKind.EMAIL, "@example.com"),
        (IdentifierKind.EMAIL, "user.example.com"),
        (IdentifierKind.BANK_CARD, "4111 1111 1111 1111"),
        (IdentifierKind.BANK_CARD, "4111"),
    ],
)
def test_mask_non_canonical(kind: IdentifierKind, value: str) -> None:
    with pytest.raises(ValueError, match="expected a canonical") as caught:
        mask(kind, value)

    assert value not in str(caught.value)


def test_bank_card_last_four() -> None:
    assert bank_card_last_four("4111111111111111") == "1111"
    assert bank_card_last_four(with_luhn_digit("621234567890123456")[:-4] + "0042") == "0042"
    with pytest.raises(ValueError, match="expected a canonical"):
        bank_card_last_four("4111-1111-1111-1111")


PRIVACY_CASES = [
    (IdentifierKind.ID_NUMBER, with_wrong_check_character(ID_WITH_DIGIT)),
    (IdentifierKind.ID_NUMBER, "110101900307123"),
    (IdentifierKind.ID_NUMBER, make_id_number(birth="19990229")),
    (IdentifierKind.ID_NUMBER, make_id_number(birth="20240616")),
    (IdentifierKind.ID_NUMBER, make_id_number(region="990101")),
    (IdentifierKind.ID_NUMBER, "A" + ID_WITH_DIGIT[1:]),
    (IdentifierKind.ID_NUMBER, ID_WITH_DIGIT + "12"),
    (IdentifierKind.MOBILE, "+1 415 555 0100"),
    (IdentifierKind.MOBILE, "01012345678"),
    (IdentifierKind.MOBILE, "8619512340001"),
    (IdentifierKind.MOBILE, "+8612345678901"),
    (IdentifierKind.EMAIL, "张三@example.com"),
    (IdentifierKind.EMAIL, "user@xn--.com"),
    (IdentifierKind.EMAIL, "user@xn--abc.com"),
    (IdentifierKind.EMAIL, '"quoted"@example.com'),
    (IdentifierKind.EMAIL, "zhang..san@example.com"),
    (IdentifierKind.BANK_CARD, "4111111111111112"),
    (IdentifierKind.BANK_CARD, "4111 1111 1111 111a"),
    (IdentifierKind.BANK_CARD, "41111111111"),
]


@pytest.mark.parametrize(("kind", "raw"), PRIVACY_CASES)
def test_error_hides_input(kind: IdentifierKind, raw: str) -> None:
    error = raised_error(kind, raw)
    visible_texts = [str(error), repr(error), *map(str, error.args), *error.params.values()]
    fragments = {raw, raw.replace(" ", ""), raw.split("@")[0], raw[-8:]}

    for text in visible_texts:
        for fragment in fragments:
            assert fragment not in text
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


def test_minimum_age_error_hides_input() -> None:
    number = make_id_number(birth="20100616")
    with pytest.raises(IdentifierError) as caught:
        check_minimum_age(number, today=TODAY)

    assert number not in str(caught.value)
    assert "20100616" not in str(caught.value)
    assert number not in caught.value.params.values()


def test_error_messages_complete() -> None:
    codes = {
        "id_number.invalid_length",
        "id_number.legacy_15_digit",
        "id_number.invalid_characters",
        "id_number.unknown_region",
        "id_number.invalid_birth_date",
        "id_number.birth_date_in_future",
        "id_number.invalid_checksum",
        "id_number.under_minimum_age",
        "mobile.invalid",
        "mobile.not_mobile",
        "mobile.country_not_allowed",
        "email.invalid",
        "email.undeliverable_local_part",
        "email.invalid_domain",
        "bank_card.invalid_characters",
        "bank_card.invalid_length",
        "bank_card.invalid_checksum",
    }

    assert set(ERROR_MESSAGES) == codes
    for code in codes:
        assert code.split(".")[0] in {kind.value for kind in IdentifierKind}
