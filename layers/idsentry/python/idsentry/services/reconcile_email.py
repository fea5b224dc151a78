"""The e-mail sent to finance when a reconciliation finishes: 简体中文 first, then English.

It carries the period, the totals per currency, the items per class and the repairs, and
says how to download the files. It carries no download link: a presigned URL lives only as
long as the credentials that signed it, and an e-mail is read days later.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any, Final

from idsentry.i18n import Locale
from idsentry.money import Money, UnknownCurrencyError, format_money
from idsentry.services.reconcile_model import MATCHED, ROW_CLASSES
from idsentry.services.reconcile_text import CLASSES, OUTCOMES, TITLES
from idsentry.templates import Email

LOCALES: Final[tuple[Locale, ...]] = ("zh-CN", "en")

# Totals fields in the order they are listed, with their labels' keys in TITLES.
TOTAL_FIELDS: Final = (
    ("stripe_payments", "stripe", "payments"),
    ("ledger_payments", "ledger", "payments"),
    ("stripe_refunds", "stripe", "refunds"),
    ("ledger_refunds", "ledger", "refunds"),
    ("stripe_disputes", "stripe", "disputes"),
    ("ledger_disputes", "ledger", "disputes"),
    ("stripe_payouts", "stripe", "payouts"),
)

TEXT: Final[dict[Locale, dict[str, str]]] = {
    "zh-CN": {
        "subject": "Stripe 对账已完成：{period}（需要处理 {attention} 项）",
        "greeting": "财务同事您好：",
        "finished": "Stripe 对账已完成。",
        "id": "对账编号：{reconciliation_id}",
        "period": "对账期间（北京时间）：{period}",
        "mode": "模式：{mode}",
        "mode_check": "只核对，不修复",
        "mode_repair": "核对，并重新处理账本缺失项的 Stripe 事件",
        "rows": "共 {rows} 项：{matched} 项已对上，{attention} 项需要处理。",
        "counts": "各类结果数量：",
        "totals": "金额合计：",
        "no_totals": "本期间没有资金变动。",
        "repairs": "修复结果：",
        "download": "下载文件（CSV、中英文 HTML 摘要和 JSON）：",
        "download_cli": "命令行：idsentry reconcile --id {reconciliation_id} --out 目录",
        "download_api": "管理 API：GET /v1/admin/reconciliations/{reconciliation_id}"
        "（使用 FinanceRole 签名），返回 5 分钟内有效的下载链接",
        "no_link": "为安全起见，本邮件不含下载链接。",
        "signature": "身份哨兵",
        "colon": "：",
        "separator": "，",
    },
    "en": {
        "subject": "Stripe reconciliation finished: {period} (items to look at: {attention})",
        "greeting": "Hello,",
        "finished": "The Stripe reconciliation has finished.",
        "id": "Reconciliation id: {reconciliation_id}",
        "period": "Period (Asia/Shanghai): {period}",
        "mode": "Mode: {mode}",
        "mode_check": "check only, no repair",
        "mode_repair": "check, and apply the Stripe events of items missing in the ledger again",
        "rows": "Items: {rows}; matched: {matched}; to look at: {attention}.",
        "counts": "Items per class:",
        "totals": "Totals:",
        "no_totals": "No money moved in the period.",
        "repairs": "Repairs:",
        "download": "Download the files (CSV, HTML summaries in Chinese and English, JSON):",
        "download_cli": "CLI: idsentry reconcile --id {reconciliation_id} --out DIR",
        "download_api": "Admin API: GET /v1/admin/reconciliations/{reconciliation_id} "
        "(signed with FinanceRole), which returns download links valid for 5 minutes",
        "no_link": "For security, this e-mail contains no download link.",
        "signature": "IDSentry",
        "colon": ": ",
        "separator": ", ",
    },
}


def render_finance_email(record: Mapping[str, Any]) -> Email:
    """Render the e-mail of a finished run item, with both languages in one message."""
    sections = {locale: _lines(record, locale) for locale in LOCALES}
    subject = " / ".join(_subject(record, locale) for locale in LOCALES)
    text = "\n\n----------\n\n".join("\n".join(lines) for lines in sections.values()) + "\n"
    body = "<hr>\n".join(_html_section(lines, locale) for locale, lines in sections.items())
    document = (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head>\n<body>\n{body}</body></html>\n"
    )
    return Email(subject=subject, text=text, html=document)


def _period(record: Mapping[str, Any]) -> str:
    first, last = str(record["from"]), str(record["to"])
    return first if first == last else f"{first} – {last}"


def _counts(record: Mapping[str, Any]) -> tuple[int, int]:
    """Return the number of matched items and of items to look at."""
    counts = record.get("counts") or {}
    matched = int(counts.get(MATCHED, 0))
    return matched, sum(int(value) for value in counts.values()) - matched


def _subject(record: Mapping[str, Any], locale: Locale) -> str:
    _, attention = _counts(record)
    return TEXT[locale]["subject"].format(period=_period(record), attention=attention)


def _money(amount: int, currency: str, locale: Locale) -> str:
    try:
        return format_money(Money(amount, currency), locale)
    except UnknownCurrencyError:
        return f"{amount} {currency.upper()}"


def _label(source: str, kind: str) -> str:
    """Join two labels: with a space after a Latin word ("Stripe 收款"), none between Chinese."""
    return f"{source} {kind}" if source.isascii() or kind.isascii() else f"{source}{kind}"


def _lines(record: Mapping[str, Any], locale: Locale) -> list[str]:
    text = TEXT[locale]
    reconciliation_id = str(record["reconciliation_id"])
    matched, attention = _counts(record)
    mode = text["mode_repair"] if record.get("repair") else text["mode_check"]
    lines = [
        text["greeting"],
        "",
        text["finished"],
        text["id"].format(reconciliation_id=reconciliation_id),
        text["period"].format(period=_period(record)),
        text["mode"].format(mode=mode),
        text["rows"].format(rows=record.get("rows", 0), matched=matched, attention=attention),
        "",
        text["counts"],
    ]
    counts = record.get("counts") or {}
    lines.extend(
        f"  {CLASSES[locale][name]}{text['colon']}{int(counts.get(name, 0))}"
        for name in ROW_CLASSES
    )

    lines.extend(["", text["totals"]])
    totals: Mapping[str, Mapping[str, int]] = record.get("totals") or {}
    if not totals:
        lines.append(f"  {text['no_totals']}")
    for currency, values in sorted(totals.items()):
        parts = [
            f"{_label(TITLES[locale][source], TITLES[locale][kind])} "
            f"{_money(int(values.get(name, 0)), currency, locale)}"
            for name, source, kind in TOTAL_FIELDS
        ]
        lines.append(f"  {currency.upper()}{text['colon']}" + text["separator"].join(parts))

    repairs: Mapping[str, int] = record.get("repairs") or {}
    if record.get("repair"):
        lines.extend(["", text["repairs"]])
        if not repairs:
            lines.append(f"  {TITLES[locale]['no_repairs']}")
        for outcome, count in sorted(repairs.items()):
            label = OUTCOMES[locale].get(outcome, outcome)
            lines.append(f"  {label}{text['colon']}{int(count)}")

    lines.extend(
        [
            "",
            text["download"],
            "  " + text["download_cli"].format(reconciliation_id=reconciliation_id),
            "  " + text["download_api"].format(reconciliation_id=reconciliation_id),
            text["no_link"],
            "",
            text["signature"],
        ]
    )
    return lines


def _html_section(lines: list[str], locale: Locale) -> str:
    """Return one language's lines as HTML paragraphs; indented lines become list items."""
    parts = [f'<section lang="{locale}">']
    in_list = False
    for line in lines:
        if line.startswith("  "):
            if not in_list:
                parts.append("<ul>")
                in_list = True
            parts.append(f"<li>{html.escape(line.strip())}</li>")
            continue
        if in_list:
            parts.append("</ul>")
            in_list = False
        if line:
            parts.append(f"<p>{html.escape(line)}</p>")
    if in_list:
        parts.append("</ul>")
    parts.append("</section>\n")
    return "\n".join(parts)
