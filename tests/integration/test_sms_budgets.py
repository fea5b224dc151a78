"""The alert SMS budget against moto, and its independence from the one-time-code budget."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from idsentry.adapters.table import MainTable
from idsentry.clock import epoch
from idsentry.errors import ServiceUnavailableError
from idsentry.services.sms_budget import (
    ALERT_BUDGET_SK,
    EXHAUSTED_METRIC,
    alert_budget_pk,
    take_alert_sms_budget,
)
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_signup_service import Harness, _clear_table

pytestmark = pytest.mark.integration

# 20:00 UTC on 2026-12-04 is 04:00 on 2026-12-05 in China.
NOW = epoch(datetime(2026, 12, 4, 20, 0, tzinfo=UTC))
CODE_BUDGET_PK = "BUDGET#otp-sms"


@pytest.fixture
def table(local_service: LocalService) -> Iterator[MainTable]:
    assert local_service.stack is not None
    yield MainTable("idsentry-local", local_service.stack.runtime.client("dynamodb"))
    _clear_table(local_service)


@pytest.fixture
def harness(local_service: LocalService, table: MainTable) -> Harness:
    return Harness(local_service, MovableClock())


@pytest.fixture
def metrics_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    # The deployed functions get both from the template's globals.
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "IDSentry")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "idsentry")


def alert_count(table: MainTable, day: str) -> int | None:
    item = table.get(alert_budget_pk(day), ALERT_BUDGET_SK)
    return None if item is None else int(item["count"])


def code_count(table: MainTable, day: str) -> int | None:
    item = table.get(CODE_BUDGET_PK, f"D#{day}")
    return None if item is None else int(item["count"])


@pytest.mark.usefixtures("metrics_namespace")
def test_alert_budget_counts_to_limit(table: MainTable) -> None:
    taken = [take_alert_sms_budget(table, NOW + second, budget=3) for second in range(5)]

    item = table.get(alert_budget_pk("20261205"), ALERT_BUDGET_SK)
    assert taken == [True, True, True, False, False]
    assert item is not None
    assert item["count"] == 3
    # Midnight in China is 16:00 UTC, and the counter expires an hour later.
    assert item["expires_at"] == epoch(datetime(2026, 12, 5, 17, 0, tzinfo=UTC))


@pytest.mark.usefixtures("metrics_namespace")
def test_alert_budget_day_in_china(table: MainTable) -> None:
    before_midnight = epoch(datetime(2026, 12, 5, 15, 59, 59, tzinfo=UTC))
    midnight = before_midnight + 1
    take_alert_sms_budget(table, before_midnight, budget=1)

    spent = take_alert_sms_budget(table, before_midnight, budget=1)
    next_day = take_alert_sms_budget(table, midnight, budget=1)

    assert spent is False
    assert next_day is True
    assert alert_count(table, "20261205") == 1
    assert alert_count(table, "20261206") == 1


@pytest.mark.parametrize("budget", [0, -1])
def test_alert_budget_must_be_positive(table: MainTable, budget: int) -> None:
    with pytest.raises(ValueError, match="budget"):
        take_alert_sms_budget(table, NOW, budget=budget)

    assert alert_count(table, "20261205") is None


@pytest.mark.usefixtures("metrics_namespace")
def test_exhausted_budget_reported(
    table: MainTable, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # A day no other test uses, so this process has not logged it yet.
    moment = epoch(datetime(2027, 3, 1, 4, 0, tzinfo=UTC))
    take_alert_sms_budget(table, moment, budget=1)
    capsys.readouterr()

    with caplog.at_level(logging.WARNING, logger="idsentry.services.sms_budget"):
        refused = [take_alert_sms_budget(table, moment, budget=1) for _ in range(2)]

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    metrics = [line for line in lines if EXHAUSTED_METRIC in line]
    assert refused == [False, False]
    assert len(metrics) == 2
    assert metrics[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "IDSentry"
    assert metrics[0]["service"] == "idsentry"
    (record,) = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert record.getMessage() == "alert sms budget exhausted"
    assert record.__dict__["day"] == "20270301"
    assert record.__dict__["budget"] == 1


@pytest.mark.usefixtures("metrics_namespace")
def test_alert_budget_spares_code_budget(harness: Harness, table: MainTable) -> None:
    now = epoch(harness.clock())
    assert take_alert_sms_budget(table, now, budget=1) is True
    assert take_alert_sms_budget(table, now, budget=1) is False

    signup_id = harness.create("wang")

    assert signup_id.startswith("sgn_")
    assert code_count(table, "20261204") == 1
    assert alert_count(table, "20261204") == 1


@pytest.mark.usefixtures("metrics_namespace")
def test_code_budget_spares_alert_budget(harness: Harness, table: MainTable) -> None:
    settings = harness.settings.model_copy(update={"sms_otp_daily_budget": 1})
    harness.deps = replace(harness.deps, settings=settings)
    harness.create("wang")
    with pytest.raises(ServiceUnavailableError) as raised:
        harness.create("alice")
    assert raised.value.code == "limit.otp_budget_exhausted"

    taken = take_alert_sms_budget(table, epoch(harness.clock()), budget=5)

    assert taken is True
    assert code_count(table, "20261204") == 1
    assert alert_count(table, "20261204") == 1
