"""Breach alert texts: the SMS per severity and locale, and the e-mail with next steps."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from idsentry.clock import SHANGHAI
from idsentry.i18n import SUPPORTED_LOCALES, Locale
from idsentry.identifiers import IdentifierKind
from idsentry.models.breach import Breach, DataKind
from idsentry.services import playbooks
from idsentry.services.quiet_hours import resolve_timezone
from idsentry.services.risk import Confidence, FoundBy, Severity
from idsentry.sms_segments import count_segments
from idsentry.templates import Email

SMS_SEVERITIES: Final[tuple[Severity, ...]] = (Severity.HIGH, Severity.CRITICAL)
CARRIER_SIGNATURE: Final = "【身份哨兵】"
MAX_SMS_SEGMENTS: Final = 2
# The SMS cuts longer breach titles with "…", and the e-mail always shows the full title.
MAX_SMS_BREACH_TITLE: Final = 30
HIBP_URL: Final = "https://haveibeenpwned.com"

# SMS text is fixed per severity and locale because mainland carriers accept only
# pre-approved templates. It carries no link, so that it cannot be mistaken for phishing.
ALERT_SMS_TEMPLATES: Final[dict[Severity, dict[Locale, str]]] = {
    Severity.CRITICAL: {
        "zh-CN": "紧急：您的{kind_label}{masked_identifier}出现在“{breach_title}”泄露数据中。"
        "请立即按我们邮件中的步骤处理。",
        "en": "URGENT: your {kind_label} {masked_identifier} leaked in {breach_title}. "
        "See our e-mail now.",
    },
    Severity.HIGH: {
        "zh-CN": "提醒：您的{kind_label}{masked_identifier}出现在“{breach_title}”泄露数据中。"
        "请尽快按我们邮件中的步骤处理。",
        "en": "Alert: your {kind_label} {masked_identifier} leaked in {breach_title}. "
        "See our e-mail for steps.",
    },
}

# The SMS uses shorter English labels to stay within two segments.
SMS_KIND_LABELS: Final[dict[IdentifierKind, dict[Locale, str]]] = {
    IdentifierKind.ID_NUMBER: {"zh-CN": "身份证号", "en": "ID number"},
    IdentifierKind.MOBILE: {"zh-CN": "手机号", "en": "mobile"},
    IdentifierKind.EMAIL: {"zh-CN": "邮箱", "en": "e-mail"},
    IdentifierKind.BANK_CARD: {"zh-CN": "银行卡", "en": "bank card"},
}

KIND_LABELS: Final[dict[IdentifierKind, dict[Locale, str]]] = {
    IdentifierKind.ID_NUMBER: {"zh-CN": "身份证号", "en": "ID number"},
    IdentifierKind.MOBILE: {"zh-CN": "手机号", "en": "mobile number"},
    IdentifierKind.EMAIL: {"zh-CN": "邮箱", "en": "e-mail address"},
    IdentifierKind.BANK_CARD: {"zh-CN": "银行卡", "en": "bank card"},
}

DATA_KIND_LABELS: Final[dict[DataKind, dict[Locale, str]]] = {
    DataKind.ID_NUMBER: {"zh-CN": "身份证号", "en": "ID number"},
    DataKind.BANK_CARD: {"zh-CN": "银行卡", "en": "Bank card"},
    DataKind.PASSWORD: {"zh-CN": "密码", "en": "Password"},
    DataKind.MOBILE: {"zh-CN": "手机号", "en": "Mobile number"},
    DataKind.EMAIL: {"zh-CN": "邮箱", "en": "E-mail address"},
    DataKind.ADDRESS: {"zh-CN": "住址", "en": "Address"},
    DataKind.NAME: {"zh-CN": "姓名", "en": "Name"},
}

# Next steps per kind of leaked data, one to three each, in the order the e-mail lists the
# kinds (most harmful first). The texts come from the playbook configuration, which the
# account checklist also reads, so an e-mail and the checklist never disagree.
NEXT_STEPS: Final[dict[DataKind, dict[Locale, tuple[str, ...]]]] = {
    kind: {locale: playbooks.email_steps(kind, locale) for locale in SUPPORTED_LOCALES}
    for kind in playbooks.load_config().playbooks
}

SEVERITY_TEXT: Final[dict[Severity, dict[Locale, str]]] = {
    Severity.CRITICAL: {
        "zh-CN": "严重。泄露的信息足以被用来冒用您的身份办理业务或盗取资金。",
        "en": "Critical. The leaked data is enough to open accounts in your name or take your money.",
    },
    Severity.HIGH: {
        "zh-CN": "高。泄露的信息可能被用来冒用您的身份或登录您的账户。",
        "en": "High. The leaked data could be used to pose as you or to sign in to your accounts.",
    },
    Severity.MEDIUM: {
        "zh-CN": "中。泄露的信息可能被用于诈骗电话、短信或钓鱼邮件。",
        "en": "Medium. The leaked data could be used for fraud calls, texts or phishing e-mails.",
    },
    Severity.LOW: {
        "zh-CN": "低。泄露的信息单独使用危害有限，但仍建议您按下面的步骤检查。",
        "en": "Low. The leaked data does little harm on its own, but the steps below are still worth taking.",
    },
}

CONFIDENCE_TEXT: Final[dict[Confidence, dict[Locale, str]]] = {
    Confidence.HIGH: {
        "zh-CN": "高。泄露数据中的记录与您的信息完全一致。",
        "en": "High. A record in the breach data matches your details exactly.",
    },
    Confidence.MEDIUM: {
        "zh-CN": "中。这条记录很可能属于您，但仍有不确定之处。",
        "en": "Medium. The record is probably yours, but some doubt remains.",
    },
    Confidence.LOW: {
        "zh-CN": "低。这条记录可能属于您，我们还无法确认。",
        "en": "Low. The record may be yours; we cannot confirm it yet.",
    },
}

_VERIFIED_TEXT: Final[dict[bool, dict[Locale, str]]] = {
    True: {"zh-CN": "已核实", "en": "Yes"},
    False: {
        "zh-CN": "未核实，数据可能不完整或不实",
        "en": "No, the data may be incomplete or false",
    },
}

_HIBP_CREDIT: Final[dict[Locale, tuple[str, str]]] = {
    "zh-CN": ("泄露信息来源：Have I Been Pwned（", "），按 CC BY 4.0 许可使用。"),
    "en": ("Breach information from Have I Been Pwned (", "), used under CC BY 4.0."),
}

# Fixed e-mail wording: subject, greeting and finding, field names, the steps heading, closing.
_EMAIL_WORDS: Final[dict[Locale, dict[str, str]]] = {
    "zh-CN": {
        "subject": "您的{kind_label}出现在“{breach_title}”泄露数据中 - 身份哨兵",
        "finding": "您好，\n\n我们发现您的{kind_label} {masked_identifier} 出现在“{breach_title}”的泄露数据中。",
        "breach": "泄露事件",
        "breach_date": "泄露发生日期",
        "learned_at": "我们发现的时间",
        "time_zone": "（北京时间）",
        "zone": "（{zone} 时间）",
        "separator": "：",
        "verified": "是否已核实",
        "severity": "风险等级",
        "confidence": "可信度",
        "steps": "建议您现在就做：",
        "closing": "如有疑问，请直接回复本邮件。\n\n身份哨兵",
        "sms_off": "不想再收到警报短信（邮件照常发送）：",
        "email_off": "不想再收到警报邮件（可在账户中查看警报）：",
    },
    "en": {
        "subject": "Your {kind_label} is in the {breach_title} breach - IDSentry",
        "finding": "Hello,\n\nWe found your {kind_label} {masked_identifier} in the data leaked in the {breach_title} breach.",
        "breach": "Breach",
        "breach_date": "Breach date",
        "learned_at": "We found it on",
        "time_zone": " (China Standard Time)",
        "zone": " ({zone} time)",
        "separator": ": ",
        "verified": "Breach verified",
        "severity": "Severity",
        "confidence": "Confidence",
        "steps": "What to do now:",
        "closing": "If you have questions, reply to this e-mail.\n\nIDSentry",
        "sms_off": "Stop alert SMS (e-mails continue): ",
        "email_off": "Stop alert e-mails (alerts stay in your account): ",
    },
}


@dataclass(frozen=True)
class AlertContent:
    """The facts of one alert: the matched identifier, the breach and its scores.

    ``masked_identifier`` is the display form from ``identifiers.mask``, never the raw value.
    ``found_at`` is when IDSentry found the identifier in the breach (the exposure's
    ``found_at``), and ``found_by`` is the path that found it.
    """

    kind: IdentifierKind
    masked_identifier: str
    breach: Breach
    found_at: datetime
    found_by: FoundBy
    severity: Severity
    confidence: Confidence


@dataclass(frozen=True)
class PreferenceLinks:
    """The e-mail's links that stop alert SMS and alert e-mails, without closing the account."""

    sms_off: str
    email_off: str


