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
# kinds (most harmful first). Services are named as their operators name them, and the only
# phone numbers given are the public hotlines 110 and 96110, with no URLs.
NEXT_STEPS: Final[dict[DataKind, dict[Locale, tuple[str, ...]]]] = {
    DataKind.ID_NUMBER: {
        "zh-CN": (
            "用工业和信息化部的“一证通查”服务（“工信微报”微信公众号或支付宝“一证通查”小程序）"
            "查询您名下的手机卡和手机号关联的互联网账号，发现不认识的请联系运营商或对应平台处理。",
            "在云闪付 App 中用“一键查卡”查询您名下的银行卡，并向人民银行征信中心申请个人信用报告，"
            "检查有没有您不知道的银行卡、贷款或信用卡。",
            "如果发现有人冒用您的身份，请拨打 110 报警，或在国家反诈中心 App 中举报。",
        ),
        "en": (
            "Use the lookup of the Ministry of Industry and Information Technology (一证通查), "
            "in the 工信微报 WeChat account or the 一证通查 Alipay mini program, to check the phone "
            "cards under your ID and the internet accounts linked to your numbers. Report any "
            "you do not recognise to the carrier or the platform.",
            "Use the card lookup (一键查卡) in the UnionPay app (云闪付) to list the bank cards "
            "under your name, and request your credit report from the Credit Reference Center of "
            "the People's Bank of China (人民银行征信中心). Look for cards or loans you did not open.",
            "If someone is using your identity, call the police on 110 or report it in the "
            "National Anti-Fraud Center app (国家反诈中心).",
        ),
    },
    DataKind.BANK_CARD: {
        "zh-CN": (
            "立即拨打发卡银行的客服电话（见卡背面或银行官方 App），冻结这张卡并申请换卡。",
            "查看这张卡最近的交易记录，发现不是您本人的交易请立即告诉银行。",
        ),
        "en": (
            "Call your bank now on the number on the back of the card or in its official app, "
            "and ask it to freeze and replace the card.",
            "Check the card's recent transactions and report any you did not make to the bank.",
        ),
    },
    DataKind.PASSWORD: {
        "zh-CN": (
            "修改这个网站的密码，以及所有用过相同密码的账户的密码，每个账户使用不同的密码。",
            "在重要账户（邮箱、支付、社交）上开启两步验证。",
        ),
        "en": (
            "Change the password on this site and on every account where you reused it, and "
            "use a different password for each account.",
            "Turn on two-step verification for your important accounts (e-mail, payment, social).",
        ),
    },
    DataKind.MOBILE: {
        "zh-CN": (
            "警惕针对您的诈骗电话和短信，例如冒充客服、快递理赔或公检法的来电。"
            "不要透露验证码，不要向陌生账户转账。",
            "96110 是公安机关的反诈预警劝阻专线：接到 96110 的来电请接听，拿不准时也可拨打 96110 咨询。",
        ),
        "en": (
            "Expect targeted fraud calls and texts, such as fake customer service, parcel "
            "compensation or police calls. Never share a verification code or transfer money "
            "to an account you do not know.",
            "96110 is the police anti-fraud warning line: answer calls from 96110, and call it "
            "yourself if you are unsure about a call.",
        ),
    },
    DataKind.EMAIL: {
        "zh-CN": (
            "警惕钓鱼邮件：不要点击要求您登录、付款或“解冻账户”的邮件中的链接。",
            "修改用这个邮箱登录的账户的密码，首先是邮箱本身，并开启两步验证。",
        ),
        "en": (
            "Watch for phishing: do not click links in e-mails that ask you to sign in, pay "
            "or unlock an account.",
            "Change the passwords of the accounts that use this address to sign in, starting "
            "with the mailbox itself, and turn on two-step verification.",
        ),
    },
    DataKind.ADDRESS: {
        "zh-CN": (
            "警惕冒充快递、退款或理赔的电话、短信和上门人员，核实身份前不要提供信息或付款。",
        ),
        "en": (
            "Be wary of calls, texts and visitors claiming a parcel, refund or compensation. "
            "Do not give details or pay before you have checked who they are.",
        ),
    },
    DataKind.NAME: {
        "zh-CN": ("陌生人能叫出您的姓名并不能证明其身份，请照常核实来电和短信。",),
        "en": (
            "A stranger who knows your name has not proved who they are, so keep checking "
            "calls and texts as usual.",
        ),
    },
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


def next_steps(kinds: frozenset[DataKind], locale: Locale) -> list[tuple[str, tuple[str, ...]]]:
    """Return (data kind label, steps) for each leaked kind, most harmful kind first."""
    _check_locale(locale)
    return [
        (DATA_KIND_LABELS[kind][locale], steps[locale])
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
    steps = next_steps(leaked, locale)
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
    steps: list[tuple[str, tuple[str, ...]]],
    credit: tuple[str, str] | None,
    manage: list[tuple[str, str]],
) -> str:
    separator = words["separator"]
    blocks = [finding, "\n".join(f"{name}{separator}{value}" for name, value in facts)]

    lines = [words["steps"]]
    for label, items in steps:
        lines.append("")
        lines.append(label)
        lines.extend(f"{number}. {item}" for number, item in enumerate(items, start=1))
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
    steps: list[tuple[str, tuple[str, ...]]],
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
        entries = "".join(f"<li>{escape(item)}</li>" for item in items)
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
