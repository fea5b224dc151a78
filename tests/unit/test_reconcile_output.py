"""Reconciliation outputs: the CSV Excel opens, the JSON for machines and the HTML summary."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest

from idsentry.services.reconcile import render_files
from idsentry.services.reconcile_html import render_html
from idsentry.services.reconcile_model import Period, Reconciliation, Repair, Row, Totals
from idsentry.services.reconcile_output import neutralise, render_csv, render_json
from idsentry.services.reconcile_text import COLUMNS
from tests.unit.reconcile_fakes import NOON

PERIOD = Period(date(2026, 12, 4), date(2026, 12, 4))


def sample() -> Reconciliation:
    rows = (
        Row("missing_in_ledger", "invoice", "in_1", NOON, "cny", 1800, None,
            stripe_status="paid", owner_id="sbr_A", reasons=("no_ledger_entry",)),
        Row("matched", "refund", "re_1", NOON, "cny", -500, -500, "cny", -500, None,
            stripe_status="succeeded", ledger_status="refund", owner_id="sbr_A"),
        Row("matched", "charge", "ch_2", NOON, "jpy", 1200, 1200, "cny", 5760, 5760,
            stripe_status="succeeded", ledger_status="invoice_paid", owner_id="sbr_B"),
        Row("amount_mismatch", "charge", "ch_3", NOON, "usd", 999, 1000,
            stripe_status="succeeded", owner_id="=HYPERLINK(\"http://127.0.0.1\")",
            reasons=("amount_differs",)),
        Row("payout_mismatch", "payout", "po_1", NOON, "cny", 2999, transactions_amount=3000,
            stripe_status="paid", reasons=("payout_total_differs",)),
    )  # fmt: skip
    return Reconciliation(
        period=PERIOD,
        generated_at=NOON + 86400,
        rows=rows,
        totals={
            "cny": Totals(stripe_payments=1800, stripe_refunds=-500, ledger_refunds=-500),
            "jpy": Totals(stripe_payments=1200, ledger_payments=1200),
        },
        repairs=(Repair("invoice", "in_1", "applied", "evt_1", "invoice.paid"),),
        objects={"charges": 2},
        stripe_requests={"GET /v1/charges": 1},
    )


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_bom_and_chinese_header() -> None:
    data = render_csv(sample())

    assert data.startswith(b"\xef\xbb\xbf")
    assert read_csv(data)[0] == list(COLUMNS["zh-CN"])
    assert "账本缺失" in data.decode("utf-8-sig")


def test_csv_english_header() -> None:
    rows = read_csv(render_csv(sample(), "en"))

    assert rows[0] == list(COLUMNS["en"])
    assert rows[1][0] == "Missing in the ledger"


def test_csv_rejects_locale() -> None:
    with pytest.raises(ValueError, match="locale"):
        render_csv(sample(), "fr")


def test_csv_amounts_major_units() -> None:
    rows = {row[2]: row for row in read_csv(render_csv(sample(), "en"))[1:]}

    assert rows["in_1"][5] == "18.00"
    assert rows["in_1"][6] == ""
    assert rows["ch_2"][4] == "JPY"
    assert rows["ch_2"][5] == "1200"
    assert rows["ch_2"][8] == "57.60"
    assert rows["po_1"][10] == "30.00"


def test_csv_negative_refund_stays_number() -> None:
    text = render_csv(sample(), "en").decode("utf-8-sig")
    refund_line = next(line for line in text.split("\r\n") if "re_1" in line)

    assert ",-5.00,-5.00," in refund_line
    assert "'-5.00" not in text


def test_csv_formula_neutralised() -> None:
    rows = {row[2]: row for row in read_csv(render_csv(sample(), "en"))[1:]}

    assert rows["ch_3"][13] == '\'=HYPERLINK("http://127.0.0.1")'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+86", "'+86"),
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("in_1", "in_1"),
        ("", ""),
    ],
)
def test_neutralise_formula_starts(text: str, expected: str) -> None:
    assert neutralise(text) == expected


def test_json_content() -> None:
    document = json.loads(render_json(sample()))

    assert document["period"] == {
        "from": "2026-12-04",
        "to": "2026-12-04",
        "time_zone": "Asia/Shanghai",
        "start": 1796313600,
        "end": 1796400000,
    }
    assert document["counts"]["missing_in_ledger"] == 1
    assert document["counts"]["matched"] == 2
    assert document["counts"]["missing_in_stripe"] == 0
    assert document["rows"][0]["reasons"] == ["no_ledger_entry"]
    assert document["rows"][1]["stripe_amount"] == -500
    assert document["totals"]["jpy"]["ledger_payments"] == 1200
    assert document["repairs"][0]["outcome"] == "applied"
    assert document["stripe"]["requests"] == {"GET /v1/charges": 1}


def test_outputs_deterministic() -> None:
    first = render_files(sample(), "zh-CN")
    second = render_files(sample(), "zh-CN")

    assert first == second


def test_html_chinese_summary() -> None:
    page = render_html(sample())

    assert '<html lang="zh-CN">' in page
    assert "Stripe 对账报告" in page
    assert "2026-12-04" in page
    assert "<svg" in page
    assert "<script" not in page.lower()
    assert "账本缺失" in page
    assert "¥18.00" in page
    assert "JP¥1,200" in page
    assert "已重新处理" in page


def test_html_english_summary() -> None:
    page = render_html(sample(), "en")

    assert '<html lang="en">' in page
    assert "Stripe reconciliation report" in page
    assert "Payout total mismatch" in page
    assert "CN¥18.00" in page
    assert "=HYPERLINK(&quot;http://127.0.0.1&quot;)" in page


def test_html_chart_bars_scale() -> None:
    page = render_html(sample(), "en")

    # matched (2) is the largest class, so its bar is full width and a single item half.
    assert 'width="380" height="18" fill="#1e8449"' in page
    assert 'width="190" height="18" fill="#c0392b"' in page
