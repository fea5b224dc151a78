"""Unit tests for money in Stripe's minor units: exponents, conversion, charge rules, formatting."""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal

import pytest

from idsentry.money import (
    AmountPrecisionError,
    CurrencyMismatchError,
    Money,
    NotChargeableError,
    UnknownCurrencyError,
    check_chargeable,
    exponent,
    format_money,
    from_decimal,
    parse_stripe_amount,
    to_decimal,
)

pytestmark = pytest.mark.unit

# Written out here from Stripe's currencies page, independently of the module's table.
ZERO_DECIMAL = [
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
    "pyg", "rwf", "vnd", "vuv", "xaf", "xof", "xpf",
]  # fmt: skip
THREE_DECIMAL = ["bhd", "jod", "kwd", "omr", "tnd"]
TWO_DECIMAL = [
    "cny", "usd", "eur", "gbp", "hkd", "sgd", "aud", "cad", "chf", "nzd", "twd", "huf", "mop",
    "isk", "ugx",
]  # fmt: skip


def unchecked_money(amount: int, currency: str) -> Money:
    """Build a Money that skips validation, as a corrupted stored item could."""
    money = object.__new__(Money)
    object.__setattr__(money, "amount", amount)
    object.__setattr__(money, "currency", currency)
    return money


@pytest.mark.parametrize("currency", ZERO_DECIMAL)
def test_exponent_zero_decimal(currency: str) -> None:
    assert exponent(currency) == 0


@pytest.mark.parametrize("currency", THREE_DECIMAL)
def test_exponent_three_decimal(currency: str) -> None:
    assert exponent(currency) == 3


@pytest.mark.parametrize("currency", TWO_DECIMAL)
def test_exponent_two_decimal(currency: str) -> None:
    assert exponent(currency) == 2


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("JPY", 0), ("Jpy", 0), ("KRW", 0), ("CNY", 2), ("IsK", 2), ("KWD", 3)],
)
def test_exponent_case_insensitive(currency: str, expected: int) -> None:
    assert exponent(currency) == expected


@pytest.mark.parametrize("currency", ["xyz", "", "us", "usd ", " usd", "usdd", "iqd", "lyd"])
def test_exponent_unknown(currency: str) -> None:
    with pytest.raises(UnknownCurrencyError) as caught:
        exponent(currency)

    assert repr(currency) in str(caught.value)
    assert caught.value.currency == currency


def test_unknown_currency_is_value_error() -> None:
    assert issubclass(UnknownCurrencyError, ValueError)


def test_money_normalizes_currency() -> None:
    money = Money(999, "USD")

    assert money.currency == "usd"
    assert money == Money(999, "usd")
    assert hash(money) == hash(Money(999, "usd"))


def test_money_unknown_currency() -> None:
    with pytest.raises(UnknownCurrencyError, match="'XYZ'"):
        Money(100, "XYZ")


@pytest.mark.parametrize("amount", [True, False, 9.99, 10.0, "999", Decimal("999"), None])
def test_money_rejects_non_int_amount(amount: object) -> None:
    with pytest.raises(TypeError, match="amount must be an int"):
        Money(amount, "usd")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", [None, 840, b"usd"])
def test_money_rejects_non_str_currency(currency: object) -> None:
    with pytest.raises(TypeError, match="currency must be a string"):
        Money(100, currency)  # type: ignore[arg-type]


def test_money_is_frozen() -> None:
    money = Money(100, "usd")

    with pytest.raises(AttributeError):
        money.amount = 200  # type: ignore[misc]


def test_money_add_and_subtract() -> None:
    assert Money(6800, "cny") + Money(1200, "CNY") == Money(8000, "cny")
    assert Money(6800, "cny") - Money(10000, "cny") == Money(-3200, "cny")


def test_money_negate() -> None:
    assert Money(6800, "cny").negate() == Money(-6800, "cny")
    assert Money(-50, "jpy").negate() == Money(50, "jpy")
    assert Money(0, "usd").negate() == Money(0, "usd")


