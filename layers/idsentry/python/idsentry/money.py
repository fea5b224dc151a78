"""Money as an integer amount in Stripe's minor units plus a lower-case ISO 4217 currency code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from idsentry.i18n import SUPPORTED_LOCALES, Locale

# Source: Stripe, "Supported currencies", https://docs.stripe.com/currencies, read 2026-12-04
# from stored copies of the page. The current copy contains the "Special cases" table. The page
# renders its zero-decimal, three-decimal and presentment lists at view time, so these lists come
# from an older rendered copy of the same page, which still announced ISK's change for 2023-04-14.
# For ISK also see https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds
# ("ISK will remain a two-decimal currency in the Stripe API"), read 2026-12-04.
#
# Stripe's rules differ from ISO 4217 here:
# - ISK and UGX have no minor unit in ISO 4217, but Stripe keeps them two-decimal for backwards
#   compatibility: 5 ISK is amount 500, and a charge amount must be divisible by 100. Stripe's
#   zero-decimal list still names UGX, but its Special cases entry gives the charge of 5 UGX as
#   amount 500, so this table follows the special case.
# - MGA is two-decimal in ISO 4217 but zero-decimal at Stripe.
# - HUF and TWD are two-decimal at Stripe for charges. Only payouts must be whole units, and this
#   module has no payout rule because the service creates no payouts.
# - Three-decimal currencies are charged only in multiples of 10 minor units (the last digit
#   must be 0).
#
# NOTE: A currency that Stripe added after that older copy raises UnknownCurrencyError until it
# is added here with its Stripe exponent.

_ZERO_DECIMAL: Final = frozenset(
    {
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
        "pyg", "rwf", "vnd", "vuv", "xaf", "xof", "xpf",
    }
)  # fmt: skip

_THREE_DECIMAL: Final = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

# Stripe's presentment currencies that are two-decimal at Stripe, including ISK and UGX.
_TWO_DECIMAL: Final = frozenset(
    {
        "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
        "bdt", "bgn", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad", "cdf",
        "chf", "cny", "cop", "crc", "cve", "czk", "dkk", "dop", "dzd", "egp", "etb", "eur",
        "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gtq", "gyd", "hkd", "hnl", "htg", "huf",
        "idr", "ils", "inr", "isk", "jmd", "kes", "kgs", "khr", "kyd", "kzt", "lak", "lbp",
        "lkr", "lrd", "lsl", "mad", "mdl", "mkd", "mmk", "mnt", "mop", "mur", "mvr", "mwk",
        "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok", "npr", "nzd", "pab", "pen", "pgk",
        "php", "pkr", "pln", "qar", "ron", "rsd", "rub", "sar", "sbd", "scr", "sek", "sgd",
        "shp", "sle", "sos", "srd", "std", "szl", "thb", "tjs", "top", "try", "ttd", "twd",
        "tzs", "uah", "ugx", "usd", "uyu", "uzs", "wst", "xcd", "yer", "zar", "zmw",
    }
)  # fmt: skip

# Number of decimals in Stripe's minor units, per lower-case currency code.
STRIPE_EXPONENTS: Final[Mapping[str, int]] = {
    **dict.fromkeys(_ZERO_DECIMAL, 0),
    **dict.fromkeys(_TWO_DECIMAL, 2),
    **dict.fromkeys(_THREE_DECIMAL, 3),
}

# Number of decimals shown to people, where it differs from Stripe's exponent. ISK and UGX have
# no minor unit in ISO 4217, so 1,200 ISK is shown as "ISK 1,200" although Stripe stores 120000.
_DISPLAY_DECIMALS: Final[Mapping[str, int]] = {"isk": 0, "ugx": 0}

# A charge amount in minor units must be a multiple of this step (Stripe rejects other amounts).
_CHARGE_STEPS: Final[Mapping[str, int]] = {
    "isk": 100,
    "ugx": 100,
    **dict.fromkeys(_THREE_DECIMAL, 10),
}

# Symbols placed directly before the number, per locale. Currencies missing here are shown as
# the upper-case ISO code and a space ("CHF 12.50"). In zh-CN a bare "¥" is CNY. English output
# never uses a bare "¥", because this service's readers take it for CNY, so yen is "JP¥" in both.
_SYMBOLS: Final[Mapping[Locale, Mapping[str, str]]] = {
    "zh-CN": {
        "cny": "¥",
        "usd": "US$",
        "jpy": "JP¥",
        "eur": "€",
        "gbp": "£",
        "hkd": "HK$",
        "twd": "NT$",
        "aud": "AU$",
        "cad": "CA$",
        "nzd": "NZ$",
        "krw": "₩",
    },
    "en": {
        "cny": "CN¥",
        "usd": "$",
        "jpy": "JP¥",
        "eur": "€",
        "gbp": "£",
        "hkd": "HK$",
        "twd": "NT$",
        "aud": "A$",
        "cad": "CA$",
        "nzd": "NZ$",
        "krw": "₩",
    },
}

# DynamoDB numbers hold at most 38 significant digits. The bound also stops an input such as
# "1E+999999999" from building a huge integer.
_MAX_MINOR_DIGITS: Final = 38


class UnknownCurrencyError(ValueError):
    """The currency code is not in Stripe's currency table, so its exponent is unknown."""

    def __init__(self, currency: str) -> None:
        super().__init__(
            f"unknown currency {currency!r}: it is not in the Stripe currency table in "
            "idsentry.money; add it there with Stripe's exponent before using it"
        )
        self.currency = currency


