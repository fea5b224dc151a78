"""One-off purchases: the purchase record, its refund, and the bought report queued once.

A paid Checkout Session in payment mode is a purchase, recorded once as
`PURCHASE#{checkout_session_id}` with the charge that paid it. A purchase of the deep report
plan also names the report it buys (`report_id`, derived from the subscriber and the
session), and its report job is sent until the item records `report_queued_at`. A consumer
that stopped between sending and recording sends the job again, which is harmless because
the report worker renders each report id once.

A fully refunded charge marks its purchase `refunded`, whichever event arrives first. The
Checkout event reads the charge, so a purchase refunded before that event is applied is
recorded as refunded. The worker renders no report for a purchase that is no longer paid, and
a report rendered before the refund stays in the account.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.clock import epoch
from idsentry.services.report_ids import DEEP_REPORT_PLAN, deep_report_id, deep_report_job

logger = logging.getLogger(__name__)

PURCHASE_PREFIX = "PURCHASE#"
STATUS_PAID = "paid"
STATUS_REFUNDED = "refunded"


class ReportQueueMissingError(RuntimeError):
    """A deep report was bought, but the consumer has no report queue to send its job to."""


def record_purchase(
    table: MainTable,
    reports: JobQueue | None,
    subscriber_id: str,
    session: dict[str, Any],
    charge: dict[str, Any],
    paid_at: int,
    now: datetime,
) -> dict[str, Any]:
    """Record a paid session's purchase once and queue the report it bought; returns the item.

    `charge` is the session's charge as fetched now (empty when the session has none), so a
    refund that Stripe applied before this event is seen here.
    """
    session_id = str(session["id"])
    plan = str((session.get("metadata") or {}).get("plan") or "one_off")
    item: dict[str, Any] = {
        "pk": f"SUB#{subscriber_id}",
        "sk": f"{PURCHASE_PREFIX}{session_id}",
        "plan": plan,
        "status": STATUS_REFUNDED if charge.get("refunded") else STATUS_PAID,
        "amount": int(session["amount_total"]),
        "currency": str(session["currency"]),
        "paid_at": paid_at,
    }
    if charge.get("id"):
        item["charge_id"] = str(charge["id"])
    if plan == DEEP_REPORT_PLAN:
        item["report_id"] = deep_report_id(subscriber_id, session_id)

    if table.put(item, condition="attribute_not_exists(pk)"):
        purchase = item
        logger.info(
            "one-off purchase recorded",
            extra={
                "subscriber_id": subscriber_id,
                "checkout_session_id": session_id,
                "plan": plan,
                "status": item["status"],
            },
        )
    else:
        purchase = table.get(item["pk"], item["sk"]) or item
        if charge.get("refunded") and purchase.get("status") == STATUS_PAID:
            purchase = _mark_refunded(table, purchase, epoch(now)) or purchase

    if plan == DEEP_REPORT_PLAN and purchase.get("status") == STATUS_PAID:
        _queue_report(table, reports, subscriber_id, session_id, purchase, now)
    return purchase


def _queue_report(
    table: MainTable,
    reports: JobQueue | None,
    subscriber_id: str,
    session_id: str,
    purchase: dict[str, Any],
    now: datetime,
) -> None:
    if purchase.get("report_queued_at") is not None:
        return
    if reports is None:
        raise ReportQueueMissingError(
            "REPORT_QUEUE_URL is not set, so the bought deep report cannot be queued"
        )
    reports.send(deep_report_job(subscriber_id, session_id, now))
    table.update(
        f"SUB#{subscriber_id}",
        f"{PURCHASE_PREFIX}{session_id}",
        "SET report_queued_at = if_not_exists(report_queued_at, :now)",
        values={":now": epoch(now)},
        condition="attribute_exists(pk)",
    )
    logger.info(
        "deep report queued",
        extra={
            "subscriber_id": subscriber_id,
            "checkout_session_id": session_id,
            "report_id": purchase.get("report_id"),
        },
    )


def mark_refunded(table: MainTable, subscriber_id: str, charge_id: str, now: int) -> int:
    """Mark the subscriber's paid purchases of a fully refunded charge refunded; returns how many."""
    marked = 0
    for purchase in table.get_prefix(f"SUB#{subscriber_id}", PURCHASE_PREFIX).values():
        if purchase.get("charge_id") != charge_id or purchase.get("status") != STATUS_PAID:
            continue
        if _mark_refunded(table, purchase, now) is not None:
            marked += 1
            logger.info(
                "one-off purchase refunded",
                extra={
                    "subscriber_id": subscriber_id,
                    "checkout_session_id": str(purchase["sk"]).removeprefix(PURCHASE_PREFIX),
                    "report_id": purchase.get("report_id"),
                },
            )
    return marked


def _mark_refunded(table: MainTable, purchase: dict[str, Any], now: int) -> dict[str, Any] | None:
    return table.update(
        str(purchase["pk"]),
        str(purchase["sk"]),
        "SET #status = :refunded, refunded_at = :now",
        values={":refunded": STATUS_REFUNDED, ":now": now, ":paid": STATUS_PAID},
        names={"#status": "status"},
        condition="#status = :paid",
    )
