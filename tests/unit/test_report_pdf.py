"""The PDF report: extractable Chinese and English text, determinism, the font, no raw identifiers."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pypdf
import pytest

from idsentry.reports import pdf as pdf_module
from idsentry.reports.document import (
    Chart,
    Column,
    Document,
    Heading,
    Paragraph,
    Table,
    report_document,
)
from idsentry.reports.model import from_records, report_data
from idsentry.reports.pdf import REPLACEMENT_CHARACTER, drawable, drawn_codepoints, render_pdf
from infra.tools.report_samples import (
    GENERATED_AT,
    MASKED,
    REPORT_MONTH,
    SUBSCRIBER_ID,
    sample_records,
)

pytestmark = pytest.mark.unit

RAW_ID_NUMBER = "11010519491231002X"


def _pdf(locale: str = "zh-CN", change=None) -> bytes:
    partition, related = sample_records(locale)
    if change:
        change(partition, related)
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    return render_pdf(report_document(report_data(facts, REPORT_MONTH, GENERATED_AT)))


def _extract(document: bytes) -> tuple[pypdf.PdfReader, str]:
    reader = pypdf.PdfReader(io.BytesIO(document))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture(scope="module")
def chinese() -> bytes:
    return _pdf("zh-CN")


@pytest.fixture(scope="module")
def english() -> bytes:
    return _pdf("en")


def test_chinese_text_is_extractable(chinese):
    _, text = _extract(chinese)
    for expected in (
        "身份哨兵月度安全报告",
        "2026年5月",
        "报告期：2026-05-01 至 2026-05-31",
        "总体风险等级",
        "您的身份信息面临严重风险，请尽快完成下面建议的步骤。",
        "1 条严重程度为“严重”的泄露记录还有建议步骤没有完成。",
        "已确认的泄露记录（截至期末） 5",
        "1101**********100X",
        "195****0001",
        "z***@example.com",
        "示例商城",
        "查名下银行卡和个人信用报告",
        "2026-05-04 20:30",
        "已送达",
        "第 1 页，共 3 页",
    ):
        assert expected in text, expected


def test_english_text_is_extractable(english):
    _, text = _extract(english)
    for expected in (
        "IDSentry monthly security report",
        "May 2026",
        "Overall risk level",
        "1 exposure of critical severity still has steps to do.",
        "Confirmed exposures (to the end of the period) 5",
        "1101**********100X",
        "Delivered",
        "Page 1 of",
    ):
        assert expected in text, expected
    assert "身份哨兵月度安全报告" not in text


def test_metadata_from_the_document(chinese):
    reader, _ = _extract(chinese)
    assert reader.metadata["/Title"] == "身份哨兵月度安全报告 2026年5月"
    assert reader.metadata["/CreationDate"] == "D:20260601010000Z"
    assert reader.pdf_header.startswith("%PDF-")


def test_same_data_gives_same_bytes(chinese, english):
    assert _pdf("zh-CN") == chinese
    assert _pdf("en") == english


def test_other_generation_time_changes_bytes(chinese):
    partition, related = sample_records()
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    later = datetime(2026, 6, 2, 1, tzinfo=UTC)
    assert render_pdf(report_document(report_data(facts, REPORT_MONTH, later))) != chinese


def test_bundled_font_is_embedded(chinese):
    reader, _ = _extract(chinese)
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    assert fonts == {"/MPDFAA+NotoSansSCSubset"}


def test_chart_is_drawn_as_vector_rectangles(chinese):
    reader, _ = _extract(chinese)
    content = reader.pages[0].get_contents().get_data().decode("latin-1")
    # Four bars and four legend squares, filled in the severity colours.
    assert content.count(" re f") >= 8
    assert "0.498 0.1137 0.1137 rg" in content  # critical, #7f1d1d


def test_characters_outside_font_are_replaced():
    text, replaced = drawable("Kafé 한국 网站\nok", frozenset(map(ord, "Kafé 网站ok")))
    assert text == f"Kafé {REPLACEMENT_CHARACTER}{REPLACEMENT_CHARACTER} 网站\nok"
    assert replaced == 2


def test_title_outside_font_still_renders():
    def korean(partition, related):
        related[("BREACH#ExampleShop", "BREACH")]["title"] = "한국 쇼핑"

    _, text = _extract(_pdf("zh-CN", korean))
    assert f"{REPLACEMENT_CHARACTER * 2} {REPLACEMENT_CHARACTER * 2}" in text


def _fonts_loaded(monkeypatch, locale, change=None) -> tuple[list[str], bytes]:
    loaded: list[str] = []
    real_font_path = pdf_module.font_path

    def recording(resource=pdf_module.FULL_FONT):
        loaded.append(resource)
        return real_font_path(resource)

    monkeypatch.setattr(pdf_module, "font_path", recording)
    return loaded, _pdf(locale, change)


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_common_text_loads_common_font(locale, monkeypatch):
    loaded, _ = _fonts_loaded(monkeypatch, locale)
    assert loaded == [pdf_module.COMMON_FONT]


@pytest.mark.parametrize(
    "title",
    [
        pytest.param("鬻犭商城", id="gb2312-level-two"),
        pytest.param("堃喆玥商城", id="outside-gb2312"),
    ],
)
def test_rare_hanzi_loads_full_font(title, monkeypatch):
    # Only the full subset has these: 鬻 and 犭 are level-2 hanzi of GB 2312, while 堃, 喆 and
    # 玥 (common in names) are outside GB 2312.
    def rare(partition, related):
        related[("BREACH#ExampleShop", "BREACH")]["title"] = title

    loaded, document = _fonts_loaded(monkeypatch, "zh-CN", rare)
    _, text = _extract(document)
    assert loaded == [pdf_module.COMMON_FONT, pdf_module.FULL_FONT]
    assert title in text
    assert REPLACEMENT_CHARACTER not in text


def test_script_outside_both_fonts_loads_common_font(monkeypatch):
    # The full subset has no Korean either, so loading it would change nothing.
    def korean(partition, related):
        related[("BREACH#ExampleShop", "BREACH")]["title"] = "한국 쇼핑"

    loaded, _ = _fonts_loaded(monkeypatch, "zh-CN", korean)
    assert loaded == [pdf_module.COMMON_FONT]


def test_raw_identifier_never_appears():
    def plant(partition, related):
        partition["IDENT#id_number"]["value"] = RAW_ID_NUMBER

    for locale in ("zh-CN", "en"):
        document = _pdf(locale, plant)
        _, text = _extract(document)
        assert RAW_ID_NUMBER not in text
        assert RAW_ID_NUMBER.encode() not in document


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_own_widths_give_same_pdf(locale, monkeypatch):
    # The writer sums glyph advances itself instead of calling fpdf2's get_string_width. The PDF
    # must come out byte for byte as if fpdf2 had measured every string.
    own = _pdf(locale)
    monkeypatch.setattr(
        pdf_module._Writer, "width_of", lambda writer, value: writer.pdf.get_string_width(value)
    )
    assert _pdf(locale) == own


def _placements(document: bytes) -> list[tuple[int, str, float, float] | tuple[int, tuple, str]]:
    """Return every piece of text with its position, and every link with its rectangle, by page."""
    found: list = []
    for number, page in enumerate(pypdf.PdfReader(io.BytesIO(document)).pages):

        def visit(value, cm, tm, font, size, number=number):
            if value.strip():
                found.append((number, value, round(tm[4], 2), round(tm[5], 2)))

        page.extract_text(visitor_text=visit)
        for annotation in page.get("/Annots", []):
            link = annotation.get_object()
            found.append((number, tuple(float(v) for v in link["/Rect"]), link["/A"]["/URI"]))
    return found


def _draw_lines_with_cells(writer, lines, x, y, size, color, link=""):
    # The way the writer drew lines before: one fpdf2 cell per line.
    writer.pdf.set_font(pdf_module._FAMILY, size=size)
    writer.pdf.set_text_color(*pdf_module._rgb(color))
    height = writer.line_height(size)
    for index, line in enumerate(lines):
        writer.pdf.set_xy(x, y + index * height)
        writer.pdf.cell(writer.width, height, line, link=link)
    return height * len(lines)


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_lines_and_links_sit_where_cells_put_them(locale, monkeypatch):
    # The writer draws text without fpdf2's cells. Every string and link must land where a cell
    # would have put it.
    drawn = _placements(_pdf(locale))
    monkeypatch.setattr(pdf_module._Writer, "draw_lines", _draw_lines_with_cells)
    with_cells = _placements(_pdf(locale))
    assert any(len(placement) == 3 for placement in drawn)
    assert drawn == with_cells


def add_font_with_every_character(pdf, family, resource, codepoints):
    """Load the widths of every character of the font, as fpdf2 does without a range."""
    pdf.add_font(family, "", str(pdf_module.font_path(resource)))
    return pdf.fonts[family.lower()]


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_font_range_gives_same_pdf(locale, monkeypatch):
    # The font loads only the characters the document can draw. The PDF must come out byte for
    # byte as with every character of the font loaded.
    ranged = _pdf(locale)
    monkeypatch.setattr(pdf_module, "_add_font", add_font_with_every_character)
    assert _pdf(locale) == ranged


def test_character_outside_range_raises(monkeypatch):
    # 泄 is in the font. Left out of the collected characters, it must not print as □ silently.
    def without_leak(document):
        return [code for code in drawn_codepoints(document) if code != ord("泄")]

    monkeypatch.setattr(pdf_module, "drawn_codepoints", without_leak)
    with pytest.raises(RuntimeError, match="U\\+6CC4"):
        _pdf("zh-CN")


def test_own_width_equals_fpdf_width():
    document = report_document(
        report_data(
            from_records(SUBSCRIBER_ID, *sample_records("zh-CN"), MASKED),
            REPORT_MONTH,
            GENERATED_AT,
        )
    )
    page = pdf_module._Pages(document)
    page.add_font("Sample", "", str(pdf_module.font_path()))
    writer = pdf_module._Writer(page, page.fonts["sample"])
    for size in (8.5, 10, 13.7):
        page.set_font("Sample", size=size)
        for value in ("身份证号 1101**********100X", "z***@example.com", "“（泄露）”，", " "):
            assert writer.width_of(value) == page.get_string_width(value)


def _pages_text(document: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(document)).pages]


@pytest.mark.parametrize("filler", range(30, 42))
def test_heading_and_header_stay_with_first_row(filler):
    # Filler paragraphs move the heading down the first page line by line, so in one of the
    # cases it lands just above the bottom. The heading, the table's header and its first
    # (six-line) row must then start the next page together.
    document = Document(
        locale="en",
        title="Layout",
        subtitle="Keep together",
        meta=(),
        blocks=(
            *(Paragraph(f"Filler paragraph {index}.") for index in range(filler)),
            Heading("Exposures"),
            Table(
                columns=(Column("Identifier", 1), Column("Breach", 2)),
                rows=(("first-row", "one\ntwo\nthree\nfour\nfive\nsix"),),
                empty="None.",
            ),
        ),
        footer="End.",
        created_at=GENERATED_AT,
    )
    pages = _pages_text(render_pdf(document))
    with_heading = [index for index, text in enumerate(pages) if "Exposures" in text]
    with_header = [index for index, text in enumerate(pages) if "Identifier" in text]
    with_row = [index for index, text in enumerate(pages) if "first-row" in text and "six" in text]
    assert with_heading == with_header == with_row


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_column_labels_fit_one_line(locale):
    # A Chinese label broken inside a word ("已完成步 / 骤") reads badly, so every column of the
    # report's tables must be wide enough for its label.
    document = report_document(
        report_data(
            from_records(SUBSCRIBER_ID, *sample_records(locale), MASKED),
            REPORT_MONTH,
            GENERATED_AT,
        )
    )
    page = pdf_module._Pages(document)
    font = pdf_module.add_report_font(
        page, pdf_module._FAMILY, pdf_module.drawn_codepoints(document)
    )
    writer = pdf_module._Writer(page, font)
    broken = []
    for block in document.blocks:
        if not isinstance(block, Table):
            continue
        widths = writer._column_widths(block)
        for column, width in zip(block.columns, widths, strict=True):
            inner = width - 2 * pdf_module._CELL_PADDING
            lines = writer.measured_lines(column.label, inner, pdf_module._TABLE_SIZE)
            if len(lines) > 1:
                broken.append(lines)
    assert broken == []


@pytest.mark.parametrize("filler", range(20, 44, 2))
def test_chart_heading_stays_with_chart(filler):
    # As above for the sample report's chart, whose heading is drawn by the chart block itself.
    sample = report_document(
        report_data(
            from_records(SUBSCRIBER_ID, *sample_records("en"), MASKED),
            REPORT_MONTH,
            GENERATED_AT,
        )
    )
    chart = next(block for block in sample.blocks if isinstance(block, Chart))
    document = Document(
        locale="en",
        title="Layout",
        subtitle="Keep together",
        meta=(),
        blocks=(*(Paragraph(f"Filler paragraph {index}.") for index in range(filler)), chart),
        footer="End.",
        created_at=GENERATED_AT,
    )
    pages = _pages_text(render_pdf(document))
    with_title = [index for index, text in enumerate(pages) if chart.title in text]
    with_description = [index for index, text in enumerate(pages) if chart.description[:30] in text]
    assert with_title == with_description
