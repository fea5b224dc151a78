"""`make demo`'s finance actions: a lost webhook, the reconciliation that finds it, and its repair.

Actions:

- `lose_webhook`: renew a paid signup's subscription (`signup`) while the webhook endpoint is
  subscribed to every event type the billing consumer applies except those in `lost`, so
  Stripe never delivers them, as when Stripe gives up on an endpoint. The other events arrive
  and are applied. `expect.invoice` checks the renewal invoice, `expect.lost_events` the
  number of events that were not delivered.
- `reconcile`: POST /v1/admin/reconciliations for the demo period (yesterday and today in
  Beijing time, so a run across midnight still covers every object the story made) with
  `repair` and `locale`, follow GET /v1/admin/reconciliations/{id} until the run is done,
  download its files through the presigned links, print every row as a table, and print the
  finance e-mail. `expect` may name the class of the planted payment's rows (`lost_payment`),
  of the story's refund and dispute rows (`refund`, `dispute`), and the run's repair outcomes
  (`repairs`, for example {"applied": 2}, or {} when nothing was repaired).
"""

from __future__ import annotations

import json
import time
import unicodedata
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from idsentry.services.billing import HANDLERS
from idsentry.services.reconcile_classify import object_id
from idsentry.services.reconcile_model import ROW_CLASSES
from idsentry.services.reconcile_text import CLASSES, KINDS, OUTCOMES, REASONS
from infra.local.service import FINANCE_EMAIL

if TYPE_CHECKING:
    from infra.local.demo import Demo, Lang

BEIJING = ZoneInfo("Asia/Shanghai")
RECONCILE_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.2
REQUEST_PATH = "/v1/admin/reconciliations"

FINANCE_TEXT: dict[str, dict[Lang, str]] = {
    "endpoint_narrowed": {
        "zh-CN": "Stripe 的 webhook 端点暂时不再订阅 {types}：这些事件不会送达（如同 Stripe 多次投递失败后放弃）",
        "en": "The Stripe webhook endpoint stops subscribing to {types} for now, so those events are never delivered (as when Stripe gives up on an endpoint)",
    },
    "endpoint_restored": {
        "zh-CN": "webhook 端点恢复订阅全部事件类型",
        "en": "The webhook endpoint subscribes to every event type again",
    },
    "lost_event": {
        "zh-CN": "未送达的事件：{event_type} {event_id}（扣款 {charge_id}）",
        "en": "Event not delivered: {event_type} {event_id} (charge {charge_id})",
    },
    "ledger_without_invoice": {
        "zh-CN": "账户 {subscriber_id} 的账本中没有账单 {invoice_id}：服务不知道这笔收款",
        "en": "The ledger of account {subscriber_id} has no entry for invoice {invoice_id}: the service does not know about this payment",
    },
    "reconcile_request": {
        "zh-CN": "POST {path}：期间 {first} 至 {last}（北京时间），是否修复：{repair}，CSV 语言 {locale} → HTTP {status}，{reconciliation_id}（{state}）",
        "en": "POST {path}: {first} to {last} (Beijing time), repair: {repair}, CSV in {locale} → HTTP {status}, {reconciliation_id} ({state})",
    },
    "reconcile_done": {
        "zh-CN": "GET {path}/{reconciliation_id} → {status}（第 {attempts} 次运行，用时 {seconds} 秒）：{rows} 项，Stripe 请求 {requests} 次",
        "en": "GET {path}/{reconciliation_id} → {status} (attempt {attempts}, after {seconds} s): {rows} items, {requests} Stripe requests",
    },
    "files": {
        "zh-CN": "通过 5 分钟有效的下载链接取回 {count} 个文件：{names}；CSV 以 UTF-8 BOM 开头：{bom}",
        "en": "Fetched {count} files through their 5-minute links: {names}; the CSV starts with a UTF-8 BOM: {bom}",
    },
    "counts": {"zh-CN": "各类结果数量：{counts}", "en": "Items per class: {counts}"},
    "count_separator": {"zh-CN": "，", "en": ", "},
    "answer_yes": {"zh-CN": "是", "en": "yes"},
    "answer_no": {"zh-CN": "否", "en": "no"},
    "table_header": {
        "zh-CN": "结果|对象|Stripe 编号|金额|订阅用户|说明",
        "en": "Result|Object|Stripe id|Amount|Subscriber|Explanation",
    },
    "deleted_owner": {"zh-CN": "已删除账户（化名）", "en": "deleted account (pseudonym)"},
    "repair_line": {
        "zh-CN": "修复：{kind} {stripe_id} ← {event_type} {event_id}：{outcome}",
        "en": "Repair: {kind} {stripe_id} ← {event_type} {event_id}: {outcome}",
    },
    "no_repairs": {
        "zh-CN": "修复：没有需要修复的项目，没有重新处理任何事件",
        "en": "Repair: nothing was missing, so no event was applied again",
    },
    "finance_email": {
        "zh-CN": "财务邮箱 {email} 收到邮件（中英文，不含下载链接）：{subject}",
        "en": "The finance mailbox {email} receives an e-mail (Chinese and English, no download link): {subject}",
    },
    # Failures.
    "no_lost_payment": {
        "zh-CN": "{step} 之前没有运行 lose_webhook 步骤",
        "en": "{step} needs a lose_webhook step before it",
    },
    "lost_count": {
        "zh-CN": "应有 {expected} 个事件未送达，实际 {actual} 个",
        "en": "Expected {expected} undelivered events, got {actual}",
    },
    "ledger_has_invoice": {
        "zh-CN": "账本中已有账单 {invoice_id}，丢失的 webhook 没有造成缺失",
        "en": "The ledger already has invoice {invoice_id}, so the lost webhook left nothing missing",
    },
    "reconcile_status": {
        "zh-CN": "对账 {reconciliation_id} 在 {seconds} 秒内没有完成，状态 {status}",
        "en": "Reconciliation {reconciliation_id} did not finish within {seconds} s; status {status}",
    },
    "reconcile_rejected": {
        "zh-CN": "对账请求被拒绝：HTTP {status} {message}",
        "en": "The reconciliation request was rejected: HTTP {status} {message}",
    },
    "row_class": {
        "zh-CN": "{what} {stripe_id} 应为“{expected}”，实际“{actual}”",
        "en": "{what} {stripe_id} should be {expected}, got {actual}",
    },
    "object_count": {
        "zh-CN": "Stripe 中应有 1 个{what}，实际 {count} 个",
        "en": "Stripe should have one {what}, got {count}",
    },
    "repairs_differ": {
        "zh-CN": "修复结果应为 {expected}，实际 {actual}",
        "en": "The repair outcomes should be {expected}, got {actual}",
    },
    "finance_email_missing": {
        "zh-CN": "{seconds} 秒内财务邮箱没有收到对账 {reconciliation_id} 的邮件",
        "en": "The finance mailbox got no e-mail of reconciliation {reconciliation_id} within {seconds} s",
    },
    "finance_email_link": {
        "zh-CN": "财务邮件中含有链接，但它不应含有任何下载链接",
        "en": "The finance e-mail contains a link, but it must contain no download link",
    },
}