def render_alert_sms(
    severity: Severity,
    locale: Locale,
    *,
    kind: IdentifierKind,
    masked_identifier: str,
    breach_title: str,
) -> str:
    """Render the alert SMS of ``severity`` in ``locale``, without the carrier signature.

    Breach titles longer than 30 characters are cut with "…". Raises ValueError for a
    severity that gets no SMS (low, medium), an unsupported locale, an unmasked identifier,
    or a text that would take more than two segments with the carrier signature.
    """
    _check_locale(locale)
    _check_masked(masked_identifier)
    if severity not in SMS_SEVERITIES:
        raise ValueError(
            f"severity {severity!r} gets no SMS: alert SMS exist only for 'high' and 'critical'"
        )

    template = ALERT_SMS_TEMPLATES[Severity(severity)][locale]
    text = template.format(
        kind_label=SMS_KIND_LABELS[kind][locale],
        masked_identifier=masked_identifier,
        breach_title=_shorten(breach_title.strip(), MAX_SMS_BREACH_TITLE),
    )

    count = count_segments(text, CARRIER_SIGNATURE)
    if count.segments > MAX_SMS_SEGMENTS:
        raise ValueError(
            f"alert SMS takes {count.segments} segments with the carrier signature, "
            f"more than {MAX_SMS_SEGMENTS}: masked_identifier is too long "
            f"({len(masked_identifier)} characters)"
        )
    return text


