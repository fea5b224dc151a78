"""Texts and HTML helpers of the local Stripe shim's hosted Checkout and portal pages."""

from __future__ import annotations

import html
from typing import Final

from idsentry.i18n import DEFAULT_LOCALE, Locale, negotiate_locale
from idsentry.money import Money, UnknownCurrencyError, format_money
from infra.local.emulators.base import Request, Response

PAGE_TEXT: Final[dict[Locale, dict[str, str]]] = {
    "zh-CN": {
        "checkout_title": "IDSentry 测试支付",
        "notice": "这是本地测试页面，使用测试卡，不会发生真实扣款。",
        "product": "商品",
        "amount": "金额",
        "pay": "使用测试卡付款",
        "card": "测试卡",
        "subtotal": "小计",
        "discount": "折扣",
        "debit": "借记卡",
        "declined": "扣款会被拒绝",
        "cancel": "取消并返回",
        "paid": "此订单已付款。",
        "expired": "此支付会话已过期。",
        "continue": "继续",
        "payment_failed": "付款失败，订单仍未完成。",
        "portal_title": "IDSentry 订阅管理",
        "no_subscriptions": "没有进行中的订阅。",
        "subscription": "订阅",
        "status": "状态",
        "period_end": "当前周期结束（UTC）",
        "cancel_subscription": "取消订阅",
        "cancel_failed": "取消订阅失败，请稍后重试。",
        "back": "返回",
        "not_found": "找不到该页面。",
        "day": "每天",
        "week": "每周",
        "month": "每月",
        "year": "每年",
    },
    "en": {
        "checkout_title": "IDSentry test checkout",
        "notice": "This is a local test page. It uses a test card, and no real money moves.",
        "product": "Product",
        "amount": "Amount",
        "pay": "Pay with test card",
        "card": "Test card",
        "subtotal": "Subtotal",
        "discount": "Discount",
        "debit": "debit",
        "declined": "charges are declined",
        "cancel": "Cancel and go back",
        "paid": "This checkout is already paid.",
        "expired": "This checkout session has expired.",
        "continue": "Continue",
        "payment_failed": "The payment failed, and the checkout is still open.",
        "portal_title": "IDSentry subscription management",
        "no_subscriptions": "No current subscriptions.",
        "subscription": "Subscription",
        "status": "Status",
        "period_end": "Current period ends (UTC)",
        "cancel_subscription": "Cancel subscription",
        "cancel_failed": "The cancellation failed. Try again later.",
        "back": "Go back",
        "not_found": "This page was not found.",
        "day": "per day",
        "week": "per week",
        "month": "per month",
        "year": "per year",
    },
}


def page_locale(stripe_locale: str | None, accept_language: str | None) -> Locale:
    """Pick the page language from Stripe's `locale`, or from Accept-Language for `auto`."""
    if stripe_locale in (None, "auto"):
        tags = [part.split(";")[0].strip() for part in (accept_language or "").split(",")]
        return negotiate_locale([tag for tag in tags if tag])
    assert stripe_locale is not None
    if stripe_locale == "en" or stripe_locale.startswith("en-"):
        return "en"
    return DEFAULT_LOCALE


def format_amount(amount: int, currency: str, locale: Locale) -> str:
    try:
        return format_money(Money(amount, currency), locale)
    except UnknownCurrencyError:
        return f"{amount} {currency.upper()} (minor units)"


def html_page(locale: Locale, title: str, body: str, status: int = 200) -> Response:
    document = (
        "<!doctype html>\n"
        f'<html lang="{locale}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}"
        "button{font-size:1rem;padding:.6rem 1rem}.notice{color:#555}</style>\n"
        f"</head>\n<body>\n<main>\n<h1>{html.escape(title)}</h1>\n{body}</main>\n</body>\n</html>\n"
    )
    return Response(
        status=status, body=document.encode("utf-8"), content_type="text/html; charset=utf-8"
    )


def redirect(location: str) -> Response:
    return Response(status=303, content_type="text/plain", headers={"Location": location})


def wants_json(request: Request) -> bool:
    return "application/json" in (request.headers.get("Accept") or "")