@dataclass
class LostPayment:
    """The renewal whose webhooks the story lost: its invoice, charge and undelivered events."""

    subscriber_id: str
    invoice_id: str
    charge_id: str
    lost_event_ids: list[str] = field(default_factory=list)


# The lost payment of each running demo, for the reconcile steps after lose_webhook.
_LOST: weakref.WeakKeyDictionary[Demo, LostPayment] = weakref.WeakKeyDictionary()


def _text(demo: Demo, key: str, **params: object) -> str:
    return FINANCE_TEXT[key][demo.lang].format(**params)


def act_lose_webhook(demo: Demo, step: dict[str, Any]) -> None:
    """Renew a subscription while the webhook endpoint leaves out the `lost` event types."""
    from infra.local.demo import BILLING_WAIT_SECONDS, StoryError, _print_invoice

    record, subscriber_id, payment = demo.paid_signup(step)
    lost = step.get("lost")
    if not isinstance(lost, list) or not lost or not set(lost) <= set(HANDLERS):
        raise StoryError(f"step {step['id']}: lost must list event types the consumer applies")
    subscription_id = payment.subscription_id
    if subscription_id is None:
        raise demo.fail("not_paid", step=record.step_id)
    service = demo.service
    shim = demo.stripe_shim
    webhook_url = f"{service.public_base_url}/v1/webhooks/stripe"

    demo.write(_text(demo, "endpoint_narrowed", types=", ".join(lost)), 1)
    shim.configure_webhook(
        webhook_url, service.stripe_webhook_secret, sorted(set(HANDLERS) - set(lost))
    )
    try:
        demo.say("renew_request", indent=1, subscription_id=subscription_id)
        invoice, deliveries = demo.with_webhooks(
            step, lambda: demo.stripe_call(lambda: shim.renew_subscription(subscription_id))
        )
    finally:
        shim.configure_webhook(webhook_url, service.stripe_webhook_secret, sorted(HANDLERS))
    demo.write(_text(demo, "endpoint_restored"), 1)
    _print_invoice(demo, invoice)
    demo.print_deliveries(deliveries)
    payment.deliveries.extend(deliveries)
    demo.wait_until_applied(payment, time.monotonic() + BILLING_WAIT_SECONDS)

    invoice_id = str(invoice["id"])
    charge_id = object_id(invoice.get("charge")) or "-"
    client = demo.stripe_client()
    delivered = {delivery.event_id for delivery in deliveries}
    lost_events = [
        event
        for event_type in lost
        for event in demo.stripe_call(
            lambda event_type=event_type: client.v1.events.list(
                params={"type": event_type, "limit": 100}
            )
        ).data
        if event.data.object["id"] == invoice_id and event.id not in delivered
    ]
    for event in lost_events:
        demo.write(
            _text(
                demo, "lost_event", event_type=event.type, event_id=event.id, charge_id=charge_id
            ),
            1,
        )
    in_ledger = _ledger_has_invoice(demo, subscriber_id, invoice_id)
    if not in_ledger:
        demo.write(
            _text(
                demo, "ledger_without_invoice", subscriber_id=subscriber_id, invoice_id=invoice_id
            ),
            1,
        )
    _LOST[demo] = LostPayment(
        subscriber_id, invoice_id, charge_id, [str(event.id) for event in lost_events]
    )

    expect = step.get("expect", {})
    demo.check_fields(expect.get("invoice", {}), invoice, "invoice")
    if "lost_events" in expect and len(lost_events) != expect["lost_events"]:
        raise demo.fail("lost_count", expected=expect["lost_events"], actual=len(lost_events))
    if in_ledger:
        raise demo.fail("ledger_has_invoice", invoice_id=invoice_id)