def test_money_compare_same_currency() -> None:
    small = Money(999, "usd")
    large = Money(1000, "usd")

    assert small < large
    assert small <= large
    assert small <= Money(999, "usd")
    assert large > small
    assert large >= small
    assert large >= Money(1000, "usd")
    assert not large < small


def test_money_equality_across_currencies() -> None:
    assert Money(100, "usd") != Money(100, "eur")


@pytest.mark.parametrize(
    "operation",
    [operator.add, operator.sub, operator.lt, operator.le, operator.gt, operator.ge],
    ids=["add", "subtract", "lt", "le", "gt", "ge"],
)
def test_money_mixed_currency_rejected(operation: Callable[[Money, Money], object]) -> None:
    with pytest.raises(CurrencyMismatchError) as caught:
        operation(Money(100, "usd"), Money(100, "cny"))

    assert "'usd'" in str(caught.value)
    assert "'cny'" in str(caught.value)


def test_money_with_number_rejected() -> None:
    with pytest.raises(TypeError):
        operator.add(Money(100, "usd"), 1)
    with pytest.raises(TypeError):
        operator.lt(Money(100, "usd"), 1)


@pytest.mark.parametrize(
    ("money", "expected"),
    [
        (Money(1200, "jpy"), "1200"),
        (Money(50000, "krw"), "50000"),
        (Money(6800, "cny"), "68.00"),
        (Money(5, "usd"), "0.05"),
        (Money(-999, "usd"), "-9.99"),
        (Money(1230, "kwd"), "1.230"),
        (Money(120000, "isk"), "1200.00"),
        (Money(0, "eur"), "0.00"),
        (Money(10**40 + 1, "usd"), "100000000000000000000000000000000000000.01"),
    ],
)
def test_to_decimal(money: Money, expected: str) -> None:
    result = to_decimal(money)

    assert str(result) == expected
    assert result == Decimal(expected)


def test_zero_decimal_not_assumed_two() -> None:
    assert to_decimal(Money(1200, "jpy")) == Decimal(1200)
    assert to_decimal(Money(1200, "krw")) == Decimal(1200)
    assert from_decimal("1200", "jpy").amount == 1200
    assert from_decimal("1200", "krw").amount == 1200
    assert format_money(Money(1200, "jpy"), "en") == "JP¥1,200"
    assert format_money(Money(1200, "krw"), "en") == "₩1,200"


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("68", "cny", Money(6800, "cny")),
        ("68.00", "CNY", Money(6800, "cny")),
        (Decimal("9.99"), "usd", Money(999, "usd")),
        ("0.05", "usd", Money(5, "usd")),
        ("-9.99", "usd", Money(-999, "usd")),
        ("1200", "jpy", Money(1200, "jpy")),
        ("1200.000", "jpy", Money(1200, "jpy")),
        ("1.2E+3", "jpy", Money(1200, "jpy")),
        ("50000", "krw", Money(50000, "krw")),
        ("5", "isk", Money(500, "isk")),
        ("1200.00", "isk", Money(120000, "isk")),
        ("5", "ugx", Money(500, "ugx")),
        ("1.23", "kwd", Money(1230, "kwd")),
        ("1.230", "bhd", Money(1230, "bhd")),
        ("10.45", "huf", Money(1045, "huf")),
        ("800.45", "twd", Money(80045, "twd")),
        ("0", "usd", Money(0, "usd")),
        ("-0.00", "jpy", Money(0, "jpy")),
        ("1" + "0" * 35, "usd", Money(10**37, "usd")),
    ],
)
def test_from_decimal(value: Decimal | str, currency: str, expected: Money) -> None:
    assert from_decimal(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        ("0.5", "jpy"),
        ("1200.1", "jpy"),
        ("0.5", "krw"),
        ("0.001", "usd"),
        ("9.999", "cny"),
        ("1.0001", "kwd"),
        ("5.001", "isk"),
        ("1E-999999999", "jpy"),
    ],
)
def test_from_decimal_too_precise(value: str, currency: str) -> None:
    with pytest.raises(AmountPrecisionError, match=f"more decimals than {currency}"):
        from_decimal(value, currency)


