"""The finance reconciliation's text in 简体中文 (the default) and English."""

from __future__ import annotations

from typing import Final

from idsentry.i18n import Locale

TITLES: Final[dict[Locale, dict[str, str]]] = {
    "zh-CN": {
        "title": "Stripe 对账报告",
        "period": "对账期间（北京时间）",
        "generated_at": "生成时间（北京时间）",
        "counts": "各类结果数量",
        "chart": "各类结果数量图",
        "totals": "金额合计",
        "currency": "币种",
        "stripe": "Stripe",
        "ledger": "账本",
        "payments": "收款",
        "refunds": "退款",
        "disputes": "争议",
        "payouts": "提现到银行",
        "attention": "需要处理的项目",
        "none": "没有需要处理的项目：所有项目都已对上。",
        "more": "另有 {count} 项未在此列出，请查看 CSV 文件。",
        "repairs": "修复记录",
        "no_repairs": "本次未修复任何项目。",
        "event": "Stripe 事件",
        "outcome": "结果",
        "rows": "项目数",
        "amounts_note": "金额以主币单位列出（元、美元等；日元等零小数位币种无小数），负数为退款或争议扣款。",
    },
    "en": {
        "title": "Stripe reconciliation report",
        "period": "Period (Asia/Shanghai)",
        "generated_at": "Generated at (Asia/Shanghai)",
        "counts": "Items per class",
        "chart": "Chart of items per class",
        "totals": "Totals",
        "currency": "Currency",
        "stripe": "Stripe",
        "ledger": "Ledger",
        "payments": "Payments",
        "refunds": "Refunds",
        "disputes": "Disputes",
        "payouts": "Payouts",
        "attention": "Items to look at",
        "none": "Nothing to look at: every item matched.",
        "more": "{count} more items are not listed here; see the CSV file.",
        "repairs": "Repairs",
        "no_repairs": "Nothing was repaired in this run.",
        "event": "Stripe event",
        "outcome": "Outcome",
        "rows": "Items",
        "amounts_note": "Amounts are in major units (yuan, dollars; none for zero-decimal "
        "currencies such as yen). A negative amount is a refund or a dispute withdrawal.",
    },
}

# CSV and HTML column headers, in CSV column order.
COLUMNS: Final[dict[Locale, tuple[str, ...]]] = {
    "zh-CN": (
        "结果",
        "对象类型",
        "Stripe 编号",
        "时间（北京时间）",
        "币种",
        "Stripe 金额",
        "账本金额",
        "结算币种",
        "Stripe 结算金额",
        "账本结算金额",
        "余额交易合计",
        "Stripe 状态",
        "本地记录",
        "订阅用户编号",
        "说明",
    ),
    "en": (
        "Result",
        "Object",
        "Stripe id",
        "Time (Asia/Shanghai)",
        "Currency",
        "Stripe amount",
        "Ledger amount",
        "Settlement currency",
        "Stripe settlement amount",
        "Ledger settlement amount",
        "Balance transactions total",
        "Stripe status",
        "Recorded here",
        "Subscriber id",
        "Explanation",
    ),
}

CLASSES: Final[dict[Locale, dict[str, str]]] = {
    "zh-CN": {
        "matched": "已对上",
        "missing_in_ledger": "账本缺失",
        "missing_in_stripe": "Stripe 缺失",
        "amount_mismatch": "金额或币种不符",
        "status_mismatch": "状态不符",
        "payout_mismatch": "提现合计不符",
    },
    "en": {
        "matched": "Matched",
        "missing_in_ledger": "Missing in the ledger",
        "missing_in_stripe": "Missing in Stripe",
        "amount_mismatch": "Amount or currency mismatch",
        "status_mismatch": "Status mismatch",
        "payout_mismatch": "Payout total mismatch",
    },
}

KINDS: Final[dict[Locale, dict[str, str]]] = {
    "zh-CN": {
        "invoice": "账单",
        "charge": "扣款",
        "refund": "退款",
        "dispute": "争议",
        "balance_transaction": "余额交易",
        "payout": "提现",
        "subscription": "订阅",
        "checkout_session": "结账会话",
    },
    "en": {
        "invoice": "Invoice",
        "charge": "Charge",
        "refund": "Refund",
        "dispute": "Dispute",
        "balance_transaction": "Balance transaction",
        "payout": "Payout",
        "subscription": "Subscription",
        "checkout_session": "Checkout Session",
    },
}

