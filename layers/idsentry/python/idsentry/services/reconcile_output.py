"""The reconciliation as a CSV for Excel and as JSON for machines, both deterministic.

The CSV is UTF-8 with a byte order mark, because Excel opens a CSV without one in the
system's legacy code page and garbles Chinese. Amounts are numbers in major units next to
their currency column. Excel runs a cell that starts with `=`, `+`, `-` or `@` as a formula, and
a tab or carriage return can hide such a start, so every text cell that starts with one of
them gets a leading apostrophe. Numbers that this module writes, negative amounts included,
are never changed.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from idsentry.clock import SHANGHAI
from idsentry.i18n import SUPPORTED_LOCALES, Locale
from idsentry.money import Money, UnknownCurrencyError, to_decimal
from idsentry.services.reconcile_model import Reconciliation, Row
from idsentry.services.reconcile_text import CLASSES, COLUMNS, KINDS, REASONS

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
JSON_SCHEMA_VERSION: Final = 1


def neutralise(text: str) -> str:
    """Return a text cell that Excel shows as text: an apostrophe before a formula start."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def major_units(amount: int | None, currency: str | None) -> Decimal | None:
    """Return the amount in major units with the currency's Stripe decimals, or None."""
    if amount is None or currency is None:
        return None
    try:
        return to_decimal(Money(amount, currency))
    except UnknownCurrencyError:
        return None


def local_time(moment: int | None) -> str:
    if moment is None or moment <= 0:
        return ""
    return datetime.fromtimestamp(moment, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def check_locale(locale: str) -> Locale:
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"locale must be one of {', '.join(SUPPORTED_LOCALES)}, got {locale!r}")
    return locale


def reason_text(row: Row, locale: Locale) -> str:
    return " ".join(REASONS[locale][code] for code in row.reasons)


def csv_cells(row: Row, locale: Locale) -> list[str | Decimal]:
    """Return one CSV row: text cells (neutralised later) and amounts as Decimal."""
    amounts = [
        major_units(row.stripe_amount, row.currency),
        major_units(row.ledger_amount, row.currency),
    ]
    settlement = [
        major_units(row.stripe_settlement_amount, row.settlement_currency),
        major_units(row.ledger_settlement_amount, row.settlement_currency),
    ]
    total = major_units(row.transactions_amount, row.currency)
    explanation = reason_text(row, locale)
    if _has_unknown_currency(row) and "unknown_currency" not in row.reasons:
        explanation = f"{explanation} {REASONS[locale]['unknown_currency']}".strip()
    return [
        CLASSES[locale][row.row_class],
        KINDS[locale][row.kind],
        row.stripe_id,
        local_time(row.created),
        (row.currency or "").upper(),
        *_blank(amounts),
        (row.settlement_currency or "").upper(),
        *_blank(settlement),
        *_blank([total]),
        row.stripe_status or "",
        row.ledger_status or "",
        row.owner_id or "",
        explanation,
    ]


def _has_unknown_currency(row: Row) -> bool:
    """Return whether an amount of the row is left blank because its currency is unknown."""
    pairs = (
        (row.stripe_amount, row.currency),
        (row.ledger_amount, row.currency),
        (row.stripe_settlement_amount, row.settlement_currency),
        (row.ledger_settlement_amount, row.settlement_currency),
    )
    return any(
        amount is not None and major_units(amount, currency) is None for amount, currency in pairs
    )


def _blank(values: list[Decimal | None]) -> list[str | Decimal]:
    return ["" if value is None else value for value in values]


def render_csv(result: Reconciliation, locale: str = "zh-CN") -> bytes:
    """Return the CSV: a header in `locale`, then one row per item, UTF-8 with a BOM."""
    chosen = check_locale(locale)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(header) for header in COLUMNS[chosen]])
    for row in result.rows:
        cells = csv_cells(row, chosen)
        writer.writerow(
            [str(cell) if isinstance(cell, Decimal) else neutralise(cell) for cell in cells]
        )
    return buffer.getvalue().encode("utf-8-sig")


def render_json(result: Reconciliation) -> str:
    """Return the JSON document: amounts in minor units beside their currency, keys sorted."""
    document: dict[str, Any] = {
        "schema_version": JSON_SCHEMA_VERSION,
        "period": {
            "from": result.period.first.isoformat(),
            "to": result.period.last.isoformat(),
            "time_zone": "Asia/Shanghai",
            "start": result.period.start,
            "end": result.period.end,
        },
        "generated_at": result.generated_at,
        "counts": result.counts(),
        "totals": {currency: vars(totals) for currency, totals in sorted(result.totals.items())},
        "rows": [_json_row(row) for row in result.rows],
        "repairs": [vars(repair) for repair in result.repairs],
        "stripe": {
            "objects": dict(sorted(result.objects.items())),
            "requests": dict(sorted(result.stripe_requests.items())),
        },
    }
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def _json_row(row: Row) -> dict[str, Any]:
    return {
        "class": row.row_class,
        "kind": row.kind,
        "stripe_id": row.stripe_id,
        "created": row.created,
        "currency": row.currency,
        "stripe_amount": row.stripe_amount,
        "ledger_amount": row.ledger_amount,
        "settlement_currency": row.settlement_currency,
        "stripe_settlement_amount": row.stripe_settlement_amount,
        "ledger_settlement_amount": row.ledger_settlement_amount,
        "transactions_amount": row.transactions_amount,
        "stripe_status": row.stripe_status,
        "ledger_status": row.ledger_status,
        "owner_id": row.owner_id,
        "reasons": list(row.reasons),
    }