def _ledger_has_invoice(demo: Demo, subscriber_id: str, invoice_id: str) -> bool:
    from idsentry.wiring import main_table

    # The demo's ledger checks read the table, because no route lists one subscriber's ledger.
    partition = main_table().get_partition(f"SUB#{subscriber_id}")
    return any(
        sort_key.startswith("LEDGER#")
        and (item.get("stripe_ids") or {}).get("invoice") == invoice_id
        for sort_key, item in partition.items()
    )


def act_reconcile(demo: Demo, step: dict[str, Any]) -> None:
    """Run a reconciliation of the demo period through the admin API and print its rows."""
    today = datetime.now(BEIJING).date()
    first, last = today - timedelta(days=1), today
    repair = bool(step.get("repair", False))
    locale = str(step.get("locale", "zh-CN"))
    body = {"from": first.isoformat(), "to": last.isoformat(), "repair": repair, "locale": locale}

    started = demo.request(
        "POST", REQUEST_PATH, body=body, admin=True, idempotency_key=f"demo-{step['id']}"
    )
    if started.status != 202:
        message = started.error.get("message") or started.text
        raise demo.fail("reconcile_rejected", status=started.status, message=message)
    reconciliation_id = str(started.body["reconciliation_id"])
    demo.write(
        _text(
            demo,
            "reconcile_request",
            path=REQUEST_PATH,
            first=first,
            last=last,
            repair=_text(demo, "answer_yes" if repair else "answer_no"),
            locale=locale,
            status=started.status,
            reconciliation_id=reconciliation_id,
            state=started.body.get("status"),
        ),
        1,
    )

    began = time.monotonic()
    run = _wait_until_done(demo, reconciliation_id)
    demo.write(
        _text(
            demo,
            "reconcile_done",
            path=REQUEST_PATH,
            reconciliation_id=reconciliation_id,
            status=run["status"],
            attempts=run.get("attempts"),
            seconds=f"{time.monotonic() - began:.1f}",
            rows=run.get("rows"),
            requests=sum((run.get("stripe_requests") or {}).values()),
        ),
        1,
    )
    files = {entry["name"]: demo.request_url(entry["url"]) for entry in run.get("files") or []}
    csv_text = files.get("reconciliation.csv", "")
    demo.write(
        _text(
            demo,
            "files",
            count=len(files),
            names=", ".join(files),
            bom=_text(demo, "answer_yes" if csv_text.startswith("\ufeff") else "answer_no"),
        ),
        1,
    )
    document = json.loads(files["reconciliation.json"])
    counts = _text(demo, "count_separator").join(
        f"{CLASSES[demo.lang][name]} {document['counts'].get(name, 0)}" for name in ROW_CLASSES
    )
    demo.write(_text(demo, "counts", counts=counts), 1)
    _print_rows(demo, document["rows"])
    _print_repairs(demo, document["repairs"])
    _print_email(demo, reconciliation_id)

    _check(demo, step, document, run)


def _wait_until_done(demo: Demo, reconciliation_id: str) -> dict[str, Any]:
    from infra.local.demo import ADMIN_POLL_SECONDS

    deadline = time.monotonic() + RECONCILE_WAIT_SECONDS
    while True:
        response = demo.request("GET", f"{REQUEST_PATH}/{reconciliation_id}", admin=True)
        status = response.body.get("status")
        if status == "done":
            return response.body
        if status == "failed" or time.monotonic() >= deadline:
            raise demo.fail(
                "reconcile_status",
                reconciliation_id=reconciliation_id,
                seconds=int(RECONCILE_WAIT_SECONDS),
                status=status,
            )
        time.sleep(ADMIN_POLL_SECONDS)