@pytest.mark.parametrize(
    ("value", "currency"),
    [("5.50", "isk"), ("0.01", "isk"), ("5.5", "ugx"), ("1.234", "kwd"), ("-0.001", "tnd")],
)
def test_from_decimal_not_chargeable(value: str, currency: str) -> None:
    with pytest.raises(NotChargeableError, match="not chargeable"):
        from_decimal(value, currency)


@pytest.mark.parametrize("value", [9.99, 10.0, 1200, True, None])
def test_from_decimal_rejects_types(value: object) -> None:
    with pytest.raises(TypeError, match="Decimal or a str"):
        from_decimal(value, "usd")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["", "abc", "9,99", "NaN", "sNaN", "Infinity", "-Infinity"])
def test_from_decimal_invalid_text(value: str) -> None:
    with pytest.raises(ValueError, match="decimal number"):
        from_decimal(value, "usd")


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("-Infinity")])
def test_from_decimal_not_finite(value: Decimal) -> None:
    with pytest.raises(ValueError, match="not a finite decimal"):
        from_decimal(value, "usd")


@pytest.mark.parametrize("value", ["1E+999999999", "1" + "0" * 36, "1E+38"])
def test_from_decimal_too_large(value: str) -> None:
    with pytest.raises(ValueError, match="more than 38 digits"):
        from_decimal(value, "usd")


def test_from_decimal_unknown_currency() -> None:
    with pytest.raises(UnknownCurrencyError, match="'xyz'"):
        from_decimal("1", "xyz")


@pytest.mark.parametrize(
    "money",
    [
        Money(500, "isk"),
        Money(120000, "ISK"),
        Money(500, "ugx"),
        Money(1230, "kwd"),
        Money(10, "omr"),
        Money(1045, "huf"),
        Money(80045, "twd"),
        Money(1, "usd"),
        Money(1, "jpy"),
        Money(0, "isk"),
    ],
)
def test_check_chargeable_accepts(money: Money) -> None:
    check_chargeable(money)


@pytest.mark.parametrize(
    ("money", "step"),
    [
        (Money(550, "isk"), 100),
        (Money(1, "isk"), 100),
        (Money(-550, "isk"), 100),
        (Money(150099, "ugx"), 100),
        (Money(1234, "kwd"), 10),
        (Money(5, "bhd"), 10),
        (Money(1001, "jod"), 10),
    ],
)
def test_check_chargeable_rejects(money: Money, step: int) -> None:
    with pytest.raises(NotChargeableError) as caught:
        check_chargeable(money)

    assert money.currency in str(caught.value)
    assert f"multiples of {step} minor units" in str(caught.value)


@pytest.mark.parametrize(
    ("money", "zh_cn", "en"),
    [
        (Money(6800, "cny"), "¥68.00", "CN¥68.00"),
        (Money(999, "usd"), "US$9.99", "$9.99"),
        (Money(1200, "jpy"), "JP¥1,200", "JP¥1,200"),
        (Money(50000, "krw"), "₩50,000", "₩50,000"),
        (Money(1000, "eur"), "€10.00", "€10.00"),
        (Money(1000, "gbp"), "£10.00", "£10.00"),
        (Money(1000, "hkd"), "HK$10.00", "HK$10.00"),
        (Money(1000, "aud"), "AU$10.00", "A$10.00"),
        (Money(80045, "twd"), "NT$800.45", "NT$800.45"),
        (Money(1250, "chf"), "CHF 12.50", "CHF 12.50"),
        (Money(1250, "sgd"), "SGD 12.50", "SGD 12.50"),
        (Money(1045, "huf"), "HUF 10.45", "HUF 10.45"),
        (Money(1230, "kwd"), "KWD 1.230", "KWD 1.230"),
        (Money(1234567, "bhd"), "BHD 1,234.567", "BHD 1,234.567"),
        (Money(5, "usd"), "US$0.05", "$0.05"),
        (Money(0, "cny"), "¥0.00", "CN¥0.00"),
        (Money(0, "jpy"), "JP¥0", "JP¥0"),
    ],
)
def test_format_money(money: Money, zh_cn: str, en: str) -> None:
    assert format_money(money, "zh-CN") == zh_cn
    assert format_money(money, "en") == en