class CurrencyMismatchError(ValueError):
    """Two amounts in different currencies were added, subtracted or compared."""

    def __init__(self, left: str, right: str) -> None:
        super().__init__(
            f"currency mismatch: cannot combine {left!r} with {right!r}; convert first"
        )
        self.left = left
        self.right = right


class AmountPrecisionError(ValueError):
    """A decimal amount has more decimals than the currency's minor unit."""


class NotChargeableError(ValueError):
    """Stripe would reject the amount as a charge or refund amount in its currency."""


def exponent(currency: str) -> int:
    """Return the number of decimals in Stripe's minor units (ISK 2, JPY 0, CNY 2, KWD 3)."""
    return STRIPE_EXPONENTS[_normalize_currency(currency)]


@dataclass(frozen=True)
class Money:
    """An integer amount in Stripe's minor units and a lower-case currency code."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(
                f"amount must be an int in minor units, got {type(self.amount).__name__}"
            )

        object.__setattr__(self, "currency", _normalize_currency(self.currency))

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other)
        return self.amount <= other.amount

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other)
        return self.amount > other.amount

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other)
        return self.amount >= other.amount

    def negate(self) -> Money:
        """Return the same amount with the opposite sign, for example a refund of a charge."""
        return Money(-self.amount, self.currency)

    def _require_same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatchError(self.currency, other.currency)


def to_decimal(money: Money) -> Decimal:
    """Return the amount in major units with exactly Stripe's exponent in decimals (68.00 CNY)."""
    return _major_units(money.amount, exponent(money.currency))


def from_decimal(value: Decimal | str, currency: str) -> Money:
    """Convert an amount in major units to Money that Stripe accepts as a charge.

    Raises:
        AmountPrecisionError: `value` has more decimals than Stripe's minor unit (0.5 JPY).
        NotChargeableError: Stripe would reject the amount (5.50 ISK, 1.234 KWD).
        TypeError: `value` is a float or another type that is not Decimal or str.
        ValueError: `value` is not a finite decimal number.

    Amounts that Stripe reports are stored as received: use `parse_stripe_amount` for them.
    """
    decimal_value = _parse_decimal(value)
    normalized = _normalize_currency(currency)

    amount = _to_minor_units(decimal_value, STRIPE_EXPONENTS[normalized], normalized)
    money = Money(amount, normalized)

    check_chargeable(money)
    return money


def check_chargeable(money: Money) -> None:
    """Raise `NotChargeableError` unless Stripe accepts the amount for a charge or a refund.

    ISK and UGX amounts must be whole units (minor amount divisible by 100), and three-decimal
    amounts must end in 0. Amounts below Stripe's minimum charge are not checked, because that
    minimum depends on the account's settlement currency.
    """
    step = _CHARGE_STEPS.get(money.currency, 1)
    if money.amount % step != 0:
        raise NotChargeableError(
            f"amount {money.amount} is not chargeable in {money.currency}: Stripe accepts only "
            f"multiples of {step} minor units, so round it to a multiple of {step}"
        )


