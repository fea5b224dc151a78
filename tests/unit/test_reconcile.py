"""Reconciliation classes, period boundaries and currencies, with in-memory Stripe and ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from idsentry.services.reconcile import ReconcileDeps, reconcile
from idsentry.services.reconcile_classify import converted_amount
from idsentry.services.reconcile_model import (
    LedgerEntry,
    Period,
    Profile,
    ReconcileInputError,
    Reconciliation,
    Row,
    parse_period,
    previous_day,
)
from tests.unit.reconcile_fakes import (
    DAY_END,
    DAY_START,
    NOON,
    FakeLedger,
    FakeLists,
    balance_transaction,
    charge,
    invoice,
    paid_entry,
    refund,
    refund_entry,
)

PERIOD = Period(date(2026, 12, 4), date(2026, 12, 4))
NOW = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)


def run(lists: FakeLists, ledger: FakeLedger, period: Period = PERIOD) -> Reconciliation:
    deps = ReconcileDeps(stripe=lists, ledger=ledger, clock=lambda: NOW)
    return reconcile(deps, period)


def linked_ledger(*entries: LedgerEntry) -> FakeLedger:
    return FakeLedger(stored=list(entries), links={"cus_A": "SUB#sbr_A"})


def add_paid_invoice(
    lists: FakeLists,
    number: int,
    amount: int = 1800,
    currency: str = "cny",
    created: int = NOON,
    settlement: tuple[int, str] | None = None,
    exchange_rate: float | None = None,
) -> tuple[str, str, str]:
    """Add a paid invoice with its charge and balance transaction, and return their ids."""
    invoice_id, charge_id, transaction_id = f"in_{number}", f"ch_{number}", f"txn_{number}"
    settled_amount, settled_currency = settlement or (amount, currency)
    lists.add("invoices", invoice(invoice_id, charge_id, amount, currency, created))
    lists.add("charges", charge(charge_id, transaction_id, amount, currency, created))
    lists.add(
        "balance_transactions",
        balance_transaction(
            transaction_id, charge_id, settled_amount, settled_currency, created,
            exchange_rate=exchange_rate,
        ),
    )  # fmt: skip
    return invoice_id, charge_id, transaction_id


def rows_of(result: Reconciliation, kind: str) -> list[Row]:
    return [row for row in result.rows if row.kind == kind]


def only_row(result: Reconciliation, kind: str) -> Row:
    found = rows_of(result, kind)
    assert len(found) == 1, found
    return found[0]


# -- period ---------------------------------------------------------------------------------------


def test_period_shanghai_midnights() -> None:
    period = parse_period("2026-12-04")

    assert period.start == DAY_START
    assert period.end == DAY_END
    assert datetime.fromtimestamp(period.start, UTC) == datetime(2026, 12, 3, 16, tzinfo=UTC)
    assert period.utc_days() == ["20261203", "20261204"]


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (DAY_START - 1, False),
        (DAY_START, True),
        (DAY_END - 1, True),
        (DAY_END, False),
    ],
)
def test_period_boundary_moments(moment: int, inside: bool) -> None:
    assert PERIOD.contains(moment) is inside


def test_period_boundary_pull_and_ledger() -> None:
    lists = FakeLists()
    before = add_paid_invoice(lists, 1, created=DAY_START - 1)
    first = add_paid_invoice(lists, 2, created=DAY_START)
    last = add_paid_invoice(lists, 3, created=DAY_END - 1)
    after = add_paid_invoice(lists, 4, created=DAY_END)
    ledger = linked_ledger(
        *(paid_entry(*ids, created=moment) for ids, moment in (
            (before, DAY_START - 1), (first, DAY_START), (last, DAY_END - 1), (after, DAY_END),
        ))
    )  # fmt: skip

    result = run(lists, ledger)

    assert sorted(row.stripe_id for row in rows_of(result, "invoice")) == ["in_2", "in_3"]
    assert {row.row_class for row in result.rows} == {"matched"}
    assert ("charges", {"created": {"gte": DAY_START, "lt": DAY_END}}) in lists.list_params


def test_period_payouts_by_arrival_date() -> None:
    lists = FakeLists()
    lists.add(
        "payouts",
        {"id": "po_in", "amount": 0, "currency": "cny", "created": DAY_START - 86400,
         "arrival_date": DAY_START, "status": "paid"},
    )  # fmt: skip
    lists.add(
        "payouts",
        {"id": "po_out", "amount": 0, "currency": "cny", "created": NOON,
         "arrival_date": DAY_END, "status": "in_transit"},
    )  # fmt: skip

    result = run(lists, FakeLedger())

    assert [row.stripe_id for row in rows_of(result, "payout")] == ["po_in"]
    assert ("payouts", {"arrival_date": {"gte": DAY_START, "lt": DAY_END}}) in lists.list_params


def test_previous_day_in_shanghai() -> None:
    # 2026-12-04T17:00Z is 01:00 on 12-05 in Shanghai, so the previous day is 12-04.
    assert previous_day(datetime(2026, 12, 4, 17, tzinfo=UTC)) == PERIOD


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        (None, None, "from"),
        ("2026-13-01", None, "from"),
        ("2026-12-04", "04/12/2026", "to"),
        ("2026-12-04", "2026-12-03", "to"),
        ("2026-01-01", "2026-12-31", "to"),
    ],
)
def test_period_rejects_input(first: str | None, last: str | None, field: str) -> None:
    with pytest.raises(ReconcileInputError) as raised:
        parse_period(first, last)
    assert raised.value.field == field


# -- classes ----------------------------------------------------------------------------------------


def test_matched_invoice_charge_refund() -> None:
    lists = FakeLists()
    ids = add_paid_invoice(lists, 1)
    lists.add("refunds", refund("re_1", "ch_1", 500, transaction_id="txn_re_1"))
    lists.add("balance_transactions", balance_transaction("txn_re_1", "re_1", -500, kind="refund"))
    ledger = linked_ledger(paid_entry(*ids), refund_entry("re_1", "ch_1", 500))

    result = run(lists, ledger)

    assert result.counts()["matched"] == 3
    assert sum(result.counts().values()) == 3
    assert only_row(result, "refund").stripe_amount == -500
    assert only_row(result, "charge").owner_id == "sbr_A"


def test_missing_in_ledger_lost_webhook() -> None:
    lists = FakeLists()
    add_paid_invoice(lists, 1)

    result = run(lists, linked_ledger())

    assert only_row(result, "invoice").row_class == "missing_in_ledger"
    assert only_row(result, "charge").row_class == "missing_in_ledger"
    assert only_row(result, "invoice").reasons == ("no_ledger_entry",)


def test_missing_in_stripe() -> None:
    ledger = linked_ledger(paid_entry("in_gone", "ch_gone", "txn_gone"))

    result = run(FakeLists(), ledger)

    row = only_row(result, "invoice")
    assert row.row_class == "missing_in_stripe"
    assert row.stripe_id == "in_gone"
    assert row.ledger_amount == 1800


def test_amount_mismatch() -> None:
    lists = FakeLists()
    ids = add_paid_invoice(lists, 1, amount=1800)
    ledger = linked_ledger(paid_entry(*ids, amount=1500, settlement=(1800, "cny")))

    result = run(lists, ledger)

    assert only_row(result, "invoice").row_class == "amount_mismatch"
    assert only_row(result, "invoice").reasons == ("amount_differs",)
    assert only_row(result, "charge").reasons == ("amount_differs",)


def test_currency_mismatch() -> None:
    lists = FakeLists()
    ids = add_paid_invoice(lists, 1, currency="usd")
    ledger = linked_ledger(paid_entry(*ids, currency="cny", settlement=(1800, "usd")))

    result = run(lists, ledger)

    assert only_row(result, "invoice").row_class == "amount_mismatch"
    assert only_row(result, "invoice").reasons == ("currency_differs",)


def test_settlement_mismatch() -> None:
    lists = FakeLists()
    ids = add_paid_invoice(lists, 1)
    ledger = linked_ledger(paid_entry(*ids, settlement=(1700, "cny")))

    result = run(lists, ledger)

    assert only_row(result, "invoice").row_class == "matched"
    assert only_row(result, "charge").row_class == "amount_mismatch"
    assert only_row(result, "charge").reasons == ("settlement_amount_differs",)


def test_status_mismatch_unpaid_invoice() -> None:
    lists = FakeLists()
    lists.add("invoices", invoice("in_1", None, status="open"))
    ledger = linked_ledger(paid_entry("in_1", "ch_1", "txn_1"))

    result = run(lists, ledger)

    assert only_row(result, "invoice").row_class == "status_mismatch"
    assert only_row(result, "invoice").reasons == ("not_paid_in_stripe",)


@pytest.mark.parametrize(
    ("stripe_status", "monitored", "reason"),
    [
        ("canceled", True, "entitled_here_not_in_stripe"),
        ("unpaid", True, "entitled_here_not_in_stripe"),
        ("active", False, "entitled_in_stripe_not_here"),
    ],
)
def test_status_mismatch_subscription(stripe_status: str, monitored: bool, reason: str) -> None:
    lists = FakeLists()
    subscription = {"id": "sub_1", "status": stripe_status, "customer": "cus_A", "created": NOON}
    if stripe_status == "canceled":
        # Stripe's default list leaves canceled subscriptions out, so the service fetches it by id.
        lists.retrieve = lambda resource, object_id: dict(subscription)  # type: ignore[method-assign]
    else:
        lists.add("subscriptions", subscription)
    ledger = linked_ledger()
    ledger.stored_profiles["sbr_A"] = Profile("sbr_A", "sub_1", "active", monitored)
    ledger.entitled = ["sbr_A"] if monitored else []

    result = run(lists, ledger)

    row = only_row(result, "subscription")
    assert row.row_class == "status_mismatch"
    assert row.reasons == (reason,)
    assert row.owner_id == "sbr_A"


def test_subscription_matched_and_unlinked() -> None:
    lists = FakeLists()
    lists.add(
        "subscriptions", {"id": "sub_1", "status": "active", "customer": "cus_A", "created": NOON}
    )
    lists.add(
        "subscriptions", {"id": "sub_2", "status": "active", "customer": "cus_B", "created": NOON}
    )
    ledger = linked_ledger()
    ledger.stored_profiles["sbr_A"] = Profile("sbr_A", "sub_1", "active", True)
    ledger.entitled = ["sbr_A"]

    result = run(lists, ledger)

    classes = {row.stripe_id: row.row_class for row in rows_of(result, "subscription")}
    assert classes == {"sub_1": "matched", "sub_2": "missing_in_ledger"}


def test_subscription_missing_in_stripe() -> None:
    ledger = linked_ledger()
    ledger.stored_profiles["sbr_A"] = Profile("sbr_A", "sub_gone", "active", True)
    ledger.entitled = ["sbr_A"]

    result = run(FakeLists(), ledger)

    row = only_row(result, "subscription")
    assert row.row_class == "missing_in_stripe"
    assert row.reasons == ("subscription_not_in_stripe",)


def test_payout_total_mismatch() -> None:
    lists = FakeLists()
    for payout_id, amount in (("po_ok", 3000), ("po_bad", 2999)):
        lists.add(
            "payouts",
            {"id": payout_id, "amount": amount, "currency": "cny", "created": NOON,
             "arrival_date": NOON, "status": "paid"},
        )  # fmt: skip
        lists.payout_members[payout_id] = [
            balance_transaction(f"txn_{payout_id}_1", "ch_x", 1800, fee=60),
            balance_transaction(f"txn_{payout_id}_2", "ch_y", 1300, fee=40),
            balance_transaction(f"txn_{payout_id}_p", payout_id, -amount, kind="payout"),
        ]

    result = run(lists, FakeLedger())

    classes = {row.stripe_id: row.row_class for row in rows_of(result, "payout")}
    assert classes == {"po_ok": "matched", "po_bad": "payout_mismatch"}
    bad = next(row for row in result.rows if row.stripe_id == "po_bad")
    assert bad.transactions_amount == 3000
    assert bad.reasons == ("payout_total_differs",)


def test_dispute_movement_missing() -> None:
    lists = FakeLists()
    withdrawal = balance_transaction("txn_dp_1", "dp_1", -1800, fee=1500, kind="adjustment")
    reinstated = balance_transaction("txn_dp_2", "dp_1", 1800, fee=-1500, kind="adjustment")
    lists.add(
        "disputes",
        {"id": "dp_1", "charge": "ch_1", "currency": "cny", "created": NOON, "status": "won",
         "balance_transactions": [withdrawal, reinstated]},
    )  # fmt: skip
    recorded = LedgerEntry(
        owner_pk="SUB#sbr_A", kind="dispute", amount=-1800, currency="cny", created=NOON,
        stripe_ids={"dispute": "dp_1", "charge": "ch_1", "balance_transaction": "txn_dp_1"},
        settlement_amount=-1800, settlement_currency="cny", fee_amount=1500,
    )  # fmt: skip

    missing = run(lists, linked_ledger(recorded))
    complete = run(
        lists,
        linked_ledger(
            recorded,
            LedgerEntry(
                owner_pk="SUB#sbr_A", kind="dispute", amount=1800, currency="cny", created=NOON,
                stripe_ids={"dispute": "dp_1", "charge": "ch_1", "balance_transaction": "txn_dp_2"},
                settlement_amount=1800, settlement_currency="cny", fee_amount=-1500,
            ),
        ),
    )  # fmt: skip

    assert only_row(missing, "dispute").row_class == "missing_in_ledger"
    assert only_row(missing, "dispute").reasons == ("movement_missing",)
    assert only_row(complete, "dispute").row_class == "matched"
    assert only_row(complete, "dispute").stripe_amount == 0


def test_invoice_outside_period_explains_entry() -> None:
    lists = FakeLists()
    earlier = DAY_START - 3600
    old_invoice = invoice("in_old", "ch_old", created=earlier)
    ledger = linked_ledger(paid_entry("in_old", "ch_old", "txn_old", created=NOON))
    lists.retrieve = (  # type: ignore[method-assign]
        lambda resource, object_id: dict(old_invoice) if object_id == "in_old" else None
    )

    result = run(lists, ledger)

    row = only_row(result, "invoice")
    assert row.row_class == "matched"
    assert row.reasons == ("outside_period",)


def test_invoice_paid_after_period_found() -> None:
    lists = FakeLists()
    ids = add_paid_invoice(lists, 1, created=NOON)
    lists.objects["invoices"][0]["status_transitions"]["paid_at"] = DAY_END + 60
    ledger = linked_ledger(paid_entry(*ids, created=DAY_END + 60))

    result = run(lists, ledger)

    assert only_row(result, "invoice").row_class == "matched"


# -- currencies ------------------------------------------------------------------------------------


def test_zero_decimal_jpy_settled_in_cny() -> None:
    lists = FakeLists()
    ids = add_paid_invoice(
        lists, 1, amount=1200, currency="jpy", settlement=(5760, "cny"), exchange_rate=0.048
    )
    ledger = linked_ledger(paid_entry(*ids, amount=1200, currency="jpy", settlement=(5760, "cny")))

    result = run(lists, ledger)

    assert {row.row_class for row in result.rows} == {"matched"}
    assert only_row(result, "charge").settlement_currency == "cny"


def test_zero_decimal_conversion_mismatch() -> None:
    lists = FakeLists()
    # ¥1,200 JPY at 0.048 is CN¥57.60, so 5,700 fen is 60 fen short.
    ids = add_paid_invoice(
        lists, 1, amount=1200, currency="jpy", settlement=(5700, "cny"), exchange_rate=0.048
    )
    ledger = linked_ledger(paid_entry(*ids, amount=1200, currency="jpy", settlement=(5700, "cny")))

    result = run(lists, ledger)

    assert only_row(result, "charge").row_class == "amount_mismatch"
    assert only_row(result, "charge").reasons == ("conversion_differs",)


@pytest.mark.parametrize(
    ("amount", "currency", "rate", "settlement", "expected"),
    [
        (1200, "jpy", 0.048, "cny", 5760),
        (5760, "cny", 20.8333, "jpy", 1200),
        (1000, "usd", 7.1, "cny", 7100),
        (1000, "kwd", 23.0, "cny", 2300),
        (999, "usd", 1.0, "usd", 999),
    ],
)
def test_converted_amount_exponents(
    amount: int, currency: str, rate: float, settlement: str, expected: int
) -> None:
    assert converted_amount(amount, currency, rate, settlement) == expected


def test_request_counts_reported() -> None:
    lists = FakeLists()
    for number in range(250):
        add_paid_invoice(lists, number)

    result = run(lists, linked_ledger())

    assert result.objects["charges"] == 250
    assert result.stripe_requests["GET /v1/charges"] == 3
    assert result.stripe_requests["GET /v1/refunds"] == 1


def test_request_counts_per_run() -> None:
    lists = FakeLists()
    add_paid_invoice(lists, 1)

    first = run(lists, linked_ledger())
    second = run(lists, linked_ledger())

    assert first.stripe_requests == second.stripe_requests
    assert second.stripe_requests["GET /v1/charges"] == 1