@pytest.mark.parametrize(
    ("money", "expected"),
    [
        (Money(123456789012, "cny"), "¥1,234,567,890.12"),
        (Money(999999999999, "jpy"), "JP¥999,999,999,999"),
        (Money(100000000, "usd"), "US$1,000,000.00"),
        (Money(10**40 + 1, "usd"), "US$100,000,000,000,000,000,000,000,000,000,000,000,000.01"),
    ],
)
def test_format_money_large(money: Money, expected: str) -> None:
    assert format_money(money, "zh-CN") == expected


@pytest.mark.parametrize(
    ("money", "zh_cn", "en"),
    [
        (Money(-6800, "cny"), "-¥68.00", "-CN¥68.00"),
        (Money(-123456, "usd"), "-US$1,234.56", "-$1,234.56"),
        (Money(-1200, "jpy"), "-JP¥1,200", "-JP¥1,200"),
        (Money(-120000, "isk"), "-ISK 1,200", "-ISK 1,200"),
        (Money(-1230, "kwd"), "-KWD 1.230", "-KWD 1.230"),
        (Money(-1, "usd"), "-US$0.01", "-$0.01"),
    ],
)
def test_format_money_negative(money: Money, zh_cn: str, en: str) -> None:
    assert format_money(money, "zh-CN") == zh_cn
    assert format_money(money, "en") == en


@pytest.mark.parametrize(
    ("money", "expected"),
    [
        (Money(120000, "isk"), "ISK 1,200"),
        (Money(500, "isk"), "ISK 5"),
        (Money(150000000, "ugx"), "UGX 1,500,000"),
        (Money(120050, "isk"), "ISK 1,200.50"),
        (Money(1, "isk"), "ISK 0.01"),
    ],
)
def test_format_money_whole_unit_display(money: Money, expected: str) -> None:
    assert format_money(money, "en") == expected


def test_isk_both_ways() -> None:
    money = from_decimal("1200", "isk")

    assert money.amount == 120000
    assert to_decimal(money) == Decimal("1200")
    assert format_money(money, "zh-CN") == "ISK 1,200"
    assert parse_stripe_amount(120000, "isk") == money


def test_format_money_unknown_currency() -> None:
    with pytest.raises(UnknownCurrencyError, match="'xyz'"):
        format_money(unchecked_money(100, "xyz"), "en")


@pytest.mark.parametrize("locale", ["zh", "en-US", "fr", ""])
def test_format_money_unknown_locale(locale: str) -> None:
    with pytest.raises(ValueError, match="locale must be one of zh-CN, en"):
        format_money(Money(100, "usd"), locale)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (999, "usd", Money(999, "usd")),
        (1200, "jpy", Money(1200, "jpy")),
        (-6800, "cny", Money(-6800, "cny")),
        (120050, "isk", Money(120050, "isk")),
        (1234, "kwd", Money(1234, "kwd")),
        (0, "USD", Money(0, "usd")),
    ],
)
def test_parse_stripe_amount(amount: object, currency: object, expected: Money) -> None:
    assert parse_stripe_amount(amount, currency) == expected


@pytest.mark.parametrize("amount", [9.99, 1200.0, "999", True, False, None, Decimal("999"), [999]])
def test_parse_stripe_amount_rejects_amount(amount: object) -> None:
    with pytest.raises(TypeError, match="Stripe amount must be an int") as caught:
        parse_stripe_amount(amount, "usd")

    assert type(amount).__name__ in str(caught.value)


@pytest.mark.parametrize("currency", [None, 840, b"usd", ["usd"]])
def test_parse_stripe_amount_rejects_currency_type(currency: object) -> None:
    with pytest.raises(TypeError, match="Stripe currency must be a string"):
        parse_stripe_amount(999, currency)


@pytest.mark.parametrize("currency", ["xyz", "", "usd "])
def test_parse_stripe_amount_unknown_currency(currency: str) -> None:
    with pytest.raises(UnknownCurrencyError):
        parse_stripe_amount(999, currency)
