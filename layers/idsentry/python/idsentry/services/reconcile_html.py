"""The reconciliation's HTML summary for finance: totals, counts per class and an inline SVG chart.

The page has no scripts and no external resources, so it renders the same in a mail client,
a browser or a headless screenshot, and the same result always gives the same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Final

from idsentry.money import Money, UnknownCurrencyError, format_money
from idsentry.services.reconcile_model import MATCHED, ROW_CLASSES, Reconciliation, Row, Totals
from idsentry.services.reconcile_output import check_locale, local_time, reason_text
from idsentry.services.reconcile_text import CLASSES, COLUMNS, KINDS, OUTCOMES, TITLES

# Rows that are not matched are listed in the page up to this many. The CSV has every row.
MAX_LISTED_ROWS: Final = 200
CLASS_COLOURS: Final = {
    "missing_in_ledger": "#c0392b",
    "missing_in_stripe": "#8e44ad",
    "amount_mismatch": "#d35400",
    "status_mismatch": "#b7950b",
    "payout_mismatch": "#2471a3",
    "matched": "#1e8449",
}
CHART_WIDTH: Final = 640
BAR_HEIGHT: Final = 26
LABEL_WIDTH: Final = 200
STYLE: Final = (
    "body{font-family:'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;"
    "margin:1.5rem auto;max-width:72rem;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".note{color:#555;font-size:.9rem}"
)


def render_html(result: Reconciliation, locale: str = "zh-CN") -> str:
    """Return the summary page in `locale` ("zh-CN" or "en")."""
    chosen = check_locale(locale)
    text = TITLES[chosen]
    counts = result.counts()

    parts = [
        "<!doctype html>\n",
        f'<html lang="{chosen}">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{_e(text['title'])} {_e(result.period.label)}</title>\n",
        f"<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        f"<h1>{_e(text['title'])}</h1>\n",
        f"<p>{_e(text['period'])}: {_e(result.period.label)}<br>\n",
        f"{_e(text['generated_at'])}: {_e(local_time(result.generated_at))}</p>\n",
        f"<h2>{_e(text['counts'])}</h2>\n",
        _counts_table(counts, chosen),
        _chart(counts, chosen),
        f"<h2>{_e(text['totals'])}</h2>\n",
        _totals_table(result.totals, chosen),
        f'<p class="note">{_e(text["amounts_note"])}</p>\n',
        f"<h2>{_e(text['attention'])}</h2>\n",
        _attention(result.rows, chosen),
        f"<h2>{_e(text['repairs'])}</h2>\n",
        _repairs(result, chosen),
        "</main>\n</body>\n</html>\n",
    ]
    return "".join(parts)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _money(amount: int | None, currency: str | None, locale: str) -> str:
    if amount is None or currency is None:
        return ""
    try:
        return format_money(Money(amount, currency), check_locale(locale))
    except UnknownCurrencyError:
        return f"{amount} {currency.upper()}"


def _counts_table(counts: dict[str, int], locale: str) -> str:
    chosen = check_locale(locale)
    rows = "".join(
        f'<tr><td>{_e(CLASSES[chosen][name])}</td><td class="n">{counts[name]}</td></tr>\n'
        for name in ROW_CLASSES
    )
    header = f"<tr><th>{_e(COLUMNS[chosen][0])}</th><th>{_e(TITLES[chosen]['rows'])}</th></tr>\n"
    return f"<table>\n{header}{rows}</table>\n"


def _chart(counts: dict[str, int], locale: str) -> str:
    """Return a horizontal bar chart of the counts per class as inline SVG."""
    chosen = check_locale(locale)
    largest = max(counts.values(), default=0) or 1
    bar_space = CHART_WIDTH - LABEL_WIDTH - 60
    height = BAR_HEIGHT * len(ROW_CLASSES) + 10
    title = TITLES[chosen]["chart"]
    bars = []
    for position, name in enumerate(ROW_CLASSES):
        y = 5 + position * BAR_HEIGHT
        width = round(bar_space * counts[name] / largest)
        bars.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 17}" text-anchor="end" font-size="13">'
            f"{_e(CLASSES[chosen][name])}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{width}" height="{BAR_HEIGHT - 8}" '
            f'fill="{CLASS_COLOURS[name]}"/>'
            f'<text x="{LABEL_WIDTH + width + 6}" y="{y + 17}" font-size="13">{counts[name]}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{height}" '
        f'viewBox="0 0 {CHART_WIDTH} {height}" role="img" aria-label="{_e(title)}">'
        f"<title>{_e(title)}</title>" + "".join(bars) + "</svg>\n"
    )


def _totals_table(totals: Mapping[str, Totals], locale: str) -> str:
    chosen = check_locale(locale)
    text = TITLES[chosen]
    header = (
        f"<tr><th>{_e(text['currency'])}</th>"
        f"<th>{_e(text['stripe'])} · {_e(text['payments'])}</th>"
        f"<th>{_e(text['ledger'])} · {_e(text['payments'])}</th>"
        f"<th>{_e(text['stripe'])} · {_e(text['refunds'])}</th>"
        f"<th>{_e(text['ledger'])} · {_e(text['refunds'])}</th>"
        f"<th>{_e(text['stripe'])} · {_e(text['disputes'])}</th>"
        f"<th>{_e(text['ledger'])} · {_e(text['disputes'])}</th>"
        f"<th>{_e(text['stripe'])} · {_e(text['payouts'])}</th></tr>\n"
    )
    rows = []
    for currency in sorted(totals):
        money = totals[currency]
        values = (
            money.stripe_payments,
            money.ledger_payments,
            money.stripe_refunds,
            money.ledger_refunds,
            money.stripe_disputes,
            money.ledger_disputes,
            money.stripe_payouts,
        )
        cells = "".join(
            f'<td class="n">{_e(_money(value, currency, chosen))}</td>' for value in values
        )
        rows.append(f"<tr><td>{_e(currency.upper())}</td>{cells}</tr>\n")
    return f"<table>\n{header}{''.join(rows)}</table>\n"


def _attention(rows: tuple[Row, ...], locale: str) -> str:
    chosen = check_locale(locale)
    flagged = [row for row in rows if row.row_class != MATCHED]
    if not flagged:
        return f"<p>{_e(TITLES[chosen]['none'])}</p>\n"
    columns = COLUMNS[chosen]
    header = "".join(f"<th>{_e(columns[index])}</th>" for index in (0, 1, 2, 3, 5, 6, 13, 14))
    body = []
    for row in flagged[:MAX_LISTED_ROWS]:
        cells = (
            _e(CLASSES[chosen][row.row_class]),
            _e(KINDS[chosen][row.kind]),
            _e(row.stripe_id),
            _e(local_time(row.created)),
            _e(_money(row.stripe_amount, row.currency, chosen)),
            _e(_money(row.ledger_amount, row.currency, chosen)),
            _e(row.owner_id or ""),
            _e(reason_text(row, chosen)),
        )
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>\n")
    more = ""
    if len(flagged) > MAX_LISTED_ROWS:
        more = f"<p>{_e(TITLES[chosen]['more'].format(count=len(flagged) - MAX_LISTED_ROWS))}</p>\n"
    return f"<table>\n<tr>{header}</tr>\n{''.join(body)}</table>\n{more}"


def _repairs(result: Reconciliation, locale: str) -> str:
    chosen = check_locale(locale)
    if not result.repairs:
        return f"<p>{_e(TITLES[chosen]['no_repairs'])}</p>\n"
    columns = COLUMNS[chosen]
    header = (
        f"<tr><th>{_e(columns[1])}</th><th>{_e(columns[2])}</th>"
        f"<th>{_e(TITLES[chosen]['event'])}</th><th>{_e(TITLES[chosen]['outcome'])}</th></tr>\n"
    )
    body = "".join(
        f"<tr><td>{_e(KINDS[chosen][repair.kind])}</td><td>{_e(repair.stripe_id)}</td>"
        f"<td>{_e(repair.event_type or '')} {_e(repair.event_id or '')}</td>"
        f"<td>{_e(OUTCOMES[chosen][repair.outcome])}</td></tr>\n"
        for repair in result.repairs
    )
    return f"<table>\n{header}{body}</table>\n"