# One e-mailed step: its text and the (name, URL) of each official service it links to.
StepLine = tuple[str, tuple[tuple[str, str], ...]]


def next_steps(kinds: frozenset[DataKind], locale: Locale) -> list[tuple[str, tuple[str, ...]]]:
    """Return (data kind label, steps) for each leaked kind, most harmful kind first."""
    _check_locale(locale)
    return [
        (DATA_KIND_LABELS[kind][locale], steps[locale])
        for kind, steps in NEXT_STEPS.items()
        if kind in kinds
    ]


def _next_step_lines(
    kinds: frozenset[DataKind], locale: Locale
) -> list[tuple[str, tuple[StepLine, ...]]]:
    """Return next_steps with each step's service links, for the e-mail."""
    return [
        (
            DATA_KIND_LABELS[kind][locale],
            tuple(zip(steps[locale], playbooks.email_step_links(kind, locale), strict=True)),
        )
        for kind, steps in NEXT_STEPS.items()
        if kind in kinds
    ]


def credits_hibp(alert: AlertContent) -> bool:
    """Whether the alert rests on HIBP data, so it must credit HIBP (CC BY 4.0).

    That is when HIBP found the exposure or when the breach record comes from HIBP's catalogue.
    """
    return alert.found_by == "hibp" or alert.breach.source == "hibp"


