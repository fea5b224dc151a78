"""The readable form of a subscriber's export: one HTML page in 简体中文 and English, no scripts."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from idsentry.money import UnknownCurrencyError, format_money, parse_stripe_amount

DEFAULT_TIMEZONE = "Asia/Shanghai"
# Section names of the export document with their headings, in document order.
SECTION_TITLES: dict[str, tuple[str, str]] = {
    "profile": ("个人资料", "Profile"),
    "identifiers": ("受监测的身份信息", "Watched identifiers"),
    "removed_identifiers": ("已移除的身份信息", "Removed identifiers"),
    "preferences": ("通知偏好", "Notification preferences"),
    "exposures": ("泄露发现", "Exposures found"),
    "alerts": ("告警及其发送情况", "Alerts and how they were sent"),
    "notifications": ("短信与邮件发送记录", "SMS and e-mail deliveries"),
    "payments": ("付款记录", "Payments"),
    "purchases": ("单次购买", "One-off purchases"),
    "failed_payments": ("付款失败", "Failed payments"),
    "referral": ("推荐关系", "Referral"),
    "referral_credits": ("推荐奖励", "Referral credits"),
    "email_events": ("邮件退信与投诉", "E-mail bounces and complaints"),
    "reports": (
        "安全报告（文件在导出的 ZIP 压缩包中）",
        "Security reports (the files are in the export's ZIP archive)",
    ),
    "dossiers": (
        "个人信息泄露情况说明材料（文件在导出的 ZIP 压缩包中）",
        "Incident dossiers (the files are in the export's ZIP archive)",
    ),
    "signup": ("注册记录", "Signup"),
    "deletion": ("注销请求", "Account deletion request"),
    "other_records": ("其他记录", "Other records"),
}
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "report_id": ("报告编号", "Report id"),
    "report_kind": ("报告类型", "Report kind"),
    "month": ("月份", "Month"),
    "purchase_id": ("购买编号", "Purchase id"),
    "files": ("ZIP 压缩包中的文件", "Files in the ZIP archive"),
    "purchased_at": ("购买时间", "Bought"),
    "covers_from": ("报告覆盖的起始日期", "Covers from"),
    "check_results": ("报告中显示的自查结果", "Check results the report showed"),
    "dossier_id": ("说明材料 ID", "Dossier id"),
    "reference": ("材料编号", "Dossier reference"),
    "audience": ("用途", "For"),
    "breach_names": ("泄露事件", "Breaches"),
    "name": ("姓名", "Name"),
    "mobile": ("手机号码", "Mobile number"),
    "mobile_masked": ("手机号码（遮掩）", "Mobile number (masked)"),
    "email": ("电子邮箱", "E-mail address"),
    "email_masked": ("电子邮箱（遮掩）", "E-mail address (masked)"),
    "value": ("完整值", "Full value"),
    "masked": ("遮掩形式", "Masked form"),
    "kind": ("类型", "Kind"),
    "status": ("状态", "Status"),
    "plan": ("套餐", "Plan"),
    "locale": ("语言", "Language"),
    "timezone": ("时区", "Time zone"),
    "consents": ("同意记录", "Consents"),
    "version": ("文本版本", "Text version"),
    "accepted_at": ("同意时间", "Accepted"),
    "withdrawn_at": ("撤回时间", "Withdrawn"),
    "created_at": ("创建时间", "Created"),
    "confirmed": ("已确认", "Confirmed"),
    "added_at": ("添加时间", "Added"),
    "breach_name": ("泄露事件", "Breach"),
    "matched_kinds": ("匹配的身份信息", "Matched identifiers"),
    "found_by": ("发现方式", "Found by"),
    "found_at": ("发现时间", "Found"),
    "severity": ("严重程度", "Severity"),
    "confidence": ("可信度", "Confidence"),
    "severity_rule": ("严重程度依据", "Why this severity"),
    "confidence_rule": ("可信度依据", "Why this confidence"),
    "deliveries": ("发送情况", "Deliveries"),
    "channel": ("渠道", "Channel"),
    "state": ("发送状态", "Sending state"),
    "delivery": ("送达状态", "Delivery status"),
    "message_key": ("消息", "Message"),
    "amount": ("金额（最小货币单位）", "Amount (minor units)"),
    "currency": ("币种", "Currency"),
    "subscriber_id": ("账户编号", "Account id"),
    "export_id": ("导出编号", "Export id"),
    "generated_at": ("生成时间", "Generated"),
}
# Integer fields that hold epoch seconds although their names do not end in "_at".
TIME_FIELDS = frozenset({"created", "current_period_end", "monitored_until", "release_at"})
# Epoch seconds before 2001-09-09 are not plausible times of this service's records.
_MIN_EPOCH = 1_000_000_000

_STYLE = (
    "body{font-family:system-ui,'PingFang SC','Noto Sans CJK SC',sans-serif;margin:1rem;"
    "line-height:1.5;color:#1a1a1a}table{border-collapse:collapse;margin:.5rem 0;width:100%}"
    "th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top;"
    "word-break:break-word}th{background:#f3f3f3;width:30%}h2{margin-top:2rem}"
    ".en{color:#555}"
)


def render_html(document: dict[str, Any]) -> str:
    """Return the export as a self-contained page, every value HTML-escaped."""
    zone = _zone(str((document.get("preferences") or {}).get("timezone") or DEFAULT_TIMEZONE))
    parts = [
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="robots" content="noindex">',
        f"<title>身份哨兵 个人信息副本 · IDSentry copy of your data</title><style>{_STYLE}</style>",
        "</head><body><main>",
        "<h1>身份哨兵：您的个人信息副本 <span class=en lang=en>IDSentry: a copy of your data</span></h1>",
        "<p>这是我们保存的关于您的全部信息。机器可读的完整版本在同时生成的 JSON 文件中。"
        "同时生成的 ZIP 压缩包包含这两个文件，以及您每份安全报告和个人信息泄露情况说明材料的文件。"
        "指纹（带密钥的哈希值）不包含在内，因为它们由上面列出的信息计算而来。请妥善保管本文件。</p>",
        "<p class=en lang=en>This is everything we hold about you. The JSON file generated with it "
        "has the same data in machine-readable form. The ZIP archive generated with them holds "
        "both files and the file of each of your security reports and incident dossiers. Fingerprints "
        "(keyed hashes) are left out because they are computed from the values shown here. Keep "
        "this file safe.</p>",
        _table(
            {key: document.get(key) for key in ("subscriber_id", "export_id", "generated_at")},
            zone,
        ),
    ]
    for section, (title_zh, title_en) in SECTION_TITLES.items():
        if section not in document:
            continue
        parts.append(f"<h2>{title_zh} <span class=en lang=en>{title_en}</span></h2>")
        parts.append(_value(document[section], zone, section))
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def _label(name: str) -> str:
    zh, en = FIELD_LABELS.get(name, (name, ""))
    suffix = f" <span class=en lang=en>{html.escape(en)}</span>" if en else ""
    return f"{html.escape(zh)}{suffix}"


def _value(value: Any, zone: ZoneInfo, name: str = "") -> str:
    if isinstance(value, dict):
        return _table(value, zone)
    if isinstance(value, list):
        if not value:
            return "<p>—</p>"
        return "".join(_value(element, zone) for element in value)
    return _scalar(value, zone, name)


def _table(values: dict[str, Any], zone: ZoneInfo) -> str:
    rows = []
    for name, value in values.items():
        rows.append(
            f"<tr><th scope=row>{_label(name)}</th><td>{_value(value, zone, name)}</td></tr>"
        )
    money = _money(values)
    if money:
        rows.append(
            f"<tr><th scope=row>金额 <span class=en lang=en>Amount</span></th><td>{money}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _scalar(value: Any, zone: ZoneInfo, name: str) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return (
            "是 <span class=en lang=en>yes</span>"
            if value
            else "否 <span class=en lang=en>no</span>"
        )
    is_time = name.endswith("_at") or name in TIME_FIELDS
    if is_time and isinstance(value, int) and value >= _MIN_EPOCH:
        moment = datetime.fromtimestamp(value, UTC).astimezone(zone)
        return html.escape(f"{moment:%Y-%m-%d %H:%M} ({zone.key})")
    return html.escape(str(value))


def _money(values: dict[str, Any]) -> str:
    amount, currency = values.get("amount"), values.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        return ""
    try:
        money = parse_stripe_amount(amount, currency)
    except (UnknownCurrencyError, ValueError):
        return ""
    return html.escape(f"{format_money(money, 'zh-CN')} / {format_money(money, 'en')}")
