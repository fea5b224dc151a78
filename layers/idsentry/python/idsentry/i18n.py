"""Subscriber-facing text in 简体中文 (the default) and English, chosen by locale."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

Locale = Literal["zh-CN", "en"]
DEFAULT_LOCALE: Final[Locale] = "zh-CN"
SUPPORTED_LOCALES: Final[tuple[Locale, ...]] = ("zh-CN", "en")

# Message catalogue: code → text per locale. Parameters use str.format names; no text may
# ever interpolate a raw identifier.
MESSAGES: Final[dict[str, dict[Locale, str]]] = {
    # Request validation
    "request.invalid": {
        "zh-CN": "请求中有字段无效，请按提示修改后重试。",
        "en": "Some fields in the request are invalid. Correct them and try again.",
    },
    "request.invalid_json": {
        "zh-CN": "请求正文不是有效的 JSON 对象。",
        "en": "The request body is not a valid JSON object.",
    },
    "field.missing": {
        "zh-CN": "缺少必填字段。",
        "en": "This field is required.",
    },
    "field.invalid_type": {
        "zh-CN": "字段类型不正确。",
        "en": "This field has the wrong type.",
    },
    "field.too_long": {
        "zh-CN": "字段过长，最多 {max_length} 个字符。",
        "en": "This field is too long: at most {max_length} characters.",
    },
    "field.unknown": {
        "zh-CN": "不支持该字段。",
        "en": "This field is not accepted.",
    },
    "name.invalid": {
        "zh-CN": "请填写与身份证一致的姓名。",
        "en": "Enter your name exactly as it appears on your ID card.",
    },
    "locale.unsupported": {
        "zh-CN": "语言只能是 zh-CN 或 en。",
        "en": "The locale must be zh-CN or en.",
    },
    "timezone.unknown": {
        "zh-CN": "时区无法识别，请使用 IANA 时区名称，例如 Asia/Shanghai。",
        "en": "The time zone is not recognised: use an IANA time zone name such as Asia/Shanghai.",
    },
    "plan.unknown": {
        "zh-CN": "套餐无效，请选择 monthly（包月）或 annual（包年）。",
        "en": "Unknown plan. Choose monthly or annual.",
    },
    "referral_code.invalid": {
        "zh-CN": "邀请码格式无效。",
        "en": "The referral code is not in a valid format.",
    },
    "referral_code.unknown": {
        "zh-CN": "邀请码不存在或已失效。",
        "en": "This referral code does not exist or is no longer valid.",
    },
    "referral_code.self": {
        "zh-CN": "不能使用自己的邀请码。",
        "en": "You cannot use your own referral code.",
    },
    "code.format": {
        "zh-CN": "验证码应为 6 位数字。",
        "en": "The code must be 6 digits.",
    },
    # Consents
    "consent.terms_required": {
        "zh-CN": "请阅读并同意服务条款。",
        "en": "Please read and accept the terms of service.",
    },
    "consent.sensitive_required": {
        "zh-CN": "处理身份证号等敏感个人信息需要您的单独同意。",
        "en": "We need your separate consent to process sensitive personal information such as your ID number.",
    },
    "consent.cross_border_required": {
        "zh-CN": "本服务会向境外处理者提供个人信息，需要您的单独同意。",
        "en": "This service provides personal information to processors outside mainland China and needs your separate consent.",
    },
    "consent.version_outdated": {
        "zh-CN": "同意的文本版本已更新（当前版本 {current_version}），请重新阅读并同意。",
        "en": "The consent text has changed (current version {current_version}). Please read and accept it again.",
    },
    # Identifiers
    "id_number.invalid_length": {
        "zh-CN": "身份证号应为 18 位。",
        "en": "The ID number must have 18 characters.",
    },
    "id_number.legacy_15_digit": {
        "zh-CN": "这是 15 位旧版身份证号，请填写 18 位身份证号。",
        "en": "This is a legacy 15-digit ID number. Enter your 18-character ID number.",
    },
    "id_number.invalid_characters": {
        "zh-CN": "身份证号前 17 位只能是数字，最后一位是数字或 X。",
        "en": "The first 17 characters of the ID number must be digits and the last a digit or X.",
    },
    "id_number.invalid_checksum": {
        "zh-CN": "身份证号校验位不正确，请检查是否填错。",
        "en": "The ID number's check digit is wrong. Check it for typos.",
    },
    "id_number.invalid_birth_date": {
        "zh-CN": "身份证号中的出生日期无效。",
        "en": "The date of birth in the ID number is not a valid date.",
    },
    "id_number.birth_date_in_future": {
        "zh-CN": "身份证号中的出生日期晚于今天。",
        "en": "The date of birth in the ID number is in the future.",
    },
    "id_number.unknown_region": {
        "zh-CN": "身份证号的地区代码无效。",
        "en": "The ID number's region code is not valid.",
    },
    "id_number.under_minimum_age": {
        "zh-CN": "未满 {minimum_age} 周岁不能自行注册，请由父母或其他监护人代为办理。",
        "en": "People under {minimum_age} cannot sign up on their own. A parent or guardian must sign up for them.",
    },
    "mobile.invalid": {
        "zh-CN": "手机号无效。",
        "en": "The mobile number is not valid.",
    },
    "mobile.not_mobile": {
        "zh-CN": "该号码不是手机号，请填写能接收短信的手机号。",
        "en": "This is not a mobile number. Enter a number that can receive SMS.",
    },
    "mobile.country_not_allowed": {
        "zh-CN": "暂不支持该国家或地区（{region}）的手机号。",
        "en": "Mobile numbers from this country or region ({region}) are not supported yet.",
    },
    "email.invalid": {
        "zh-CN": "电子邮箱地址无效。",
        "en": "The e-mail address is not valid.",
    },
    "email.undeliverable_local_part": {
        "zh-CN": "无法向该邮箱地址发送邮件：@ 前面只能使用英文字母、数字和常用符号。",
        "en": "We cannot deliver to this address: the part before @ may only use ASCII letters, digits and common symbols.",
    },
    "email.invalid_domain": {
        "zh-CN": "电子邮箱的域名无效。",
        "en": "The e-mail address's domain is not valid.",
    },
    "bank_card.invalid_length": {
        "zh-CN": "银行卡号应为 12 到 19 位数字。",
        "en": "A bank card number has 12 to 19 digits.",
    },
    "bank_card.invalid_checksum": {
        "zh-CN": "银行卡号校验不通过，请检查是否填错。",
        "en": "The bank card number fails its check. Check it for typos.",
    },
    # Abuse limits and availability
    "limit.ip": {
        "zh-CN": "来自当前网络的请求过多，请 {retry_after} 秒后再试。",
        "en": "Too many requests from your network. Try again in {retry_after} seconds.",
    },
    "limit.resend_interval": {
        "zh-CN": "验证码发送过于频繁，请 {retry_after} 秒后再试。",
        "en": "Codes are being requested too often. Try again in {retry_after} seconds.",
    },
    "limit.daily_sms_cap": {
        "zh-CN": "该手机号今天收到的短信已达上限，请 {retry_after} 秒后再试。",
        "en": "This number has received the maximum number of SMS for today. Try again in {retry_after} seconds.",
    },
    "limit.otp_budget_exhausted": {
        "zh-CN": "验证码服务暂时繁忙，请稍后再试。",
        "en": "The code service is busy. Please try again later.",
    },
    "human_check.failed": {
        "zh-CN": "人机验证未通过，请重试。",
        "en": "The human check failed. Please try again.",
    },
    # Signup and verification
    "signup.code_sent": {
        "zh-CN": "验证码正在发送到您的手机，通常几秒内送达，10 分钟内有效。",
        "en": "We are sending a code to your mobile. It usually arrives within seconds and is valid for 10 minutes.",
    },
    "signup.not_found": {
        "zh-CN": "注册申请不存在或已过期，请重新注册。",
        "en": "This signup does not exist or has expired. Please sign up again.",
    },
    "code.incorrect": {
        "zh-CN": "验证码不正确，还可以再试 {attempts_left} 次。",
        "en": "The code is incorrect. You have {attempts_left} attempts left.",
    },
    "code.expired": {
        "zh-CN": "验证码已过期，请重新获取。",
        "en": "The code has expired. Request a new one.",
    },
    "code.locked": {
        "zh-CN": "验证码错误次数过多，已失效，请重新获取。",
        "en": "Too many wrong attempts: this code no longer works. Request a new one.",
    },
    "code.used": {
        "zh-CN": "该验证码已使用过，请重新获取。",
        "en": "This code was already used. Request a new one.",
    },
    "bank_card.invalid_characters": {
        "zh-CN": "银行卡号只能包含数字。",
        "en": "A bank card number may only contain digits.",
    },
    "code.not_sent": {
        "zh-CN": "验证码尚未发出，请稍候片刻再试。",
        "en": "The code has not been sent yet. Wait a moment and try again.",
    },
    "identity.verification_failed": {
        "zh-CN": "实名核验未通过：姓名、身份证号和手机号需属于同一人。",
        "en": "Identity verification failed: the name, ID number and mobile number must belong to the same person.",
    },
    "identity.provider_unavailable": {
        "zh-CN": "实名核验服务暂时不可用，请稍后重试，您的验证码仍然有效。",
        "en": "Identity verification is unavailable right now. Try again shortly; your code is still valid.",
    },
    "signup.retry": {
        "zh-CN": "系统繁忙，未做任何更改，请重试。",
        "en": "The service is busy and nothing was changed. Please try again.",
    },
    "signup.verified": {
        "zh-CN": "手机号和身份已验证，账户已创建。",
        "en": "Your mobile number and identity are verified and your account is created.",
    },
    "payment.not_available": {
        "zh-CN": "在线支付尚未开放，开放后我们会通知您完成订阅。",
        "en": "Online payment is not available yet. We will tell you when you can complete your subscription.",
    },
    "payment.retry": {
        "zh-CN": "账户已创建，但支付页面暂时无法打开，请用同一个验证码重试。",
        "en": "Your account is created, but the payment page cannot be opened right now. Retry with the same code.",
    },
    "payment.ready": {
        "zh-CN": "请打开支付链接完成订阅，付款后即开始监控。",
        "en": "Open the payment link to complete your subscription; monitoring starts once you have paid.",
    },
    "checkout.success": {
        "zh-CN": "支付成功，正在为您开通监控，稍后会收到确认。",
        "en": "Payment received. We are starting your monitoring and will confirm shortly.",
    },
    "checkout.cancel": {
        "zh-CN": "支付已取消。您可以随时通过账户中的支付链接重新订阅。",
        "en": "Payment cancelled. You can subscribe at any time from the payment link in your account.",
    },
    "email.confirmation_sent": {
        "zh-CN": "确认邮件已发送，请点击邮件中的链接确认邮箱。",
        "en": "We sent a confirmation e-mail. Click the link in it to confirm your address.",
    },
    "email.confirmed": {
        "zh-CN": "邮箱已确认，之后的泄露检查会包含该邮箱。",
        "en": "Your e-mail address is confirmed and is now included in breach checks.",
    },
    "billing.link_invalid": {
        "zh-CN": "账单链接无效或已过期。请使用我们最近一封邮件中的链接。",
        "en": "This billing link is invalid or has expired. Use the link in our latest e-mail.",
    },
    "checkout.return": {
        "zh-CN": "已返回身份哨兵。您在账单页面所做的更改会在几分钟内生效。",
        "en": "You are back at IDSentry. Changes you made on the billing page take effect within minutes.",
    },
    "email.link_invalid": {
        "zh-CN": "确认链接无效或已过期，请登录后重新发送确认邮件。",
        "en": "This confirmation link is invalid or has expired. Sign in to send a new one.",
    },
    # Preference links (one-click unsubscribe and SMS opt-out)
    "preferences.title": {
        "zh-CN": "消息订阅设置",
        "en": "Message settings",
    },
    "preferences.list.email_alerts": {
        "zh-CN": "泄露警报邮件",
        "en": "breach alert e-mails",
    },
    "preferences.list.email_reports": {
        "zh-CN": "每月安全报告邮件",
        "en": "monthly security report e-mails",
    },
    "preferences.list.sms_alerts": {
        "zh-CN": "泄露警报短信",
        "en": "breach alert SMS",
    },
    "preferences.confirm_stop": {
        "zh-CN": "点击下方按钮后，我们将不再向您发送{list}。您的账户、监控服务和其他消息不受影响。",
        "en": "Press the button below and we will stop sending you {list}. Your account, its monitoring and your other messages stay as they are.",
    },
    "preferences.button_stop": {
        "zh-CN": "停止接收",
        "en": "Stop these messages",
    },
    "preferences.stopped": {
        "zh-CN": "我们已不再向您发送{list}。您的账户、监控服务和其他消息不受影响。",
        "en": "We no longer send you {list}. Your account, its monitoring and your other messages stay as they are.",
    },
    "preferences.currently_stopped": {
        "zh-CN": "您目前不接收{list}。如需恢复，请点击下方按钮。",
        "en": "You do not receive {list} at the moment. Press the button below to receive them again.",
    },
    "preferences.button_resubscribe": {
        "zh-CN": "重新接收",
        "en": "Receive them again",
    },
    "preferences.resubscribed": {
        "zh-CN": "我们将重新向您发送{list}。",
        "en": "We will send you {list} again.",
    },
    "preferences.link_invalid": {
        "zh-CN": "链接无效，未做任何更改。请使用我们最近一封邮件中的链接，或登录后在账户设置中修改。",
        "en": "This link is invalid and nothing was changed. Use the link in our latest e-mail, or change the setting in your account.",
    },
    "preferences.link_expired": {
        "zh-CN": "链接已过期（邮件发出 {days} 天后失效），未做任何更改。请使用我们最近一封邮件中的链接，或登录后在账户设置中修改。",
        "en": "This link has expired (links stop working {days} days after the e-mail was sent) and nothing was changed. Use the link in our latest e-mail, or change the setting in your account.",
    },
    "preferences.account_closed": {
        "zh-CN": "该账户已注销，我们不会再向它发送任何消息。",
        "en": "This account has been closed, and we send it no more messages.",
    },
    "preferences.choice_missing": {
        "zh-CN": "请求正文应为 List-Unsubscribe=One-Click 或 resubscribe=yes（表单格式）。",
        "en": "The request body must be the form field List-Unsubscribe=One-Click or resubscribe=yes.",
    },
    # Sign-in and the account
    "sign_in.code_sent": {
        "zh-CN": "如果该手机号已注册身份哨兵，验证码将发送到这个号码，10 分钟内有效。",
        "en": "If this number belongs to an IDSentry account, we are sending a code to it. The code is valid for 10 minutes.",
    },
    "sign_in.not_found": {
        "zh-CN": "登录请求不存在或已过期，请重新获取验证码。",
        "en": "This sign-in does not exist or has expired. Request a new code.",
    },
    "sign_in.retry": {
        "zh-CN": "系统繁忙，未做任何更改，请重试。",
        "en": "The service is busy and nothing was changed. Please try again.",
    },
    "account.unauthorized": {
        "zh-CN": "请先登录。",
        "en": "Sign in first.",
    },
    "account.not_found": {
        "zh-CN": "该账户不存在或已注销。",
        "en": "This account does not exist or has been closed.",
    },
    "preferences.nothing_to_change": {
        "zh-CN": "请至少填写一项要修改的设置：sms_alerts、email_lists、timezone 或 locale。",
        "en": "Name at least one setting to change: sms_alerts, email_lists, timezone or locale.",
    },
    "preferences.saved": {
        "zh-CN": "设置已保存。",
        "en": "Your settings are saved.",
    },
    # Export, deletion and consent withdrawal
    "export.ready": {
        "zh-CN": "您的个人信息副本已生成。下载链接 15 分钟内有效，文件在 24 小时后删除。",
        "en": "Your copy of your data is ready. The download links work for 15 minutes, and the files are deleted after 24 hours.",
    },
    "export.not_found": {
        "zh-CN": "该导出不存在或已超过 24 小时被删除，请重新导出。",
        "en": "This export does not exist or was deleted after 24 hours. Create a new export.",
    },
    "account.deletion_requested": {
        "zh-CN": "我们已开始注销您的账户：订阅将被取消，您的个人信息将被删除。依法保留的付款记录不再与您的身份关联。",
        "en": "We have started deleting your account: your subscription is cancelled and your personal data is deleted. Payment records that the law requires us to keep are no longer linked to you.",
    },
    "consent.sensitive_withdrawn": {
        "zh-CN": "您已撤回对敏感个人信息的同意。我们已停止监测并删除您的身份证号和银行卡号，手机号和邮箱仍在监测中。",
        "en": "You have withdrawn your consent to sensitive personal information. We stopped watching and deleted your ID number and bank card numbers; your mobile number and e-mail address are still watched.",
    },
    # China playbooks and quarterly checks
    "alert.not_found": {
        "zh-CN": "您的账户中没有这条警报。",
        "en": "Your account has no such alert.",
    },
    "playbook.step_not_found": {
        "zh-CN": "这条警报的处理清单中没有这一步。",
        "en": "This alert's checklist has no such step.",
    },
    "check.unknown": {
        "zh-CN": "查询项目无效，请使用 yizhengtongcha（一证通查）、bank_cards（一键查卡）或 credit_report（信用报告）。",
        "en": "Unknown check. Use yizhengtongcha, bank_cards or credit_report.",
    },
    "check.count_unknown": {
        "zh-CN": "这项查询没有这个数量，请按 GET /v1/account/checks 列出的数量填写。",
        "en": "This check has no such count. Use the counts that GET /v1/account/checks lists.",
    },
    "check.count_invalid": {
        "zh-CN": "数量应为 0 到 10000 之间的整数。",
        "en": "The count must be a whole number from 0 to 10000.",
    },
    "check.counts_missing": {
        "zh-CN": "请至少填写一个数量。",
        "en": "Enter at least one count.",
    },
    "check.recorded": {
        "zh-CN": "查询结果已记录。",
        "en": "Your check result is recorded.",
    },
    "report.requested": {
        "zh-CN": "正在生成本月至今的安全报告，完成后会发邮件通知您。同一天内重复请求会得到同一份报告。",
        "en": "Your security report for this month so far is being prepared; we will e-mail you when it is ready. Asking again the same day returns the same report.",
    },
    "report.ready_today": {
        "zh-CN": "本月至今的安全报告今天已经生成，请在账户页面的报告列表中查看和下载。同一天内重复请求会得到同一份报告。",
        "en": "Your security report for this month so far was already made today. Open or download it from the list of reports on your account page. Asking again the same day returns the same report.",
    },
    "report.not_found": {
        "zh-CN": "您的账户中没有这份报告。",
        "en": "Your account has no such report.",
    },
    "report.format_invalid": {
        "zh-CN": "格式必须是 html 或 pdf。",
        "en": "The format must be html or pdf.",
    },
    "dossier.created": {
        "zh-CN": "个人信息泄露情况说明材料已生成。下载链接几分钟内有效，过期后请重新生成。",
        "en": "Your incident dossier is ready. The download link works for a few minutes; create a new one after that.",
    },
    "dossier.audience_invalid": {
        "zh-CN": "用途无效，请选择 police（向公安机关报案）、bank（交给银行）、carrier（交给运营商）或 general（一般用途）。",
        "en": "Unknown audience. Choose police, bank, carrier or general.",
    },
    "dossier.breach_unknown": {
        "zh-CN": "只能选择您账户中已确认的泄露事件。",
        "en": "Choose only breaches that are confirmed exposures of your account.",
    },
    "deep_report.checkout": {
        "zh-CN": "请在付款页面完成购买。付款成功后，我们会生成您的深度安全报告并发邮件通知您。付款链接 7 天内有效。",
        "en": "Complete your purchase on the payment page. Once it is paid, we make your in-depth security report and e-mail you. The payment link works for 7 days.",
    },
    "deep_report.not_offered": {
        "zh-CN": "本服务目前不提供深度安全报告。",
        "en": "This service does not offer the in-depth security report at the moment.",
    },
    "deep_report.needs_subscription": {
        "zh-CN": "请先完成订阅付款，再购买深度安全报告。",
        "en": "Pay for your subscription first, then buy the in-depth security report.",
    },
    # Idempotency
    "idempotency.key_reused": {
        "zh-CN": "该 Idempotency-Key 已用于内容不同的请求。",
        "en": "This Idempotency-Key was already used with a different request.",
    },
    "idempotency.in_progress": {
        "zh-CN": "相同的请求正在处理中，请稍后再试。",
        "en": "The same request is still being processed. Try again shortly.",
    },
    "idempotency.key_invalid": {
        "zh-CN": "Idempotency-Key 应为 1 到 255 个可见 ASCII 字符。",
        "en": "The Idempotency-Key must be 1 to 255 visible ASCII characters.",
    },
    "route.not_found": {
        "zh-CN": "请求的地址不存在。",
        "en": "Not found.",
    },
    "internal.error": {
        "zh-CN": "服务出错了，请稍后重试。",
        "en": "Something went wrong on our side. Please try again later.",
    },
}


def negotiate_locale(preferred: Iterable[str], explicit: str | None = None) -> Locale:
    """Pick the locale from an explicit choice, else the first supported language tag, else zh-CN."""
    if explicit in SUPPORTED_LOCALES:
        return "en" if explicit == "en" else "zh-CN"

    for tag in preferred:
        lowered = tag.lower()
        if lowered.startswith("zh"):
            return "zh-CN"
        if lowered == "en" or lowered.startswith("en-"):
            return "en"
    return DEFAULT_LOCALE


def message(code: str, locale: Locale, params: dict[str, str] | None = None) -> str:
    """Return the catalogue text for `code` in `locale`, with parameters filled in."""
    entry = MESSAGES.get(code)
    if entry is None:
        raise KeyError(f"no message for code {code!r}")
    text = entry[locale]
    return text.format(**params) if params else text
