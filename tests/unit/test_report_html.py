"""The HTML report: content in both locales, local times, escaping, no scripts, determinism."""

from __future__ import annotations

import re

import pytest

from idsentry.reports.document import report_document
from idsentry.reports.html import render_html
from idsentry.reports.model import from_records, report_data
from infra.tools.report_samples import (
    GENERATED_AT,
    MASKED,
    REPORT_MONTH,
    SUBSCRIBER_ID,
    sample_records,
)

pytestmark = pytest.mark.unit

HOSTILE_TITLE = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp;"\''
RAW_ID_NUMBER = "11010519491231002X"


def _html(locale: str = "zh-CN", zone: str = "Asia/Shanghai", partition_changes=None) -> str:
    partition, related = sample_records(locale)
    partition["PREFS"]["timezone"] = zone
    if partition_changes:
        partition_changes(partition, related)
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    return render_html(report_document(report_data(facts, REPORT_MONTH, GENERATED_AT)))


def test_chinese_report_content():
    page = _html("zh-CN")
    assert '<html lang="zh-CN">' in page
    for expected in (
        "身份哨兵月度安全报告",
        "2026年5月",
        "报告期：2026-05-01 至 2026-05-31",
        "生成时间：2026-06-01 09:00",
        "总体风险等级",
        "严重",
        "1 条严重程度为“严重”的泄露记录还有建议步骤没有完成。",
        "1101**********100X",
        "195****0001",
        "z***@example.com",
        "示例商城",
        "查名下手机卡和互联网账号",
        "一证通查：名下手机卡和互联网账号：手机卡从 2 变为 3",
        "本期提醒发送记录",
        "已送达",
    ):
        assert expected in page, expected


def test_english_report_content():
    page = _html("en")
    assert '<html lang="en">' in page
    for expected in (
        "IDSentry monthly security report",
        "May 2026",
        "Period: 2026-05-01 to 2026-05-31",
        "Overall risk level",
        "1 exposure of critical severity still has steps to do.",
        "2 exposures of medium severity still have steps to do.",
        "1101**********100X",
        "Check the phone cards and internet accounts under your ID",
        "Delivered",
        "Sent",
    ):
        assert expected in page, expected
    assert "身份哨兵月度安全报告" not in page


def test_summary_figures():
    page = _html("en")
    assert "<dt>Confirmed exposures (to the end of the period)</dt><dd>5</dd>" in page
    assert "<dt>Found in this period</dt><dd>1</dd>" in page
    assert "<dt>Possible matches under review</dt><dd>1</dd>" in page
    assert "<dt>Recommended steps done</dt><dd>6 of 20</dd>" in page


def test_dates_and_times_in_subscriber_time_zone():
    shanghai = _html("en", "Asia/Shanghai")
    new_york = _html("en", "America/New_York")
    # Found 2026-05-03 10:15 in China, which is 2026-05-02 22:15 in New York.
    assert '<td data-label="Date known">2026-05-03</td>' in shanghai
    assert '<td data-label="Date known">2026-05-02</td>' in new_york
    # The step done at 20:30 in China on 4 May is 08:30 the same day in New York.
    assert "2026-05-04 20:30" in shanghai
    assert "2026-05-04 08:30" in new_york
    assert "America/New_York" in new_york


def test_steps_table_and_progress():
    page = _html("en")
    assert '<td data-label="Steps done">1 of 8</td>' in page
    assert '<td data-label="Status">In progress</td>' in page
    assert '<td data-label="Steps done">3 of 3</td>' in page
    assert "Change the leaked and reused passwords" in page


def test_hostile_breach_title_is_escaped():
    def hostile(partition, related):
        related[("BREACH#ExampleShop", "BREACH")]["title"] = HOSTILE_TITLE

    page = _html("en", partition_changes=hostile)
    assert "<script" not in page
    assert "<img" not in page
    assert "onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&amp;amp;" in page


def test_page_loads_nothing_external():
    page = _html()
    assert "<script" not in page
    assert "src=" not in page
    assert "@import" not in page
    assert "url(" not in page
    assert "default-src 'none'" in page
    assert 'name="viewport"' in page
    # The only links are the playbook's official services.
    assert set(re.findall(r'href="([^"]+)"', page)) <= {
        "https://getsimnum.caict.ac.cn",
        "https://ipcrs.pbccrc.org.cn",
        "https://www.pbccrc.org.cn",
    }


def test_chart_svg_has_accessible_text():
    page = _html("en")
    assert 'role="img" aria-labelledby="chart-title chart-desc"' in page
    assert '<title id="chart-title">Exposures found in the last 12 months</title>' in page
    assert "from June 2025 to May 2026, coloured by severity: 4 in total." in page
    assert "<title>May 2026: 1 in total (Critical 1, High 0, Medium 0, Low 0)</title>" in page
    assert page.count("<rect ") == 4 + 4  # four bars and four legend squares
    assert "<summary>Chart data</summary>" in page


def test_rendering_is_deterministic():
    assert _html() == _html()
    assert _html("en") == _html("en")


def test_raw_identifier_never_appears():
    def plant(partition, related):
        # Records contain ciphertext and fingerprints only. A raw value planted where a careless
        # renderer might print it shows that the report never reads those fields.
        partition["IDENT#id_number"]["value"] = RAW_ID_NUMBER
        partition["EXPOSURE#ExampleShop"]["raw_value"] = RAW_ID_NUMBER

    for locale in ("zh-CN", "en"):
        assert RAW_ID_NUMBER not in _html(locale, partition_changes=plant)


def test_empty_report_sections():
    def nothing(partition, related):
        for sk in [sk for sk in partition if not sk.startswith(("PROFILE", "PREFS", "IDENT#"))]:
            del partition[sk]

    page = _html("en", partition_changes=nothing)
    assert "There are no confirmed exposures up to the end of the period." in page
    assert "No alerts were sent in this period." in page
    assert "You have not recorded any check results yet." in page
    assert ">Low<" in page
