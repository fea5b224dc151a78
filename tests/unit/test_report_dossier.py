"""The incident dossier: timeline, evidence, steps taken, selection, both locales, PDF text."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pypdf
import pytest

from idsentry.reports import pdf as pdf_module
from idsentry.reports.document import Facts, Heading, Table
from idsentry.reports.dossier import dossier_document, reference
from idsentry.reports.html import render_html
from idsentry.reports.model import DossierData, ReportDataError, from_records
from idsentry.reports.pdf import render_pdf
from infra.tools.report_samples import GENERATED_AT, MASKED, SUBSCRIBER_ID, sample_records
from tests.unit.test_report_pdf import add_font_with_every_character

pytestmark = pytest.mark.unit

RAW_ID_NUMBER = "11010519491231002X"


def _data(locale: str = "zh-CN", **options) -> DossierData:
    partition, related = sample_records(locale)
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    return DossierData(
        facts=facts, generated_at=options.pop("generated_at", GENERATED_AT), **options
    )


def _blocks(document, kind):
    return [block for block in document.blocks if isinstance(block, kind)]


def _timeline(document) -> Table:
    headings = [index for index, block in enumerate(document.blocks) if isinstance(block, Heading)]
    index = next(i for i in headings if document.blocks[i].text in ("时间线", "Timeline"))
    return document.blocks[index + 1]


def test_covers_confirmed_exposures_only():
    document = dossier_document(_data("en"))
    subsections = [block.text for block in _blocks(document, Heading) if block.level == 3]
    assert subsections == [
        "Old Forum <b>Archive</b>",
        "年终游戏",
        "New Year Tickets",
        "MailCloud",
        "示例商城",
    ]


def test_timeline_in_order_with_local_times():
    rows = _timeline(dossier_document(_data("zh-CN"))).rows
    times = [row[0] for row in rows]
    assert times == sorted(times)
    shop = [row for row in rows if row[1] == "示例商城"]
    assert [row[0] for row in shop] == [
        "2026-04-20",
        "2026-05-02 16:00",
        "2026-05-03 10:15",
        "2026-05-03 10:16",
        "2026-05-03 10:20",
        "2026-05-03 10:21",
        "2026-05-04 20:30",
    ]
    assert [row[2] for row in shop] == [
        "示例商城 发生数据泄露",
        "示例商城 的泄露事件被收录进泄露数据库",
        "在 示例商城 的泄露数据中发现您的身份证号 1101**********100X、手机号 195****0001",
        "系统规则确认泄露（严重程度：严重）",
        "通过电子邮件发送提醒：已发送",
        "通过短信发送提醒：已送达",
        "完成步骤：查名下手机卡和互联网账号",
    ]


def test_english_timeline_and_analyst_confirmation():
    rows = _timeline(dossier_document(_data("en"))).rows
    mail = [row[2] for row in rows if row[1] == "MailCloud"]
    assert "Exposure confirmed by an analyst (severity: High)" in mail
    assert "Alert by E-mail: Bounced" in mail
    assert "Your e-mail address z***@example.com found in the MailCloud breach data" in mail


def test_evidence_of_a_breach():
    document = dossier_document(_data("zh-CN", breach_names=("ExampleShop",)))
    evidence = dict(_blocks(document, Facts)[-1].rows)
    assert evidence["事件名称"] == "示例商城 (ExampleShop)"
    assert evidence["网站"] == "shop.example.cn"
    assert evidence["泄露日期"] == "2026-04-20"
    assert evidence["收录日期"] == "2026-05-02"
    assert evidence["涉及账户数"] == "1,250,000"
    assert evidence["泄露的数据类型"] == "身份证号、手机号、姓名、地址"
    assert evidence["核实情况"] == "已核实"
    assert evidence["来源"] == "身份哨兵收录的泄露数据集"
    assert evidence["发现方式"] == "收录新的泄露数据时比对发现"
    assert evidence["涉及的身份信息"] == "身份证号 1101**********100X\n手机号 195****0001"
    assert evidence["确认方式"] == "系统规则自动确认"


def test_steps_taken_with_dates():
    document = dossier_document(_data("en"))
    steps = _blocks(document, Table)[-1]
    assert steps.rows[0] == (
        "2026-01-02 09:00",
        "Watch for fraud calls and texts",
        "New Year Tickets",
    )
    assert (
        "2026-05-04 20:30",
        "Check the phone cards and internet accounts under your ID",
        "示例商城",
    ) in steps.rows
    assert len(steps.rows) == 6


def test_selection_of_breaches():
    document = dossier_document(_data("en", breach_names=("MailCloud",)))
    rows = _timeline(document).rows
    assert {row[1] for row in rows} == {"MailCloud"}
    assert "1 breach, found on 2026-02-14." in render_html(document)


def test_unknown_or_unconfirmed_breach_is_rejected():
    with pytest.raises(ReportDataError, match="breach_names: SpamList is not a confirmed exposure"):
        dossier_document(_data(breach_names=("SpamList",)))
    with pytest.raises(ReportDataError, match="Nowhere"):
        dossier_document(_data(breach_names=("Nowhere",)))


def test_events_after_generation_are_left_out():
    early = datetime(2026, 5, 3, 2, 18, tzinfo=UTC)  # 10:18 in China, before the alert e-mail
    rows = _timeline(dossier_document(_data("en", generated_at=early))).rows
    shop = [row[2] for row in rows if row[1] == "示例商城"]
    assert shop[-1] == "Exposure confirmed by the rules (severity: Critical)"


def test_audience_and_reference():
    police = _data("zh-CN", audience="police")
    bank = _data("zh-CN", audience="bank")
    assert dossier_document(police).subtitle == "供向公安机关报案使用"
    assert dossier_document(bank).subtitle == "供向银行说明情况使用"
    assert reference(police) == reference(_data("zh-CN", audience="police"))
    assert reference(police) != reference(bank)
    assert reference(police).startswith("DOS-")


def test_no_confirmed_exposures():
    partition, related = sample_records("en")
    for sk in [sk for sk in partition if sk.startswith("ALERT#")]:
        del partition[sk]
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    page = render_html(dossier_document(DossierData(facts=facts, generated_at=GENERATED_AT)))
    assert "There are no confirmed exposures to include." in page


def test_pdf_text_and_determinism():
    data = _data("zh-CN", audience="police")
    document = render_pdf(dossier_document(data))
    assert render_pdf(dossier_document(data)) == document
    reader = pypdf.PdfReader(io.BytesIO(document))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in (
        "个人信息泄露情况说明材料",
        "供向公安机关报案使用",
        "时间线",
        "泄露事件证据",
        "已采取的措施",
        "1101**********100X",
        "z***@example.com",
        SUBSCRIBER_ID,
    ):
        assert expected in text, expected
    assert RAW_ID_NUMBER not in text


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_font_range_gives_same_pdf(locale, monkeypatch):
    document = dossier_document(_data(locale))
    ranged = render_pdf(document)
    monkeypatch.setattr(pdf_module, "_add_font", add_font_with_every_character)
    assert render_pdf(document) == ranged


def test_english_pdf_text():
    document = render_pdf(dossier_document(_data("en", audience="carrier")))
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(document)).pages)
    assert "Incident dossier" in text
    assert "For your mobile carrier" in text
    assert "Breach evidence" in text
    assert "个人信息泄露情况说明材料" not in text
