"""The bought in-depth report: history since signup, per identifier and breach, plan, HTML and PDF."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pypdf
import pytest

from idsentry.reports.assess import ChartMonth
from idsentry.reports.chart import MAX_MONTH_LABELS, layout_chart
from idsentry.reports.deep import assess_deep_report
from idsentry.reports.deep_document import deep_document
from idsentry.reports.document import Entries, Facts, Heading, Table
from idsentry.reports.html import render_html
from idsentry.reports.model import (
    DeepReportData,
    ReportDataError,
    deep_report_data,
    from_records,
)
from idsentry.reports.pdf import render_pdf
from idsentry.services.risk import Severity
from infra.tools.report_samples import (
    GENERATED_AT,
    MASKED,
    SHANGHAI,
    SUBSCRIBER_ID,
    epoch,
    sample_records,
)

pytestmark = pytest.mark.unit

RAW_ID_NUMBER = "11010519491231002X"
SIGNED_UP = datetime(2025, 1, 10, 9, tzinfo=SHANGHAI)
PURCHASED_AT = datetime(2026, 5, 31, 23, 0, tzinfo=UTC)  # 07:00 on 1 June in China
SECTIONS_ZH = (
    "全部记录概况",
    "行动计划（按紧急程度排列）",
    "自开通服务以来每月发现的泄露记录",
    "每项身份信息的泄露情况",
    "泄露事件详情",
    "全部泄露记录",
    "提醒发送记录",
    "自查记录",
    "监控中的身份信息",
)
SECTIONS_EN = (
    "Your record at a glance",
    "Action plan, most urgent first",
    "Exposures found each month since you signed up",
    "Exposures by identifier",
    "Breach details",
    "Every exposure found",
    "Alert delivery history",
    "Your check results",
    "Identifiers we watch",
)


def _data(locale: str = "zh-CN", change=None, since: datetime = SIGNED_UP) -> DeepReportData:
    partition, related = sample_records(locale)
    if change:
        change(partition, related)
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    return deep_report_data(facts, GENERATED_AT, since, PURCHASED_AT)


def _pdf_text(document: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(document))
    return "\n".join(page.extract_text() for page in reader.pages)


def _section(document, title: str):
    """Return the blocks between the level-2 heading `title` and the next level-2 heading."""
    blocks = list(document.blocks)
    start = next(
        index
        for index, block in enumerate(blocks)
        if isinstance(block, Heading) and block.level == 2 and block.text == title
    )
    end = next(
        (
            index
            for index in range(start + 1, len(blocks))
            if isinstance(blocks[index], Heading) and blocks[index].level == 2
        ),
        len(blocks),
    )
    return blocks[start + 1 : end]


@pytest.fixture(scope="module")
def chinese_pdf() -> bytes:
    return render_pdf(deep_document(_data("zh-CN")))


@pytest.fixture(scope="module")
def english_pdf() -> bytes:
    return render_pdf(deep_document(_data("en")))


# --- assessment ------------------------------------------------------------------------------


def test_history_covers_since_signup():
    report = assess_deep_report(_data())

    assert report.start == SIGNED_UP
    assert [month.key for month in report.months][:2] == ["2025-01", "2025-02"]
    assert report.months[-1].key == "2026-06"
    assert len(report.months) == 18
    assert sum(month.total for month in report.months) == 5
    by_key = {month.key: month for month in report.months}
    assert by_key["2025-03"].counts[Severity.MEDIUM] == 1
    assert by_key["2026-05"].counts[Severity.CRITICAL] == 1


def test_history_lists_every_status():
    report = assess_deep_report(_data())

    assert [exposure.breach.name for exposure in report.history] == [
        "OldForum",
        "YearEndGame",
        "NewYearTickets",
        "MailCloud",
        "SpamList",
        "ExampleShop",
        "Telecom2026",
    ]
    assert (len(report.exposures), report.under_review, report.dismissed) == (5, 1, 1)


def test_exposure_before_signup_moves_start():
    report = assess_deep_report(_data(since=datetime(2025, 6, 1, tzinfo=SHANGHAI)))

    assert report.start == datetime.fromtimestamp(epoch(2025, 3, 1, 12), UTC)
    assert report.months[0].key == "2025-03"


def test_identifier_breakdown():
    report = assess_deep_report(_data())
    by_kind = {history.identifier.kind.value: history for history in report.identifiers}

    id_number = by_kind["id_number"]
    assert id_number.identifier.masked == MASKED["id_number"]
    assert [exposure.breach.name for exposure in id_number.exposures] == ["ExampleShop"]
    assert id_number.data_classes == ("身份证号", "手机号", "姓名", "收货地址")

    mobile = by_kind["mobile"]
    assert [exposure.breach.name for exposure in mobile.exposures] == [
        "YearEndGame",
        "NewYearTickets",
        "ExampleShop",
    ]
    assert mobile.first_found == datetime.fromtimestamp(epoch(2025, 12, 31, 23, 30), UTC)
    assert mobile.last_found == datetime.fromtimestamp(epoch(2026, 5, 3, 10, 15), UTC)

    email = by_kind["email"]
    assert [exposure.breach.name for exposure in email.exposures] == ["OldForum", "MailCloud"]
    # Dismissed and still-reviewed exposures are not part of the breakdown.
    assert "SpamList" not in {exposure.breach.name for exposure in email.exposures}


def test_action_plan_most_urgent_first():
    report = assess_deep_report(_data())
    plan = {step.step_id: step for step in report.plan}

    assert [step.priority for step in report.plan] == sorted(
        (step.priority for step in report.plan), key=("now", "week", "month", "quarter").index
    )
    assert report.plan[0].step_id == "check_bank_cards_and_credit"
    assert report.plan[0].level == Severity.CRITICAL
    # Open for two breaches: the critical shop sets its urgency and the older one its date.
    fraud_calls = plan["watch_for_fraud_calls"]
    assert fraud_calls.priority == "now"
    assert fraud_calls.breach_titles == ("年终游戏", "示例商城")
    assert fraud_calls.open_since == datetime.fromtimestamp(epoch(2025, 12, 31, 23, 31), UTC)
    # Done for the shop, still open for the medium year-end breach only.
    phone_cards = plan["check_phone_cards_and_accounts"]
    assert (phone_cards.priority, phone_cards.breach_titles) == ("week", ("年终游戏",))
    # Every step of the tickets breach is done, and the password steps of the mail breach.
    assert "change_reused_passwords" not in plan
    assert report.due_checks == ("bank_cards", "credit_report")


def test_delivery_counts():
    report = assess_deep_report(_data())

    assert [delivery.status for delivery in report.deliveries] == ["bounced", "sent", "delivered"]
    assert (report.sent_count, report.undelivered_count) == (3, 1)


def test_since_after_generation_rejected():
    partition, related = sample_records()
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)

    with pytest.raises(ReportDataError, match="since must not be after generated_at"):
        deep_report_data(facts, GENERATED_AT, datetime(2026, 7, 1, tzinfo=UTC), PURCHASED_AT)


# --- layout ----------------------------------------------------------------------------------


def test_layout_sections_in_order():
    for locale, sections in (("zh-CN", SECTIONS_ZH), ("en", SECTIONS_EN)):
        document = deep_document(_data(locale))
        headings = [
            block.text
            for block in document.blocks
            if isinstance(block, Heading) and block.level == 2
        ]
        # The chart draws its own heading.
        expected = [
            title for title in sections if "每月" not in title and "each month" not in title
        ]
        assert headings == expected, locale


def test_summary_figures():
    document = deep_document(_data())
    summary = _section(document, "全部记录概况")[0]

    assert isinstance(summary, Facts)
    assert dict(summary.rows) == {
        "监控中的身份信息": "3",
        "已确认的泄露记录": "5",
        "还有步骤没有完成的泄露记录": "4",
        "正在核实的疑似记录": "1",
        "核实后排除的疑似记录": "1",
        "已完成的建议步骤": "6 / 20",
        "已发送的提醒": "3",
        "其中没有送达的提醒": "1",
    }


def test_breach_steps_with_dates():
    document = deep_document(_data("en"))
    blocks = _section(document, "Breach details")
    shop = next(
        index
        for index, block in enumerate(blocks)
        if isinstance(block, Heading) and block.text == "示例商城"
    )
    steps = blocks[shop + 2]

    assert isinstance(steps, Table)
    rows = {row[0]: row[1:] for row in steps.rows}
    assert rows["Check the phone cards and internet accounts under your ID"] == (
        "Done",
        "Done on 2026-05-04",
    )
    assert rows["Check the bank cards and the credit report under your name"] == (
        "To do",
        "Open since 2026-05-03, 28 days",
    )


def test_plan_entries_name_urgency():
    document = deep_document(_data())
    plan = _section(document, "行动计划（按紧急程度排列）")[0]

    assert isinstance(plan, Entries)
    assert plan.items[0].title == "【立即处理】查名下银行卡和个人信用报告"
    assert plan.items[0].lines[0] == "涉及 1 起泄露事件，风险为“严重”，自 2026-05-03 起待完成。"
    assert plan.items[-1].title.startswith("【本季度内完成】")


def test_no_exposures_empty_sections():
    def clear(partition, related):
        for sk in list(partition):
            if sk.startswith(("EXPOSURE#", "ALERT#", "PLAYBOOK#", "CHECK#")):
                del partition[sk]

    page = render_html(deep_document(_data("en", clear)))

    for expected in (
        "No exposures were found since you signed up.",
        "There are no confirmed exposures.",
        "This identifier is in no confirmed exposure.",
        "No alerts have been sent.",
        "You have not recorded any check results yet.",
    ):
        assert expected in page, expected


# --- HTML and PDF ----------------------------------------------------------------------------


def test_chinese_html_content():
    page = render_html(deep_document(_data("zh-CN")))

    assert '<html lang="zh-CN">' in page
    for expected in (
        "身份哨兵深度安全报告",
        "截至 2026-06-01",
        "覆盖范围：2025-01-10 至 2026-06-01，自开通服务以来的全部记录",
        "购买时间：2026-06-01 07:00",
        *SECTIONS_ZH,
        "身份证号 1101**********100X",
        "手机号 195****0001",
        "电子邮箱 z***@example.com",
        "这些事件泄露的数据类型",
        "电子邮箱、Usernames、密码",
        "自 2025-03-01 起，已 456 天",
        "一证通查：名下手机卡和互联网账号",
        "被退回",
    ):
        assert expected in page, expected
    assert RAW_ID_NUMBER not in page
    # A hostile breach title is escaped.
    assert "Old Forum &lt;b&gt;Archive&lt;/b&gt;" in page


def test_english_html_content():
    page = render_html(deep_document(_data("en")))

    assert '<html lang="en">' in page
    for expected in (
        "IDSentry in-depth security report",
        "As of 2026-06-01",
        *SECTIONS_EN,
        "Do now: Check the bank cards and the credit report under your name",
        "Open for 2 breaches, the most serious at critical risk, since 2025-12-31.",
        "First found",
        "Under review",
        "Ruled out",
    ):
        assert expected in page, expected


def test_chinese_pdf_titles_extractable(chinese_pdf):
    text = _pdf_text(chinese_pdf)

    for expected in (
        "身份哨兵深度安全报告",
        *SECTIONS_ZH,
        "1101**********100X",
        "195****0001",
        "z***@example.com",
        "【立即处理】查名下银行卡和个人信用报告",
        "首次发现 2025-12-31",
    ):
        assert expected in text, expected
    assert RAW_ID_NUMBER not in text


def test_english_pdf_titles_extractable(english_pdf):
    text = _pdf_text(english_pdf)

    for expected in ("IDSentry in-depth security report", *SECTIONS_EN, "1101**********100X"):
        assert expected in text, expected


def test_pdf_is_deterministic(chinese_pdf):
    assert render_pdf(deep_document(_data("zh-CN"))) == chinese_pdf


# --- the chart over a long history -----------------------------------------------------------


def test_long_history_labels_thinned():
    months = tuple(ChartMonth(2022 + index // 12, index % 12 + 1) for index in range(40))

    layout = layout_chart(months, "zh-CN")

    month_labels = [label for label in layout.labels if label.text.endswith("月")]
    assert len(month_labels) <= MAX_MONTH_LABELS
    years = [label.text for label in layout.labels if label.text.isdigit() and len(label.text) == 4]
    assert years == ["2022", "2023", "2024", "2025"]