REASONS: Final[dict[Locale, dict[str, str]]] = {
    "zh-CN": {
        "no_ledger_entry": "Stripe 有这笔资金变动，账本没有记录，可能丢失了 Webhook 事件。",
        "movement_missing": "争议的某笔资金变动在账本中没有记录。",
        "not_in_stripe": "账本有记录，但 Stripe 找不到这个对象。",
        "amount_differs": "金额不一致。",
        "currency_differs": "币种不一致。",
        "settlement_amount_differs": "结算金额与余额交易不一致。",
        "settlement_currency_differs": "结算币种与余额交易不一致。",
        "settlement_missing": "账本缺少结算金额。",
        "fee_differs": "手续费与余额交易不一致。",
        "conversion_differs": "余额交易金额与按汇率换算的扣款金额不一致。",
        "unknown_currency": "币种不在 Stripe 币种表中，无法换算。",
        "not_paid_in_stripe": "账本记录已付款，但 Stripe 中未付款。",
        "charge_not_succeeded": "账本记录了这笔扣款，但 Stripe 中扣款未成功。",
        "refund_not_succeeded": "账本记录了这笔退款，但 Stripe 中退款未成功。",
        "payout_total_differs": "提现金额与其余额交易净额合计不一致。",
        "payout_currency_differs": "提现包含其他币种的余额交易。",
        "entitled_here_not_in_stripe": "本服务仍在监控该用户，但 Stripe 中的订阅不再有效（已取消或未付款）。",
        "entitled_in_stripe_not_here": "Stripe 中订阅有效，但本服务没有监控该用户。",
        "status_differs": "本地记录的订阅状态与 Stripe 不一致。",
        "subscriber_not_linked": "Stripe 中订阅有效，但没有关联到任何订阅用户。",
        "subscription_not_in_stripe": "本服务在监控该用户，但 Stripe 找不到其订阅。",
        "other_subscription_recorded": "该用户记录的是另一个订阅，而这个订阅在 Stripe 中仍有效。",
        "outside_period": "Stripe 对象的时间在对账期间之外。",
    },
    "en": {
        "no_ledger_entry": "Stripe has this money movement and the ledger does not: a webhook "
        "event may have been lost.",
        "movement_missing": "A money movement of the dispute is missing in the ledger.",
        "not_in_stripe": "The ledger has an entry, but Stripe has no such object.",
        "amount_differs": "The amounts differ.",
        "currency_differs": "The currencies differ.",
        "settlement_amount_differs": "The settlement amount differs from the balance transaction.",
        "settlement_currency_differs": "The settlement currency differs from the balance "
        "transaction.",
        "settlement_missing": "The ledger has no settlement amount.",
        "fee_differs": "The fee differs from the balance transaction.",
        "conversion_differs": "The balance transaction does not equal the charge converted at "
        "its exchange rate.",
        "unknown_currency": "The currency is not in the Stripe currency table, so it cannot be "
        "converted.",
        "not_paid_in_stripe": "The ledger records a payment, but Stripe has it unpaid.",
        "charge_not_succeeded": "The ledger records this charge, but it did not succeed in Stripe.",
        "refund_not_succeeded": "The ledger records this refund, but it did not succeed in Stripe.",
        "payout_total_differs": "The payout amount differs from the net total of its balance "
        "transactions.",
        "payout_currency_differs": "The payout includes balance transactions in another currency.",
        "entitled_here_not_in_stripe": "The service still monitors this subscriber, but the "
        "Stripe subscription is no longer valid (canceled or unpaid).",
        "entitled_in_stripe_not_here": "The Stripe subscription is valid, but the service does "
        "not monitor the subscriber.",
        "status_differs": "The recorded subscription status differs from Stripe's.",
        "subscriber_not_linked": "The Stripe subscription is valid, but no subscriber is linked "
        "to it.",
        "subscription_not_in_stripe": "The service monitors this subscriber, but Stripe has no "
        "such subscription.",
        "other_subscription_recorded": "The subscriber has another subscription recorded, and "
        "this one is still valid in Stripe.",
        "outside_period": "The Stripe object is dated outside the period.",
    },
}

OUTCOMES: Final[dict[Locale, dict[str, str]]] = {
    "zh-CN": {
        "applied": "已重新处理",
        "duplicate": "事件已处理过，未更改",
        "ignored": "事件类型无需处理",
        "erased": "账户已删除，仅记录资金",
        "not_linked": "客户尚未关联订阅用户，未修复",
        "busy": "订阅正被处理，稍后重试",
        "failed": "处理失败，稍后重试",
        "no_event": "Stripe 中没有可用的事件",
    },
    "en": {
        "applied": "Applied again",
        "duplicate": "Already applied, nothing changed",
        "ignored": "Event type needs no work",
        "erased": "Account deleted, money recorded only",
        "not_linked": "Customer not linked to a subscriber yet, not repaired",
        "busy": "Subscription busy, retry later",
        "failed": "Failed, retry later",
        "no_event": "Stripe has no event for it",
    },
}
