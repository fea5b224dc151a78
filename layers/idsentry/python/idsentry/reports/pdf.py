"""A laid-out report or dossier as an A4 PDF, drawn with fpdf2 in the bundled Noto Sans SC subset.

fpdf2 is pure Python and embeds only the glyphs a document uses. Lines are broken by
`linebreak` (Chinese rules), tables and the chart are drawn here as text and vector
rectangles, and pages break before a row or entry that would not fit. The creation date is
the document's `created_at` and fpdf2 derives the file id from it and the content, so the
same document gives the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import TTFFont

from idsentry.reports.chart import (
    AXIS_COLOR,
    GRID_COLOR,
    LABEL_SIZE,
    LEGEND_SQUARE,
    LEGEND_TEXT_SIZE,
    SEVERITY_COLORS,
    TEXT_COLOR,
    ChartLayout,
)
from idsentry.reports.document import (
    Block,
    Chart,
    Document,
    Entries,
    Facts,
    Heading,
    Paragraph,
    RiskBanner,
    Table,
)
from idsentry.reports.linebreak import break_lines
from idsentry.reports.text import fixed_characters, text
from idsentry.services.risk import Severity

logger = logging.getLogger(__name__)

# Two subsets of one font. The common one has the 3,755 level-1 hanzi of GB 2312, the most
# common ones. The full one has nearly 21,000: every hanzi of the CJK Unified Ideographs block
# that the font has, with the rarer characters of names and brands. A PDF loads the common one
# unless its text has a hanzi that only the full one has. fpdf2 loads the common one in 12 ms
# and the full one in about 45 ms.
COMMON_FONT = "fonts/NotoSansSC-Common.ttf"
FULL_FONT = "fonts/NotoSansSC-Subset.ttf"
CJK_UNIFIED_IDEOGRAPHS = range(0x4E00, 0xA000)
_FAMILY = "NotoSansSCSubset"
# Drawn in place of a character the font subset does not contain.
REPLACEMENT_CHARACTER = "□"
# Drawn before each entry of a list.
BULLET = "•"

_PAGE_MARGIN = 15.0
_BOTTOM_LIMIT = 18.0
_POINT = 0.3528  # millimetres per point
_LINE_SPACING = 1.45
_CELL_PADDING = 1.5
_TABLE_SIZE = 8.5

_BANNER_COLORS: dict[Severity, tuple[str, str]] = {
    Severity.CRITICAL: ("#fde8e8", "#7f1d1d"),
    Severity.HIGH: ("#fee2e2", "#991b1b"),
    Severity.MEDIUM: ("#fef3c7", "#78350f"),
    Severity.LOW: ("#e0f2fe", "#0c4a6e"),
}
_BODY = "#111827"
_MUTED = "#4b5563"
_RULE = "#e5e7eb"
_HEADER_FILL = "#f3f4f6"
_LINK = "#1d4ed8"


@cache
def font_path(resource: str = FULL_FONT) -> Path:
    """Return the path of a bundled font file, the full subset unless `resource` names another."""
    packaged = files("idsentry.reports").joinpath(resource)
    # The layer is a plain directory, so as_file returns the file itself and nothing is copied.
    with as_file(packaged) as path:
        return Path(path)


def add_report_font(pdf: FPDF, family: str, codepoints: list[int]) -> TTFFont:
    """Add the font subset that draws `codepoints` to `pdf` as `family`, with only their widths.

    That is the common subset, unless a character it lacks is a hanzi of the CJK Unified
    Ideographs block, which the full subset has. Call it before the first page, which would
    refer to the font.
    """
    font = _add_font(pdf, family, COMMON_FONT, codepoints)
    if any(code in CJK_UNIFIED_IDEOGRAPHS for code in codepoints if code not in font.cmap):
        del pdf.fonts[font.fontkey]
        font = _add_font(pdf, family, FULL_FONT, codepoints)
    return font


def _add_font(pdf: FPDF, family: str, resource: str, codepoints: list[int]) -> TTFFont:
    pdf.add_font(family, "", str(font_path(resource)), unicode_range=codepoints)
    font = pdf.fonts[family.lower()]
    if not isinstance(font, TTFFont):
        raise TypeError(f"{resource} did not load as a TrueType font")
    return font


def drawable(value: str, codepoints: frozenset[int]) -> tuple[str, int]:
    """Return `value` with each character outside `codepoints` replaced by □, and the count.

    Line breaks are kept, because the line breaker handles them.
    """
    missing = sum(
        1 for character in value if character != "\n" and ord(character) not in codepoints
    )
    if not missing:
        return value, 0
    # NOTE: a breach title in a script outside the subsets (hanzi of the CJK extensions such
    # as 𠮷, Korean, Arabic …) prints as □ in the PDF; the HTML report shows it with the
    # reader's fonts.
    replaced = "".join(
        character if character == "\n" or ord(character) in codepoints else REPLACEMENT_CHARACTER
        for character in value
    )
    return replaced, missing


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif is_dataclass(value) and not isinstance(value, type):
        for field in fields(value):
            yield from _strings(getattr(value, field.name))
    elif isinstance(value, list | tuple | frozenset | set):
        for member in value:
            yield from _strings(member)
    elif isinstance(value, dict):
        for key, member in value.items():
            yield from _strings(key)
            yield from _strings(member)


@cache
def _fixed_codepoints() -> frozenset[int]:
    printable_ascii = range(0x20, 0x7F)
    return frozenset(
        {ord(character) for character in fixed_characters()}
        | set(printable_ascii)
        | {ord(REPLACEMENT_CHARACTER), ord(BULLET)}
    )


def drawn_codepoints(document: Document) -> list[int]:
    """Return every character that drawing `document` can put on a page, sorted.

    That is the document's own text, the fixed text of both locales (headings, labels, the
    chart's months, the page footer), printable ASCII (digits and the page count), the list
    bullet and □. fpdf2 then reads the widths of these characters only, not of all 7,600 in the
    font: loading the font took 17 ms instead of 25 ms when measured with the sample report.
    """
    characters = {ord(character) for value in _strings(document) for character in value}
    return sorted(characters | _fixed_codepoints())


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


class _Pages(FPDF):
    """FPDF with the report's footer: the page number in the document's locale."""

    def __init__(self, document: Document) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.document = document

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FAMILY, size=8)
        self.set_text_color(*_rgb(_MUTED))
        label = text(self.document.locale, "page", page=self.page_no(), pages="{nb}")
        self.cell(0, 5, label, align="C")


def render_pdf(document: Document) -> bytes:
    """Render a document as PDF bytes."""
    pdf = _Pages(document)
    pdf.set_creation_date(document.created_at)
    pdf.set_lang(document.locale)
    pdf.set_title(f"{document.title} {document.subtitle}")
    pdf.set_author("IDSentry")
    pdf.set_creator("IDSentry")
    pdf.set_margins(_PAGE_MARGIN, _PAGE_MARGIN, _PAGE_MARGIN)
    pdf.set_auto_page_break(False)
    pdf.c_margin = 0
    pdf.alias_nb_pages()
    font = add_report_font(pdf, _FAMILY, drawn_codepoints(document))
    pdf.add_page()

    # Subsetting keeps each glyph's outline and bounding box, so the embedded subset can keep
    # the bounding boxes too. Recomputing them unpacks and repacks every glyph, about half of
    # the time that the report worker spends rendering a PDF.
    font.ttfont.recalcBBoxes = False
    writer = _Writer(pdf, font)
    writer.paragraph(document.title, size=18, color=_BODY)
    writer.paragraph(document.subtitle, size=13, color="#374151")
    writer.space(1)
    for line in document.meta:
        writer.paragraph(line, size=8.5, color=_MUTED)
    for index, block in enumerate(document.blocks):
        following = document.blocks[index + 1] if index + 1 < len(document.blocks) else None
        writer.block(block, following)
    writer.space(6)
    writer.rule()
    writer.paragraph(document.footer, size=8.5, color=_MUTED)
    if writer.replaced:
        logger.info("pdf characters replaced", extra={"replaced": writer.replaced})
    return bytes(pdf.output())


class _Writer:
    """Draws blocks top to bottom, starting a new page before anything that would not fit."""

    def __init__(self, pdf: FPDF, font: TTFFont) -> None:
        self.pdf = pdf
        self.font = font
        self.widths = font.cw
        self.codepoints = frozenset(font.cmap)
        self.left = _PAGE_MARGIN
        self.width = pdf.w - 2 * _PAGE_MARGIN
        # Characters drawn as □ because the font lacks them.
        self.replaced = 0

    # --- primitives -----------------------------------------------------------------------

    def room(self) -> float:
        return self.pdf.h - _BOTTOM_LIMIT - self.pdf.get_y()

    def ensure(self, height: float) -> bool:
        """Start a new page unless `height` millimetres fit. Returns whether it did."""
        if height <= self.room():
            return False
        self.pdf.add_page()
        self.pdf.set_y(_PAGE_MARGIN)
        return True

    def space(self, height: float) -> None:
        self.pdf.set_y(self.pdf.get_y() + height)

    def rule(self) -> None:
        y = self.pdf.get_y()
        self.pdf.set_draw_color(*_rgb(_RULE))
        self.pdf.set_line_width(0.2)
        self.pdf.line(self.left, y, self.left + self.width, y)
        self.space(1.5)

    def drawable(self, value: str) -> str:
        result, replaced = drawable(value, self.codepoints)
        if replaced:
            self._check_in_range(value)
        self.replaced += replaced
        return result

    def _check_in_range(self, value: str) -> None:
        """Raise if a character that would print as □ is in the font after all.

        The font loads only the characters of `drawn_codepoints`. A character that the font has
        but the collection missed is a bug there, so it must not print as □.
        """
        font_codepoints = self.font.ttfont.getBestCmap()
        for character in value:
            codepoint = ord(character)
            if codepoint not in self.codepoints and codepoint in font_codepoints:
                raise RuntimeError(
                    f"U+{codepoint:04X} is in the report font but not in the characters "
                    "collected for this document (drawn_codepoints)"
                )

    def width_of(self, value: str) -> float:
        """Return the width of `value` in the current font size, as fpdf2 would measure it.

        fpdf2's `get_string_width` splits the text into fragments and copies the graphics state
        on every call, which took a fifth of a report's PDF time. Without text shaping, character
        spacing or stretching its result is this sum of advances, computed in the same order.
        """
        advances = sum(self.widths[ord(character)] for character in value)
        return advances * self.pdf.font_size_pt * 0.001 / self.pdf.k

    def lines(self, value: str, width: float, size: float) -> list[str]:
        self.pdf.set_font(_FAMILY, size=size)
        return break_lines(self.drawable(value), width, self.width_of)

    def measured_lines(self, value: str, width: float, size: float) -> list[str]:
        """Return the lines that `lines` would give, without counting replaced characters."""
        self.pdf.set_font(_FAMILY, size=size)
        return break_lines(drawable(value, self.codepoints)[0], width, self.width_of)

    @staticmethod
    def line_height(size: float) -> float:
        return size * _POINT * _LINE_SPACING

    def draw_lines(
        self,
        lines: list[str],
        x: float,
        y: float,
        size: float,
        color: str,
        link: str = "",
    ) -> float:
        """Draw lines from (x, y), each in a row `line_height(size)` high. Returns the height used.

        Each line lands where fpdf2's `cell(width, height, line, link=link)` would put it: the
        baseline 0.3 font sizes below the row's middle, a link one font size high over the text.
        `text` writes the string as it is. `cell` first splits it into styled fragments, and
        that was about a third of the drawing time of the sample report.
        """
        self.pdf.set_font(_FAMILY, size=size)
        self.pdf.set_text_color(*_rgb(color))
        height = self.line_height(size)
        font_height = self.pdf.font_size
        for index, line in enumerate(lines):
            middle = y + index * height + height / 2
            self.pdf.text(x, middle + 0.3 * font_height, line)
            if link and line:
                link_width = self.width_of(line)
                self.pdf.link(x, middle - font_height / 2, link_width, font_height, link)
        return height * len(lines)

    def paragraph(
        self, value: str, size: float = 10, color: str = _BODY, indent: float = 0, link: str = ""
    ) -> None:
        width = self.width - indent
        height = self.line_height(size)
        for line in self.lines(value, width, size):
            self.ensure(height)
            self.draw_lines([line], self.left + indent, self.pdf.get_y(), size, color, link)
            self.space(height)

    # --- blocks ---------------------------------------------------------------------------

    def block(self, block: Block, following: Block | None = None) -> None:
        """Draw `block`. A heading stays on the page of the start of `following`."""
        match block:
            case Heading():
                self.heading(block.text, block.level, self.start_height(following))
            case Paragraph():
                self.space(1)
                self.paragraph(
                    block.text,
                    size=9 if block.muted else 10,
                    color=_MUTED if block.muted else _BODY,
                )
            case RiskBanner():
                self.banner(block)
            case Facts():
                self.facts(block)
            case Table():
                self.table(block)
            case Entries():
                self.entries(block)
            case Chart():
                self.chart(block)

    def start_height(self, block: Block | None) -> float:
        """Return the height of the start of `block` that a heading above it must stay with.

        That is a table's header and first row, or else two lines of text.
        """
        if isinstance(block, Table) and block.rows:
            widths = self._column_widths(block)
            labels = [column.label for column in block.columns]
            header = self._cells(labels, widths, _TABLE_SIZE, self.measured_lines)
            first = self._cells(list(block.rows[0]), widths, _TABLE_SIZE, self.measured_lines)
            return 1 + self._row_height(header, _TABLE_SIZE) + self._row_height(first, _TABLE_SIZE)
        return 2 * self.line_height(10)

    def heading(self, value: str, level: int = 2, keep: float = 0) -> None:
        """Draw a heading, on a new page unless `keep` millimetres of what follows fit below it."""
        size = 13 if level == 2 else 11
        self.space(4 if level == 2 else 2.5)
        rule = 1.5 if level == 2 else 0
        lines = len(self.measured_lines(value, self.width, size))
        self.ensure(self.line_height(size) * lines + rule + keep)
        self.paragraph(value, size=size, color=_BODY)
        if level == 2:
            self.rule()

    def banner(self, banner: RiskBanner) -> None:
        background, color = _BANNER_COLORS[banner.level]
        inner = self.width - 8
        parts = [
            (self.lines(banner.heading, inner, 10), 10),
            (self.lines(banner.label, inner, 20), 20),
            (self.lines(banner.summary, inner, 10), 10),
            (self.lines(banner.reasons_heading, inner, 9.5), 9.5),
        ]
        reasons = [self.lines(reason, inner - 4, 9.5) for reason in banner.reasons]
        height = 8 + sum(self.line_height(size) * len(lines) for lines, size in parts)
        height += sum(self.line_height(9.5) * len(lines) for lines in reasons)

        self.space(4)
        self.ensure(height)
        top = self.pdf.get_y()
        self.pdf.set_fill_color(*_rgb(background))
        self.pdf.rect(
            self.left, top, self.width, height, style="F", round_corners=True, corner_radius=2
        )
        y = top + 4
        for lines, size in parts:
            y += self.draw_lines(lines, self.left + 4, y, size, color)
        for lines in reasons:
            self.draw_lines([BULLET], self.left + 4, y, 9.5, color)
            y += self.draw_lines(lines, self.left + 8, y, 9.5, color)
        self.pdf.set_y(top + height)

    def facts(self, facts: Facts) -> None:
        label_width = self.width * (0.62 if facts.shape == "summary" else 0.3)
        value_width = self.width - label_width - 4
        for label, value in facts.rows:
            labels = self.lines(label, label_width, 10)
            values = self.lines(value, value_width, 10)
            height = self.line_height(10) * max(len(labels), len(values)) + 1
            self.ensure(height)
            y = self.pdf.get_y()
            self.draw_lines(labels, self.left, y, 10, "#374151")
            self.draw_lines(values, self.left + label_width + 4, y, 10, _BODY)
            self.pdf.set_y(y + height)

    def table(self, table: Table, size: float = _TABLE_SIZE) -> None:
        if not table.rows:
            self.space(1)
            self.paragraph(table.empty, color=_MUTED)
            return
        widths = self._column_widths(table)
        header = self._cells([column.label for column in table.columns], widths, size)
        rows = [self._cells(list(row), widths, size) for row in table.rows]
        self.space(1)
        # The header never ends a page: it goes to the next one with the first row.
        self.ensure(self._row_height(header, size) + self._row_height(rows[0], size))
        self.table_row(header, widths, size, header=True)
        for cells in rows:
            if self.ensure(self._row_height(cells, size)):
                self.table_row(header, widths, size, header=True)
            self.table_row(cells, widths, size)

    def _column_widths(self, table: Table) -> list[float]:
        total = sum(column.weight for column in table.columns)
        return [self.width * column.weight / total for column in table.columns]

    def _cells(
        self,
        values: list[str],
        widths: list[float],
        size: float,
        split: Callable[[str, float, float], list[str]] | None = None,
    ) -> list[list[str]]:
        split = split or self.lines
        return [
            split(value, width - 2 * _CELL_PADDING, size)
            for value, width in zip(values, widths, strict=True)
        ]

    def _row_height(self, cells: list[list[str]], size: float) -> float:
        return self.line_height(size) * max(len(lines) for lines in cells) + 2 * _CELL_PADDING

    def table_row(
        self, cells: list[list[str]], widths: list[float], size: float, header: bool = False
    ) -> None:
        height = self._row_height(cells, size)
        top = self.pdf.get_y()
        if header:
            self.pdf.set_fill_color(*_rgb(_HEADER_FILL))
            self.pdf.rect(self.left, top, self.width, height, style="F")
        x = self.left
        for lines, width in zip(cells, widths, strict=True):
            color = "#374151" if header else _BODY
            self.draw_lines(lines, x + _CELL_PADDING, top + _CELL_PADDING, size, color)
            x += width
        self.pdf.set_draw_color(*_rgb(_RULE))
        self.pdf.set_line_width(0.2)
        self.pdf.line(self.left, top + height, self.left + self.width, top + height)
        self.pdf.set_y(top + height)

    def entries(self, entries: Entries) -> None:
        if not entries.items:
            self.space(1)
            self.paragraph(entries.empty, color=_MUTED)
            return
        indent = 6.0
        for number, entry in enumerate(entries.items, start=1):
            title = self.lines(entry.title, self.width - indent, 10)
            self.space(1.5)
            self.ensure(self.line_height(10) * len(title) + self.line_height(9))
            y = self.pdf.get_y()
            self.draw_lines([f"{number}."], self.left, y, 10, _BODY)
            self.pdf.set_y(y + self.draw_lines(title, self.left + indent, y, 10, _BODY))
            for line in entry.lines:
                self.paragraph(line, size=9, color="#374151", indent=indent)
            for link in entry.links:
                target = link.url or link.where
                self.paragraph(
                    f"{link.name}{link.separator}{target}",
                    size=9,
                    color=_LINK if link.url else "#374151",
                    indent=indent + 3,
                    link=link.url or "",
                )

    def chart(self, chart: Chart) -> None:
        layout = chart.layout
        scale = self.width / layout.width
        height = layout.height * scale
        # The heading goes to the next page with the chart when the chart does not fit below it.
        self.heading(chart.title, keep=height + 2)
        self.ensure(height + 2)
        self._draw_chart(layout, self.left, self.pdf.get_y(), scale)
        self.space(height + 1)
        self.paragraph(chart.description, size=9, color=_MUTED)

    def _draw_chart(self, layout: ChartLayout, left: float, top: float, scale: float) -> None:
        pdf = self.pdf
        pdf.set_line_width(0.2)
        for line in layout.grid:
            pdf.set_draw_color(*_rgb(AXIS_COLOR if line.value == 0 else GRID_COLOR))
            y = top + line.y * scale
            pdf.line(left + layout.plot_left * scale, y, left + layout.plot_right * scale, y)
        for bar in layout.bars:
            pdf.set_fill_color(*_rgb(SEVERITY_COLORS[bar.severity]))
            pdf.rect(
                left + bar.x * scale,
                top + bar.y * scale,
                bar.width * scale,
                bar.height * scale,
                style="F",
            )

        # Chart units of text size become points: 11 units on a 180 mm wide chart are 8.8 pt.
        label_size = LABEL_SIZE * scale / _POINT
        pdf.set_font(_FAMILY, size=label_size)
        pdf.set_text_color(*_rgb(TEXT_COLOR))
        for label in layout.labels:
            self._chart_text(
                label.text, left + label.x * scale, top + label.y * scale, label.anchor
            )
        for entry in layout.legend:
            pdf.set_fill_color(*_rgb(SEVERITY_COLORS[entry.severity]))
            pdf.rect(
                left + entry.x * scale,
                top + entry.y * scale,
                LEGEND_SQUARE * scale,
                LEGEND_SQUARE * scale,
                style="F",
            )
            pdf.set_font(_FAMILY, size=LEGEND_TEXT_SIZE * scale / _POINT)
            self._chart_text(
                entry.label.text, left + entry.label.x * scale, top + entry.label.y * scale, "start"
            )

    def _chart_text(self, value: str, x: float, baseline: float, anchor: str) -> None:
        value = self.drawable(value)
        width = self.width_of(value)
        if anchor == "middle":
            x -= width / 2
        elif anchor == "end":
            x -= width
        self.pdf.text(x, baseline, value)