def format_money(money: Money, locale: Locale) -> str:
    """Format an amount for subscribers ("zh-CN") and finance ("en").

    The number uses "," between thousands and "." before the decimals, with the currency's
    display decimals: Stripe's exponent, except ISK and UGX with 0. An ISK or UGX amount that is
    not whole (an old fractional charge) keeps 2 decimals, so that nothing is rounded away.
    A known currency symbol comes right before the number, otherwise the upper-case code and a
    space: zh-CN "¥68.00" (CNY), "US$9.99", "JP¥1,200"; en "CN¥68.00", "$9.99", "JP¥1,200";
    both "ISK 1,200", "KWD 1.230". A negative amount (a refund) starts with "-": "-¥68.00".
    """
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"locale must be one of {', '.join(SUPPORTED_LOCALES)}, got {locale!r}")

    stripe_exponent = exponent(money.currency)
    decimals = _DISPLAY_DECIMALS.get(money.currency, stripe_exponent)
    if money.amount % 10 ** (stripe_exponent - decimals) != 0:
        decimals = stripe_exponent

    number = f"{_major_units(abs(money.amount), stripe_exponent):,.{decimals}f}"
    symbol = _SYMBOLS[locale].get(money.currency)
    text = f"{symbol}{number}" if symbol else f"{money.currency.upper()} {number}"

    return f"-{text}" if money.amount < 0 else text


def parse_stripe_amount(amount: object, currency: object) -> Money:
    """Build Money from the `amount` and `currency` fields of a Stripe object, as received.

    Raises `TypeError` unless `amount` is an int (floats, strings and bools are rejected) and
    `currency` is a string, and `UnknownCurrencyError` for a currency missing from the table.
    The charge rules of `check_chargeable` are not applied, because Stripe reports refunds and
    fees that need not follow them.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"Stripe amount must be an int in minor units, got {type(amount).__name__}")
    if not isinstance(currency, str):
        raise TypeError(f"Stripe currency must be a string, got {type(currency).__name__}")

    return Money(amount, currency)


def _normalize_currency(currency: object) -> str:
    if not isinstance(currency, str):
        raise TypeError(f"currency must be a string, got {type(currency).__name__}")

    normalized = currency.lower()
    if normalized not in STRIPE_EXPONENTS:
        raise UnknownCurrencyError(currency)
    return normalized


def _parse_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        decimal_value = value
    elif isinstance(value, str):
        try:
            decimal_value = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"value {value!r} is not a decimal number") from None
    else:
        raise TypeError(
            f"value must be a Decimal or a str, got {type(value).__name__}; "
            "floats are rejected because they cannot represent most decimal amounts exactly"
        )

    if not decimal_value.is_finite():
        raise ValueError(f"value {value!r} is not a finite decimal number")
    return decimal_value


def _to_minor_units(value: Decimal, currency_exponent: int, currency: str) -> int:
    # Integer arithmetic on the digits, because Decimal arithmetic rounds to the context's
    # 28 significant digits.
    sign, digits, value_exponent = value.as_tuple()
    assert isinstance(value_exponent, int)  # a finite Decimal has an int exponent
    coefficient = "".join(map(str, digits)).lstrip("0")
    if not coefficient:
        return 0

    shift = value_exponent + currency_exponent
    if len(coefficient) + shift > _MAX_MINOR_DIGITS:
        raise ValueError(
            f"value {value} {currency} has more than {_MAX_MINOR_DIGITS} digits in minor units"
        )

    magnitude: int
    if shift >= 0:
        magnitude = int(coefficient) * 10**shift
    else:
        trailing_zeros = len(coefficient) - len(coefficient.rstrip("0"))
        if trailing_zeros < -shift:
            raise AmountPrecisionError(
                f"value {value} has more decimals than {currency} allows: "
                f"at most {currency_exponent} in Stripe's minor units"
            )
        magnitude = int(coefficient[:shift])

    return -magnitude if sign else magnitude


def _major_units(amount: int, currency_exponent: int) -> Decimal:
    # Built from the digits, because Decimal.scaleb and abs() round to the context's precision.
    sign, digits, _ = Decimal(amount).as_tuple()
    return Decimal((sign, digits, -currency_exponent))
