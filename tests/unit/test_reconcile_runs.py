"""Unit tests of reconciliation runs: request parsing, ids, the status view and finance e-mail."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from idsentry.models.billing_jobs import ReconciliationJob
from idsentry.routes.reconcile_jobs import scheduled_time
from idsentry.services import reconcile_runs as runs
from idsentry.services.reconcile_email import render_finance_email
from idsentry.services.reconcile_model import Period, ReconcileInputError

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 5)
NOW = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)


def record(**changes: Any) -> dict[str, Any]:
    item = runs.new_record(
        "rcn_01M91TESTRUN0000000000000",
        Period(date(2026, 12, 1), date(2026, 12, 4)),
        repair=True,
        locale="en",
        requested_by="admin",
        request_id="req-1",
        now=NOW,
    )
    item.update(
        {
            "status": "done",
            "rows": 5,
            "counts": {
                "missing_in_ledger": 1,
                "missing_in_stripe": 0,
                "amount_mismatch": 0,
                "status_mismatch": 0,
                "payout_mismatch": 0,
                "matched": 4,
            },
            "totals": {
                "cny": {
                    "stripe_payments": 3600,
                    "stripe_refunds": -1800,
                    "stripe_disputes": 0,
                    "stripe_payouts": 0,
                    "ledger_payments": 1800,
                    "ledger_refunds": -1800,
                    "ledger_disputes": 0,
                },
                "jpy": {"stripe_payments": 1200, "ledger_payments": 1200},
            },
            "repairs": {"applied": 2},
            "claim_id": "clm_secret",
            "lease_until": 1,
        }
    )
    item.update(changes)
    return item


# ---------------------------------------------------------------------------- requests


def test_request_defaults() -> None:
    request = runs.parse_request({"from": "2026-12-04"}, None, TODAY)

    assert request.period == Period(date(2026, 12, 4), date(2026, 12, 4))
    assert request.repair is False
    assert request.locale == "zh-CN"
    assert request.key_pk() is None
    assert request.pointer_pk() == "RECONREQ#2026-12-04#2026-12-04#check#zh-CN"


def test_request_today_allowed() -> None:
    request = runs.parse_request({"from": "2026-12-05", "to": "2026-12-05"}, None, TODAY)

    assert request.period.first == TODAY


@pytest.mark.parametrize(
    ("body", "key", "field"),
    [
        ({}, None, "from"),
        ({"from": None}, None, "from"),
        ({"from": "04/12/2026"}, None, "from"),
        ({"from": ["2026-12-04"]}, None, "from"),
        ({"from": "2026-12-04", "to": 5}, None, "to"),
        ({"from": "2026-12-04", "to": "2026-12-01"}, None, "to"),
        ({"from": "2026-09-01", "to": "2026-12-04"}, None, "to"),
        ({"from": "2026-12-06"}, None, "from"),
        ({"from": "2026-12-04", "repair": 1}, None, "repair"),
        ({"from": "2026-12-04", "locale": "zh-TW"}, None, "locale"),
        ({"from": "2026-12-04", "period": "day"}, None, "period"),
        ({"from": "2026-12-04"}, "", "Idempotency-Key"),
        ({"from": "2026-12-04"}, "has space", "Idempotency-Key"),
        ({"from": "2026-12-04"}, "k" * 256, "Idempotency-Key"),
    ],
)
def test_request_invalid(body: dict[str, Any], key: str | None, field: str) -> None:
    with pytest.raises(ReconcileInputError) as raised:
        runs.parse_request(body, key, TODAY)

    assert raised.value.field == field
    assert field in str(raised.value)


def test_fingerprint_by_parameters() -> None:
    base = runs.parse_request({"from": "2026-12-01", "to": "2026-12-04"}, "key-1", TODAY)
    same = runs.parse_request({"from": "2026-12-01", "to": "2026-12-04"}, "key-2", TODAY)
    repair = runs.parse_request(
        {"from": "2026-12-01", "to": "2026-12-04", "repair": True}, None, TODAY
    )

    assert base.fingerprint() == same.fingerprint()
    assert base.fingerprint() != repair.fingerprint()
    assert base.key_pk() != same.key_pk()
    assert repair.pointer_pk().endswith("#repair#zh-CN")


# ---------------------------------------------------------------------------- ids and keys


def test_daily_id_stable() -> None:
    assert runs.daily_id(date(2026, 12, 4)) == "rcn_day_20261204"
    assert runs.is_valid_id(runs.daily_id(date(2026, 12, 4)))


@pytest.mark.parametrize("text", [None, "", "rcn_", "rcn_a/b", "run_01M91", "rcn_" + "a" * 41])
def test_invalid_ids(text: str | None) -> None:
    assert runs.is_valid_id(text) is False


def test_file_key_known_names_only() -> None:
    assert (
        runs.file_key("rcn_x", "reconciliation.csv") == "reconciliations/rcn_x/reconciliation.csv"
    )
    with pytest.raises(ValueError, match="name must be one of"):
        runs.file_key("rcn_x", "../other.csv")


def test_job_model_rejects_bad_id() -> None:
    with pytest.raises(ValidationError, match="reconciliation_id"):
        ReconciliationJob(
            job_id="job_1",
            reconciliation_id="../../etc",
            from_date="2026-12-04",
            to_date="2026-12-04",
            requested_by="admin",
        )


def test_job_round_trip() -> None:
    job = runs.job_of(record())

    assert ReconciliationJob.model_validate_json(job.model_dump_json()) == job
    assert (job.from_date, job.to_date, job.repair, job.locale) == (
        "2026-12-01",
        "2026-12-04",
        True,
        "en",
    )
    assert job.requested_by == "admin"
    assert job.request_id == "req-1"


def test_record_expires_with_files() -> None:
    item = record()

    assert item["expires_at"] - item["created_at"] == runs.RETENTION_DAYS * 24 * 3600


def test_view_hides_claim() -> None:
    view = runs.run_view(record())

    assert "claim_id" not in view
    assert "lease_until" not in view
    assert "pk" not in view
    assert view["period"] == {
        "from": "2026-12-01",
        "to": "2026-12-04",
        "time_zone": "Asia/Shanghai",
    }
    assert view["counts"]["matched"] == 4


# ---------------------------------------------------------------------------- schedule time


def test_scheduled_time_from_event() -> None:
    moment = scheduled_time({"scheduled_time": "2026-12-04T22:00:00Z"})

    assert runs.beijing_date(moment) == date(2026, 12, 5)


@pytest.mark.parametrize(
    "event", [{}, {"scheduled_time": "soon"}, {"scheduled_time": "2026-12-04T22:00:00"}]
)
def test_scheduled_time_falls_back(event: dict[str, Any]) -> None:
    assert scheduled_time(event, lambda: NOW) == NOW


# ---------------------------------------------------------------------------- finance e-mail


def test_email_both_languages() -> None:
    email = render_finance_email(record())
    chinese, _, english = email.text.partition("----------")

    assert email.subject == (
        "Stripe 对账已完成：2026-12-01 – 2026-12-04（需要处理 1 项） / "
        "Stripe reconciliation finished: 2026-12-01 – 2026-12-04 (items to look at: 1)"
    )
    assert "对账编号：rcn_01M91TESTRUN0000000000000" in chinese
    assert "共 5 项：4 项已对上，1 项需要处理。" in chinese
    assert "账本缺失：1" in chinese
    assert "Stripe 收款 ¥36.00" in chinese
    assert "Stripe 退款 -¥18.00" in chinese
    assert "已重新处理：2" in chinese
    assert "Items: 5; matched: 4; to look at: 1." in english
    assert "Missing in the ledger: 1" in english
    assert "Stripe Payments CN¥36.00" in english
    assert "JPY: Stripe Payments JP¥1,200" in english
    assert "Applied again: 2" in english
    assert "idsentry reconcile --id rcn_01M91TESTRUN0000000000000" in english


def test_email_without_links() -> None:
    email = render_finance_email(record())

    assert "http" not in email.text
    assert "href" not in email.html
    assert '<section lang="zh-CN">' in email.html
    assert '<section lang="en">' in email.html


def test_email_check_mode_omits_repairs() -> None:
    email = render_finance_email(record(repair=False, repairs={}, totals={}))

    assert "修复结果" not in email.text
    assert "Repairs:" not in email.text
    assert "本期间没有资金变动。" in email.text
    assert "No money moved in the period." in email.text


def test_email_escapes_html() -> None:
    email = render_finance_email(record(reconciliation_id="rcn_<b>"))

    assert "rcn_<b>" not in email.html
    assert "rcn_&lt;b&gt;" in email.html
