"""Report assessment: the period, chart months, risk level and reasons, next steps, check changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from idsentry.reports.assess import (
    MANY_SERIOUS,
    assess_report,
    report_period,
    shift_month,
)
from idsentry.reports.model import (
    BreachEvidence,
    CheckResult,
    Exposure,
    MaskedIdentifier,
    StepDone,
    SubscriberFacts,
    from_records,
    report_data,
)
from infra.tools.report_samples import (
    GENERATED_AT,
    MASKED,
    REPORT_MONTH,
    SUBSCRIBER_ID,
    epoch,
    sample_records,
)

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 5, 20, tzinfo=SHANGHAI)


def _exposure(
    name: str,
    severity: str,
    found_at: datetime = AS_OF - timedelta(days=10),
    *,
    kinds: tuple[str, ...] = ("email",),
    verified: bool | None = True,
    steps: tuple[str, ...] = (),
    status: str = "confirmed",
) -> Exposure:
    confirmed = status == "confirmed"
    return Exposure(
        breach=BreachEvidence(name=name, title=name, verified=verified),
        matched=tuple(MaskedIdentifier(kind=kind, masked=MASKED[kind]) for kind in kinds),
        exposed_kinds=kinds,
        found_at=found_at,
        found_by="hibp",
        status=status,
        alert_id=f"alt_{name}" if confirmed else None,
        severity=severity if confirmed else None,
        confidence="high" if confirmed else None,
        confirmed_at=found_at if confirmed else None,
        confirmed_by="rules" if confirmed else None,
        steps_done=tuple(
            StepDone(step_id=step, done_at=found_at + timedelta(hours=1)) for step in steps
        ),
    )


def _report(
    *exposures: Exposure, month: str = "2026-05", checks=(), previous=None, zone="Asia/Shanghai"
):
    facts = SubscriberFacts(
        subscriber_id=SUBSCRIBER_ID,
        timezone=zone,
        exposures=exposures,
        check_results=tuple(checks),
    )
    return assess_report(report_data(facts, month, GENERATED_AT, previous))


def _sample_report(zone: str = "Asia/Shanghai", month: str = "2026-05"):
    partition, related = sample_records()
    partition["PREFS"]["timezone"] = zone
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    return assess_report(report_data(facts, month, GENERATED_AT))


# --- period and months ------------------------------------------------------------------------


def test_period_is_the_month_in_the_subscriber_zone():
    period = report_period("2026-12", SHANGHAI)
    assert period.start == datetime(2026, 12, 1, tzinfo=SHANGHAI)
    assert period.end == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    assert period.start.astimezone(UTC) == datetime(2026, 11, 30, 16, tzinfo=UTC)


def test_period_of_running_month_ends_at_request():
    requested = datetime(2026, 12, 5, 7, 30, tzinfo=UTC)

    period = report_period("2026-12", SHANGHAI, requested)

    assert period.start == datetime(2026, 12, 1, tzinfo=SHANGHAI)
    assert period.end == requested
    assert period.end.tzinfo == SHANGHAI


def test_period_of_past_month_ignores_request():
    requested = datetime(2027, 1, 3, tzinfo=UTC)

    period = report_period("2026-12", SHANGHAI, requested)

    assert period.end == datetime(2027, 1, 1, tzinfo=SHANGHAI)


def test_running_month_report_shows_request_day():
    from idsentry.reports.document import report_document
    from idsentry.reports.html import render_html

    partition, related = sample_records("zh-CN")
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    requested = datetime(2026, 5, 20, 4, 0, tzinfo=UTC)

    page = render_html(report_document(report_data(facts, REPORT_MONTH, requested)))

    assert "2026-05-01 至 2026-05-20" in page
    assert "截至 2026-05-20 的记录" in page
    assert "2026-05-31" not in page


def test_shift_month_across_years():
    assert shift_month(2026, 1, -1) == (2025, 12)
    assert shift_month(2026, 5, -11) == (2025, 6)
    assert shift_month(2025, 12, 1) == (2026, 1)


# --- chart ------------------------------------------------------------------------------------


def test_chart_has_twelve_months_ending_with_report_month():
    chart = _sample_report().chart
    assert [month.key for month in chart] == [
        "2025-06", "2025-07", "2025-08", "2025-09", "2025-10", "2025-11",
        "2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
    ]  # fmt: skip


def test_chart_counts_empty_and_busy_months():
    by_month = {month.key: month for month in _sample_report().chart}
    assert by_month["2026-05"].counts == {"critical": 1, "high": 0, "medium": 0, "low": 0}
    assert by_month["2026-02"].counts == {"critical": 0, "high": 1, "medium": 0, "low": 0}
    assert by_month["2026-03"].total == 0  # only a dismissed exposure that month
    assert by_month["2025-07"].total == 0
    # Pending review (May) and the 2025-03 exposure (outside the window) are not drawn.
    assert sum(month.total for month in by_month.values()) == 4


def test_chart_months_use_subscriber_zone():
    shanghai = {month.key: month for month in _sample_report("Asia/Shanghai").chart}
    assert shanghai["2025-12"].counts["medium"] == 1
    assert shanghai["2026-01"].counts["low"] == 1

    # 2026-01-01 00:30 in China is still 31 December in New York.
    new_york = {month.key: month for month in _sample_report("America/New_York").chart}
    assert new_york["2025-12"].counts == {"critical": 0, "high": 0, "medium": 1, "low": 1}
    assert new_york["2026-01"].total == 0


def test_chart_window_crosses_year_boundary():
    report = _report(
        _exposure("Jan", "low", datetime(2026, 1, 15, tzinfo=SHANGHAI)),
        _exposure("Feb", "high", datetime(2025, 2, 15, tzinfo=SHANGHAI)),
        month="2026-01",
    )
    keys = [month.key for month in report.chart]
    assert keys[0] == "2025-02"
    assert keys[-1] == "2026-01"
    assert report.chart[0].counts["high"] == 1
    assert report.chart[-1].counts["low"] == 1


def test_exposures_after_period_end_are_left_out():
    report = _sample_report(month="2026-02")
    names = [view.exposure.breach.name for view in report.exposures]
    assert "ExampleShop" not in names
    assert "MailCloud" in names
    assert report.chart[-1].key == "2026-02"


# --- risk level -------------------------------------------------------------------------------


def _codes(report):
    return [reason.code for reason in report.risk.reasons]


def test_no_exposures_is_low():
    report = _report()
    assert report.risk.level == "low"
    assert _codes(report) == ["no_exposures"]


def test_open_critical_exposure_is_critical():
    report = _report(_exposure("Shop", "critical", kinds=("id_number",)))
    assert report.risk.level == "critical"
    assert _codes(report) == ["open", "id_number", "recent"]
    assert report.risk.reasons[0].severity == "critical"
    assert report.risk.reasons[0].count == 1


def test_all_steps_done_lowers_one_level():
    steps = ("watch_for_phishing", "secure_email_accounts")
    report = _report(_exposure("Mail", "high", steps=steps))
    assert report.risk.level == "medium"
    assert "steps_done" in _codes(report)
    assert "open" not in _codes(report)


def test_unverified_breach_lowers_one_level():
    report = _report(_exposure("Forum", "high", verified=False))
    assert report.risk.level == "medium"
    assert "unverified" in _codes(report)


def test_uncatalogued_breach_counts_as_unverified():
    report = _report(_exposure("Unknown", "high", verified=None))
    assert report.risk.level == "medium"


def test_old_exposure_lowers_one_level():
    period_end = datetime(2026, 6, 1, tzinfo=SHANGHAI)
    report = _report(_exposure("Old", "high", period_end - timedelta(days=400)))
    assert report.risk.level == "medium"
    old = next(reason for reason in report.risk.reasons if reason.code == "old")
    assert old.days == 365
    assert "recent" not in _codes(report)


def test_reductions_stop_at_low():
    steps = ("watch_for_phishing", "secure_email_accounts")
    old = datetime(2024, 1, 1, tzinfo=SHANGHAI)
    report = _report(_exposure("Old", "medium", old, verified=False, steps=steps))
    assert report.risk.level == "low"


def test_many_serious_open_exposures_raise_one_level():
    serious = [_exposure(f"B{index}", "high") for index in range(MANY_SERIOUS)]
    report = _report(*serious)
    assert report.risk.level == "critical"
    assert "many_serious" in _codes(report)

    fewer = _report(*serious[:-1])
    assert fewer.risk.level == "high"
    assert "many_serious" not in _codes(fewer)


def test_under_review_is_counted_apart():
    report = _report(_exposure("Maybe", "high", status="pending_review"))
    assert report.risk.level == "low"
    assert report.under_review == 1
    assert _codes(report) == ["no_exposures", "under_review"]


def test_sample_report_risk():
    report = _sample_report()
    assert report.risk.level == "critical"
    assert _codes(report) == [
        "open", "open", "open", "id_number", "recent", "steps_done", "unverified", "old", "under_review",
    ]  # fmt: skip
    assert report.new_in_period == 1
    assert report.under_review == 1


# --- steps and checks -------------------------------------------------------------------------


def test_steps_done_after_period_end_do_not_count():
    found = datetime(2026, 4, 10, tzinfo=SHANGHAI)
    exposure = _exposure("Mail", "high", found, steps=("watch_for_phishing",))
    late = exposure.model_copy(
        update={
            "steps_done": (
                StepDone(
                    step_id="watch_for_phishing", done_at=datetime(2026, 6, 2, tzinfo=SHANGHAI)
                ),
            )
        }
    )
    assert _report(exposure, month="2026-04").exposures[0].done_count == 1
    assert _report(late, month="2026-05").exposures[0].done_count == 0


def test_next_steps_skip_done_steps():
    report = _sample_report()
    steps = {step.step_id: step for step in report.next_steps}
    # Done for the shop breach, still open for the year-end game breach.
    assert steps["check_phone_cards_and_accounts"].breach_titles == ("年终游戏",)
    # Done for MailCloud, and not part of any other open exposure.
    assert "change_reused_passwords" not in steps
    assert steps["watch_for_phishing"].breach_titles == ("MailCloud", "Old Forum <b>Archive</b>")
    # The critical exposure's steps come first.
    assert report.next_steps[0].severity == "critical"


def test_due_checks_lack_quarter_result():
    assert _sample_report().due_checks == ("bank_cards", "credit_report")


def test_check_changes_against_previous_month():
    changes = {change.check: change for change in _sample_report().check_changes}
    assert changes["yizhengtongcha"].status == "changed"
    assert changes["yizhengtongcha"].changes == (("phone_cards", 2, 3),)
    assert changes["bank_cards"].status == "not_updated"
    assert "credit_report" not in changes


def test_check_changes_new_and_same():
    first = CheckResult(
        check="bank_cards",
        quarter="2026q1",
        counts={"bank_cards": 4},
        recorded_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    again = first.model_copy(
        update={"quarter": "2026q2", "recorded_at": datetime(2026, 5, 2, tzinfo=UTC)}
    )
    assert _report(checks=[first], month="2026-03").check_changes[0].status == "new"
    assert _report(checks=[first, again]).check_changes[0].status == "same"


def test_check_changes_use_shown_results():
    previous_report_result = CheckResult(
        check="yizhengtongcha",
        quarter="2026q2",
        counts={"phone_cards": 1, "internet_accounts": 5},
        recorded_at=datetime.fromtimestamp(epoch(2026, 4, 2, 9), UTC),
    )
    partition, related = sample_records()
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    report = assess_report(report_data(facts, "2026-05", GENERATED_AT, [previous_report_result]))
    change = next(change for change in report.check_changes if change.check == "yizhengtongcha")
    assert change.changes == (("phone_cards", 1, 3),)
    assert next(c for c in report.check_changes if c.check == "bank_cards").status == "new"


def test_period_steps_and_deliveries():
    report = _sample_report()
    assert [(event.step_id, event.breach_title) for event in report.steps_in_period] == [
        ("check_phone_cards_and_accounts", "示例商城"),
        ("change_reused_passwords", "MailCloud"),
        ("enable_two_step_verification", "MailCloud"),
    ]
    assert [(d.alert_id, d.channel, d.status) for d in report.deliveries] == [
        ("alt_shop", "email", "sent"),
        ("alt_shop", "sms", "delivered"),
    ]