def render_alert_email(
    alert: AlertContent,
    locale: Locale,
    links: PreferenceLinks | None = None,
    timezone: str = "Asia/Shanghai",
) -> Email:
    """Render the alert e-mail in ``locale``: subject, plain text and HTML with escaped values.

    ``links``, when given, end the e-mail with the links that stop alert SMS and alert e-mails.

    The discovery time is shown in ``timezone`` (the subscriber's, an IANA name; an unknown one
    falls back to Asia/Shanghai). Raises ValueError for an unsupported locale, an
    unmasked identifier or a naive ``found_at``.
    """
    _check_locale(locale)
    _check_masked(alert.masked_identifier)
    if alert.found_at.tzinfo is None:
        raise ValueError("found_at must be timezone-aware")

    words = _EMAIL_WORDS[locale]
    variables = {
        "kind_label": KIND_LABELS[alert.kind][locale],
        "masked_identifier": alert.masked_identifier,
        "breach_title": alert.breach.title,
    }
    # The discovery time is shown on the subscriber's clock, named after its zone.
    zone = resolve_timezone(timezone)
    found_at = alert.found_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    zone_label = (
        words["time_zone"] if zone.key == SHANGHAI.key else words["zone"].format(zone=zone.key)
    )
    facts = [
        (words["breach"], alert.breach.title),
        (words["breach_date"], alert.breach.breach_date.isoformat()),
        (words["learned_at"], found_at + zone_label),
        (words["verified"], _VERIFIED_TEXT[alert.breach.is_verified][locale]),
        (words["severity"], SEVERITY_TEXT[alert.severity][locale]),
        (words["confidence"], CONFIDENCE_TEXT[alert.confidence][locale]),
    ]
    leaked = alert.breach.kinds | {DataKind(alert.kind.value)}
    steps = _next_step_lines(leaked, locale)
    credit = _HIBP_CREDIT[locale] if credits_hibp(alert) else None

    manage = []
    if links is not None:
        manage = [(words["sms_off"], links.sms_off), (words["email_off"], links.email_off)]

    subject = words["subject"].format(**variables)
    finding = words["finding"].format(**variables)
    text = _email_text(finding, facts, words, steps, credit, manage)
    page = _email_html(locale, subject, finding, facts, words, steps, credit, manage)
    return Email(subject=subject, text=text, html=page)


def _email_text(
    finding: str,
    facts: list[tuple[str, str]],
    words: dict[str, str],
    steps: list[tuple[str, tuple[StepLine, ...]]],
    credit: tuple[str, str] | None,
    manage: list[tuple[str, str]],
) -> str:
    separator = words["separator"]
    blocks = [finding, "\n".join(f"{name}{separator}{value}" for name, value in facts)]

    lines = [words["steps"]]
    for label, items in steps:
        lines.append("")
        lines.append(label)
        for number, (item, links) in enumerate(items, start=1):
            lines.append(f"{number}. {item}")
            lines.extend(f"   {name}{separator}{url}" for name, url in links)
    blocks.append("\n".join(lines))

    if credit is not None:
        blocks.append(f"{credit[0]}{HIBP_URL}{credit[1]}")
    blocks.append(words["closing"])
    if manage:
        blocks.append("\n".join(f"{label}{url}" for label, url in manage))
    return "\n\n".join(blocks) + "\n"


def _email_html(
    locale: Locale,
    subject: str,
    finding: str,
    facts: list[tuple[str, str]],
    words: dict[str, str],
    steps: list[tuple[str, tuple[StepLine, ...]]],
    credit: tuple[str, str] | None,
    manage: list[tuple[str, str]],
) -> str:
    escape = html.escape
    parts = [_paragraphs(finding)]

    rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in facts
    )
    parts.append(f"<table>{rows}</table>")

    parts.append(f"<p>{escape(words['steps'])}</p>")
    for label, items in steps:
        entries = "".join(f"<li>{escape(item)}{_links_html(links)}</li>" for item, links in items)
        parts.append(f"<h3>{escape(label)}</h3><ol>{entries}</ol>")

    if credit is not None:
        link = f'<a href="{escape(HIBP_URL)}">{escape(HIBP_URL)}</a>'
        parts.append(f"<p>{escape(credit[0])}{link}{escape(credit[1])}</p>")
    parts.append(_paragraphs(words["closing"]))
    for label, url in manage:
        parts.append(
            f'<p><small>{escape(label)}<a href="{escape(url)}">{escape(url)}</a></small></p>'
        )

    return (
        f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head><body>{''.join(parts)}</body></html>"
    )


def _links_html(links: tuple[tuple[str, str], ...]) -> str:
    return "".join(
        f'<br><a href="{html.escape(url)}">{html.escape(name)}</a>' for name, url in links
    )


def _paragraphs(text: str) -> str:
    # Same layout as templates.render_email: blank lines split paragraphs, newlines become <br>.
    return "".join(
        f"<p>{html.escape(part).replace(chr(10), '<br>')}</p>" for part in text.split("\n\n")
    )


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _check_locale(locale: str) -> None:
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"locale {locale!r} is not supported: use zh-CN or en")


def _check_masked(masked_identifier: str) -> None:
    # Every form that identifiers.mask returns hides characters with "*".
    if "*" not in masked_identifier:
        raise ValueError(
            "masked_identifier must be the masked form from identifiers.mask, not a raw value"
        )