def _width(value: str) -> int:
    """Return the terminal cells `value` takes, counting wide (Chinese) characters as two."""
    return sum(2 if unicodedata.east_asian_width(character) in "WF" else 1 for character in value)


def _owner(demo: Demo, owner_id: str | None) -> str:
    if not owner_id:
        return "-"
    for record in demo.signups.values():
        if record.subscriber_id == owner_id:
            return str(record.body.get("name", owner_id))
    return _text(demo, "deleted_owner")


def _print_rows(demo: Demo, rows: list[dict[str, Any]]) -> None:
    """Print the rows as a table whose columns fit their widest cell, with the explanation last."""
    table = [_text(demo, "table_header").split("|")]
    for row in rows:
        amount = row.get("stripe_amount")
        if amount is None:
            amount = row.get("ledger_amount")
        explanation = " ".join(REASONS[demo.lang][code] for code in row.get("reasons") or [])
        table.append(
            [
                CLASSES[demo.lang][row["class"]],
                KINDS[demo.lang][row["kind"]],
                str(row["stripe_id"]),
                demo.money(amount, row.get("currency")),
                _owner(demo, row.get("owner_id")),
                explanation or "-",
            ]
        )
    widths = [max(_width(line[column]) for line in table) for column in range(len(table[0]) - 1)]
    for line in table:
        padded = [
            value + " " * (width - _width(value))
            for value, width in zip(line, widths, strict=False)
        ]
        demo.write("  ".join([*padded, line[-1]]), 1)


def _print_repairs(demo: Demo, repairs: list[dict[str, Any]]) -> None:
    if not repairs:
        demo.write(_text(demo, "no_repairs"), 1)
    for repair in repairs:
        demo.write(
            _text(
                demo,
                "repair_line",
                kind=KINDS[demo.lang][repair["kind"]],
                stripe_id=repair["stripe_id"],
                event_type=repair.get("event_type") or "-",
                event_id=repair.get("event_id") or "-",
                outcome=OUTCOMES[demo.lang][repair["outcome"]],
            ),
            1,
        )


def _print_email(demo: Demo, reconciliation_id: str) -> None:
    from infra.local.demo import WAIT_SECONDS, mask_email

    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = [
            email
            for email in demo.service.sent_emails()
            if email["to"] == [FINANCE_EMAIL] and reconciliation_id in (email.get("text") or "")
        ]
        if found:
            break
        if time.monotonic() >= deadline:
            raise demo.fail(
                "finance_email_missing",
                seconds=int(WAIT_SECONDS),
                reconciliation_id=reconciliation_id,
            )
        time.sleep(POLL_SECONDS)
    email = found[-1]
    # The demo masks every address it prints, the finance mailbox's too.
    address = mask_email(FINANCE_EMAIL)
    demo.write(_text(demo, "finance_email", email=address, subject=email["subject"]), 1)
    if "http://" in email["text"] or "https://" in email["text"]:
        raise demo.fail("finance_email_link")


def _check(demo: Demo, step: dict[str, Any], document: dict[str, Any], run: dict[str, Any]) -> None:
    """Check the classes and repairs that the step's `expect` names."""
    from infra.local.demo import _compact

    expect = step.get("expect", {})
    classes = {(row["kind"], row["stripe_id"]): row["class"] for row in document["rows"]}

    def check_class(kind: str, stripe_id: str, expected: str) -> None:
        actual = classes.get((kind, stripe_id), "-")
        if actual != expected:
            raise demo.fail(
                "row_class",
                what=KINDS[demo.lang][kind],
                stripe_id=stripe_id,
                expected=CLASSES[demo.lang][expected],
                actual=CLASSES[demo.lang].get(actual, actual),
            )

    if "lost_payment" in expect:
        lost = _LOST.get(demo)
        if lost is None:
            raise demo.fail("no_lost_payment", step=step["id"])
        check_class("invoice", lost.invoice_id, expect["lost_payment"])
        check_class("charge", lost.charge_id, expect["lost_payment"])
    for kind in ("refund", "dispute"):
        if kind in expect:
            found = [stripe_id for row_kind, stripe_id in classes if row_kind == kind]
            if len(found) != 1:
                raise demo.fail("object_count", what=KINDS[demo.lang][kind], count=len(found))
            check_class(kind, found[0], expect[kind])
    if "repairs" in expect and (run.get("repairs") or {}) != expect["repairs"]:
        raise demo.fail(
            "repairs_differ",
            expected=_compact(expect["repairs"]),
            actual=_compact(run.get("repairs") or {}),
        )


FINANCE_ACTIONS = {
    "lose_webhook": act_lose_webhook,
    "reconcile": act_reconcile,
}
