"""SMS and e-mail texts per message kind and locale; SMS variables stay short and masked."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Final

from idsentry.i18n import Locale

# SMS text is fixed per kind and locale, as mainland carriers require pre-approved templates.
# The code text stays within one UCS-2 segment (70 characters) with room for the carrier's
# signature (【身份哨兵】, 6 characters) that Twilio adds for +86 numbers.
SMS_TEMPLATES: Final[dict[str, dict[Locale, str]]] = {
    "otp": {
        "zh-CN": "身份哨兵验证码：{code}，10分钟内有效。请勿告诉他人，工作人员不会索要。",
        "en": "IDSentry code: {code} (10 min). Never share it; we never ask.",
    },
    # Payment texts carry no link: a link in a payment SMS is what phishing looks like, so the
    # subscriber is sent to the e-mail, which links to the portal.
    "payment_failed": {
        "zh-CN": "身份哨兵：订阅续费 {amount} 扣款失败。请在 {until} 前按邮件提示更新付款方式，以免监控暂停。",
        "en": "IDSentry: your {amount} renewal payment failed. Update your card by {until} (see our e-mail) to keep monitoring on.",
    },
    "payment_reminder": {
        "zh-CN": "身份哨兵提醒：订阅续费 {amount} 仍未支付，监控将于 {until} 暂停。请按邮件提示更新付款方式。",
        "en": "IDSentry reminder: your {amount} renewal is still unpaid; monitoring pauses on {until}. See our e-mail to update your card.",
    },
}


@dataclass(frozen=True)
class Email:
    """A rendered e-mail: subject, plain text and HTML."""

    subject: str
    text: str
    html: str


_EMAIL_TEXT: Final[dict[str, dict[Locale, tuple[str, str]]]] = {
    "email_confirmation": {
        "zh-CN": (
            "请确认您的邮箱 - 身份哨兵",
            "您好，\n\n请点击下面的链接确认邮箱 {masked_email}，确认后我们会在泄露检查中使用该邮箱：\n\n{link}\n\n"
            "链接 72 小时内有效。如果不是您本人注册，请忽略本邮件。\n\n身份哨兵",
        ),
        "en": (
            "Confirm your e-mail address - IDSentry",
            "Hello,\n\nClick the link below to confirm {masked_email}. Once confirmed, we include it in breach checks:\n\n{link}\n\n"
            "The link is valid for 72 hours. If you did not sign up, ignore this e-mail.\n\nIDSentry",
        ),
    },
    "payment_failed": {
        "zh-CN": (
            "订阅续费扣款失败 - 身份哨兵",
            "您好，\n\n我们未能从您的银行卡扣取身份哨兵订阅续费 {amount}（第 {attempt} 次尝试）。"
            "常见原因是卡片过期、余额不足或银行拒绝了境外交易。\n\n"
            "请在 {until}（北京时间）前通过下面的链接更新付款方式，Stripe 会自动重新扣款：\n\n{link}\n\n"
            "在此之前，我们会照常为您监控泄露；之后监控将暂停，但您的数据会保留。链接 7 天内有效。\n\n身份哨兵",
        ),
        "en": (
            "Your renewal payment failed - IDSentry",
            "Hello,\n\nWe could not charge your card {amount} for your IDSentry renewal (attempt {attempt}). "
            "Common reasons are an expired card, insufficient funds, or a bank declining a foreign transaction.\n\n"
            "Update your payment method by {until} (China Standard Time) with the link below, and Stripe will retry the charge:\n\n{link}\n\n"
            "Until then we keep monitoring as usual; after that monitoring pauses, and your data is kept. The link is valid for 7 days.\n\nIDSentry",
        ),
    },
    "payment_reminder": {
        "zh-CN": (
            "提醒：订阅续费仍未支付 - 身份哨兵",
            "您好，\n\n您的身份哨兵订阅续费 {amount} 仍未支付。如果在 {until}（北京时间）前仍未付款，泄露监控将暂停，"
            "但您的数据会保留，付款后立即恢复。\n\n更新付款方式：\n\n{link}\n\n链接 7 天内有效。\n\n身份哨兵",
        ),
        "en": (
            "Reminder: your renewal is still unpaid - IDSentry",
            "Hello,\n\nYour IDSentry renewal of {amount} is still unpaid. If it is not paid by {until} (China Standard Time), "
            "breach monitoring pauses; your data is kept and monitoring resumes as soon as you pay.\n\n"
            "Update your payment method:\n\n{link}\n\nThe link is valid for 7 days.\n\nIDSentry",
        ),
    },
    # Twilio rejected the message with 21211 or 21614: the number cannot receive SMS, so codes and urgent
    # alerts would never arrive. The subscriber is asked for a working number.
    "mobile_invalid": {
        "zh-CN": (
            "您的手机号无法接收短信 - 身份哨兵",
            "您好，\n\n我们给手机号 {masked_mobile} 发送的短信被运营商退回：该号码无效或不是手机号码。"
            "在您更新号码之前，我们只会通过邮件向您发送泄露警报和账户通知。\n\n"
            "请回复本邮件告诉我们一个能接收短信的手机号，我们会向新号码发送验证码确认。\n\n身份哨兵",
        ),
        "en": (
            "Your mobile number cannot receive SMS - IDSentry",
            "Hello,\n\nThe carrier returned our SMS to {masked_mobile}: the number is not valid or is not a mobile number. "
            "Until you update it, we send breach alerts and account notices by e-mail only.\n\n"
            "Reply to this e-mail with a number that can receive SMS, and we will confirm it with a code.\n\nIDSentry",
        ),
    },
    # A report was rendered. The link opens the account page, which signs the subscriber in and
    # hands out a short-lived download URL, because a presigned URL would outlive its credentials.
    "report_ready": {
        "zh-CN": (
            "您的{title}已生成 - 身份哨兵",
            "您好，\n\n您的{title}（{month}）已生成，包括这段时间发现的泄露、风险等级及原因、警报发送情况，"
            "以及建议接下来做的检查。报告有网页版和 PDF 版，PDF 可以保存或交给银行、运营商。\n\n"
            "请在账户页面用手机验证码登录后查看和下载：\n\n{link}\n\n"
            "为保护您的信息，下载链接只在登录后生成，几分钟内有效。"
            "如需涵盖您开通服务以来全部记录的深度安全报告，可以在同一页面的“安全报告”栏目中按次购买。\n\n身份哨兵",
        ),
        "en": (
            "Your {title} is ready - IDSentry",
            "Hello,\n\nYour {title} ({month}) is ready. It covers the exposures found, your risk level and "
            "why, how your alerts were delivered, and the checks we recommend next. It comes as a web page "
            "and as a PDF you can keep or give to a bank or carrier.\n\n"
            "Sign in on your account page with a code by SMS to read and download it:\n\n{link}\n\n"
            "To protect your data, download links are made only after you sign in and work for a few "
            "minutes. For an in-depth report that covers everything since you signed up, buy one in "
            "the Security reports section of the same page.\n\nIDSentry",
        ),
    },
    # A bought in-depth report was rendered. It links to the account page for the same reason.
    "report_ready_deep": {
        "zh-CN": (
            "您购买的深度安全报告已生成 - 身份哨兵",
            "您好，\n\n感谢您的购买。您于 {purchased} 购买的深度安全报告已生成。与每月的安全报告不同，"
            "它涵盖您自 {since} 开通服务以来的全部记录：每项受监控身份信息出现在哪些泄露事件中、"
            "一同泄露了哪些数据，每起泄露事件的详情和核实情况，每条记录已完成和待完成的步骤及日期，"
            "全部警报的发送记录，以及按紧急程度排列的行动计划。报告有网页版和 PDF 版。\n\n"
            "请在账户页面用手机验证码登录后查看和下载：\n\n{link}\n\n"
            "为保护您的信息，下载链接只在登录后生成，几分钟内有效。\n\n身份哨兵",
        ),
        "en": (
            "The in-depth security report you bought is ready - IDSentry",
            "Hello,\n\nThank you for your purchase. The in-depth security report you bought on "
            "{purchased} is ready. Unlike the monthly report, it covers everything since you signed "
            "up on {since}: the breaches each watched identifier appeared in and what else leaked "
            "with it, each breach's details and whether it is verified, the steps done and still "
            "open for each exposure with their dates, every alert delivery, and an action plan with "
            "the most urgent steps first. It comes as a web page and as a PDF.\n\n"
            "Sign in on your account page with a code by SMS to read and download it:\n\n{link}\n\n"
            "To protect your data, download links are made only after you sign in and work for a few "
            "minutes.\n\nIDSentry",
        ),
    },
    # The number was not proven again within the reconfirmation period. The link opens the account
    # page, where signing in sends a code to the number, and an accepted code resumes SMS.
    "phone_reconfirm": {
        "zh-CN": (
            "请确认您的手机号是否仍在使用 - 身份哨兵",
            "您好，\n\n手机号 {masked_mobile} 已有 {months} 个月没有确认过。运营商会把停用的号码重新分配给他人，"
            "为避免把泄露警报发给陌生人，我们已暂停向该号码发送短信，警报和通知会照常通过邮件发送。\n\n"
            "如果号码仍归您使用：请打开下面的账户页面，用该手机号登录。登录时收到的短信验证码即可确认号码，并恢复短信提醒。\n\n"
            "{link}\n\n"
            "如果您已更换号码：请回复本邮件告诉我们新号码，我们会向新号码发送验证码确认。\n\n身份哨兵",
        ),
        "en": (
            "Is this still your mobile number? - IDSentry",
            "Hello,\n\nYour mobile number {masked_mobile} has not been confirmed for {months} months. Carriers give numbers "
            "that were given up to new owners, so to keep breach alerts away from strangers we have paused SMS to this "
            "number. Alerts and notices still arrive by e-mail.\n\n"
            "If the number is still yours, open your account page below and sign in with this number: the sign-in code "
            "we text you confirms the number and turns SMS back on.\n\n"
            "{link}\n\n"
            "If you have changed your number, reply to this e-mail with the new one, and we will confirm it with a "
            "code.\n\nIDSentry",
        ),
    },
    "identifier_reassigned": {
        "zh-CN": (
            "您账户中的身份证号已移除 - 身份哨兵",
            "您好，\n\n身份证号 {masked_identifier} 的持有人已通过实名核验（姓名、身份证号、手机号三项一致）在身份哨兵注册，"
            "因此我们已将该身份证号从您的账户中移除，不再为您监控它。\n\n"
            "如果这个身份证号确实属于您，请回复本邮件联系我们，我们会协助核实。\n\n身份哨兵",
        ),
        "en": (
            "An ID number was removed from your account - IDSentry",
            "Hello,\n\nThe holder of ID number {masked_identifier} passed identity verification (name, ID number and mobile "
            "number match) and signed up with IDSentry, so we removed that ID number from your account and no longer "
            "watch it for you.\n\nIf this ID number is yours, reply to this e-mail and we will help you check.\n\nIDSentry",
        ),
    },
}


def render_sms(kind: str, locale: Locale, **variables: str) -> str:
    """Return the SMS text of `kind` in `locale`."""
    return SMS_TEMPLATES[kind][locale].format(**variables)


def render_email(kind: str, locale: Locale, **variables: str) -> Email:
    """Return the e-mail of `kind` in `locale`, with an HTML part whose variables are escaped."""
    subject_text, text = _EMAIL_TEXT[kind][locale]
    subject = subject_text.format(**variables)
    body = text.format(**variables)
    escaped = text.format(**{name: html.escape(value) for name, value in variables.items()})
    paragraphs = "".join(
        f"<p>{part.replace(chr(10), '<br>')}</p>" for part in escaped.split("\n\n")
    )
    link = variables.get("link")
    if link:
        safe = html.escape(link)
        paragraphs = paragraphs.replace(safe, f'<a href="{safe}">{safe}</a>')
    page = (
        f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head><body>{paragraphs}</body></html>"
    )
    return Email(subject=subject, text=body, html=page)
