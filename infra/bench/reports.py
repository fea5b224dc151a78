"""Report rendering per subscriber and reconciliation requests, for `make bench`.

Rendering: the monthly report of the fixed sample subscriber (`infra.tools.report_samples`)
with 5 and with 20 confirmed exposures, in both locales, as HTML and as PDF. Each renderer runs
against a baseline from the same run that writes the same visible text with no layout:

- HTML: the text of the report's HTML (its text nodes, chart labels included), each line
  escaped into its own paragraph under the same style sheet;
- PDF: the same lines written by fpdf2 with the same bundled font, one `multi_cell` each.

The ratio is what laying out the chart, the tables and Chinese line breaks costs on top of
writing the text at all. Times are medians of interleaved runs in this process, after one
untimed run of each that loads the font and warms the caches, as a warm worker would be.

Reconciliation: `infra.bench.reconcile` against the Stripe shim, requests against the
pagination lower bound.
"""

from __future__ import annotations

import html
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser

from fpdf import FPDF

# Importing infra.local puts the idsentry layer on sys.path.
import infra.local  # noqa: F401

# isort: split

from idsentry.i18n import SUPPORTED_LOCALES
from idsentry.reports.document import report_document
from idsentry.reports.html import render_html
from idsentry.reports.model import from_records, report_data
from idsentry.reports.pdf import add_report_font, render_pdf
from infra.bench.reconcile import DEFAULT_OBJECTS, ReconcileBench, measure_reconciliation
from infra.bench.report import table
from infra.bench.request_counts import BenchFailedError
from infra.tools.report_samples import (
    GENERATED_AT,
    MASKED,
    REPORT_MONTH,
    SUBSCRIBER_ID,
    many_exposures,
    sample_records,
)

DEFAULT_RENDER_RUNS = 9
# The sample story has 5 confirmed exposures; this many more make 20.
EXTRA_EXPOSURES = 15


class _VisibleText(HTMLParser):
    """Collector of a page's visible text, one entry per text node, leaving out styles."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._skipped = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skipped += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skipped -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipped and data.strip():
            self.lines.append(data.strip())


def visible_lines(page: str) -> list[str]:
    """Return the visible text of an HTML page, a line per text node."""
    parser = _VisibleText()
    parser.feed(page)
    return parser.lines


def style_sheet(page: str) -> str:
    """Return the first <style> element of a page, empty when it has none."""
    start = page.find("<style")
    end = page.find("</style>", start)
    return page[start : end + len("</style>")] if start >= 0 and end >= 0 else ""


def plain_html(lines: list[str], style: str, locale: str) -> str:
    """Write the HTML baseline: each line escaped into a paragraph, under the report's styles."""
    body = "\n".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return (
        f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8">{style}</head>'
        f"<body>{body}</body></html>"
    )


def plain_pdf(lines: list[str]) -> bytes:
    """Write the PDF baseline: the same lines in the same font, one multi_cell each, no layout.

    The font is the subset that the report loads for these characters, with only their widths.
    """
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    add_report_font(pdf, "body", sorted({ord(character) for line in lines for character in line}))
    pdf.set_font("body", size=10)
    pdf.add_page()
    for line in lines:
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


@dataclass(frozen=True)
class RenderFigure:
    """One subscriber's report in one locale and format: the renderer against its baseline."""

    locale: str
    exposures: int
    output: str
    median_s: float
    baseline_s: float
    size_bytes: int
    baseline_size_bytes: int
    pages: int

    @property
    def ratio(self) -> float:
        return self.median_s / self.baseline_s if self.baseline_s > 0 else 0.0


@dataclass(frozen=True)
class ReportsBench:
    """The report rendering figures and the reconciliation run."""

    rendering: list[RenderFigure]
    runs: int
    reconciliation: ReconcileBench


def interleaved_medians(actions: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Run each action once untimed, then `runs` times in turn; return each one's median."""
    timings: dict[str, list[float]] = {name: [] for name in actions}
    for action in actions.values():
        action()
    for _ in range(runs):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            timings[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in timings.items()}


def _pdf_pages(content: bytes) -> int:
    return content.count(b"/Type /Page\n")


def measure_sample(locale: str, extra_exposures: int, runs: int) -> list[RenderFigure]:
    """Time one sample subscriber's report in one locale, HTML and PDF, against the baselines."""
    partition, related = (
        many_exposures(extra_exposures, locale) if extra_exposures else sample_records(locale)
    )
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    confirmed = sum(1 for exposure in facts.exposures if exposure.status == "confirmed")
    data = report_data(facts, REPORT_MONTH, GENERATED_AT)

    page = render_html(report_document(data))
    lines = visible_lines(page)
    style = style_sheet(page)
    plain_page = plain_html(lines, style, locale)
    pdf = render_pdf(report_document(data))
    baseline_pdf = plain_pdf(lines)
    if not lines or _pdf_pages(pdf) < 1 or _pdf_pages(baseline_pdf) < 1:
        raise BenchFailedError(f"the {locale} sample report rendered no text or pages")

    medians = interleaved_medians(
        {
            "html": lambda: render_html(report_document(data)),
            "plain_html": lambda: plain_html(lines, style, locale),
            "pdf": lambda: render_pdf(report_document(data)),
            "plain_pdf": lambda: plain_pdf(lines),
        },
        runs,
    )
    return [
        RenderFigure(
            locale, confirmed, "HTML", medians["html"], medians["plain_html"],
            len(page.encode()), len(plain_page.encode()), 1,
        ),
        RenderFigure(
            locale, confirmed, "PDF", medians["pdf"], medians["plain_pdf"], len(pdf),
            len(baseline_pdf), _pdf_pages(pdf),
        ),
    ]  # fmt: skip


def measure_rendering(runs: int = DEFAULT_RENDER_RUNS) -> list[RenderFigure]:
    """Time the sample report with 5 and 20 confirmed exposures in every locale."""
    return [
        figure
        for locale in SUPPORTED_LOCALES
        for extra in (0, EXTRA_EXPOSURES)
        for figure in measure_sample(locale, extra, runs)
    ]


def measure_reports(
    runs: int = DEFAULT_RENDER_RUNS, objects: int = DEFAULT_OBJECTS
) -> ReportsBench:
    """Measure report rendering and one reconciliation of `objects` Stripe objects."""
    rendering = measure_rendering(runs)
    reconciliation = measure_reconciliation(objects)
    if reconciliation.matched == 0 or reconciliation.lower_bound == 0:
        raise BenchFailedError("the reconciliation bench matched nothing")
    return ReportsBench(rendering=rendering, runs=runs, reconciliation=reconciliation)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _pdf_note(figures: list[RenderFigure]) -> str:
    pdfs = [figure for figure in figures if figure.output == "PDF"]
    shares = [figure.baseline_s / figure.median_s for figure in pdfs if figure.median_s > 0]
    return (
        f"The PDF baselines take {min(shares):.0%} to {max(shares):.0%} of the renderer's time: "
        "most of a PDF's time goes to loading the font and embedding its subset, which the "
        "baseline does too, not to the layout."
        if shares
        else ""
    )


def reports_section(bench: ReportsBench) -> str:
    """Return the page's section on report rendering and reconciliation requests."""
    render_rows = [
        [
            f"{figure.output}, {figure.locale}, {figure.exposures} confirmed exposures",
            _ms(figure.median_s),
            _ms(figure.baseline_s),
            f"{figure.ratio:.1f}×",
            f"{figure.size_bytes / 1024:.0f} KiB"
            + (f", {figure.pages} pages" if figure.output == "PDF" else ""),
            f"{figure.baseline_size_bytes / 1024:.0f} KiB",
        ]
        for figure in bench.rendering
    ]
    reconciliation = bench.reconciliation
    ratio = reconciliation.total_requests / reconciliation.lower_bound
    request_rows = [
        [f"`{route}`", f"{count:,}"] for route, count in sorted(reconciliation.requests.items())
    ]
    return "\n".join(
        [
            "## Reports and reconciliation",
            "",
            "### Report rendering per subscriber",
            "",
            "The monthly report of the sample subscriber of `infra/tools/report_samples.py` "
            "(5 confirmed exposures, and 20 with 15 more added), rendered in this process by "
            "`report_document` and then `render_html` or `render_pdf`, as the report worker does "
            "after it has read the subscriber's items. Each baseline writes the same visible "
            "text with no layout: for HTML each text line of the report escaped into a "
            "paragraph under the same style sheet, for PDF the same lines with fpdf2 in the same "
            "bundled font, one `multi_cell` each. The ratio is what the chart, the tables and "
            "the Chinese line breaking cost over writing the text at all. Medians of "
            f"{bench.runs} runs after one untimed run of each, which loads the font. The report "
            "worker's cold start is in the cold-start section.",
            "",
            table(
                ["report", "median", "baseline", "ratio", "size", "baseline size"],
                render_rows,
            ),
            "",
            _pdf_note(bench.rendering),
            "",
            "### Reconciliation requests against the pagination lower bound",
            "",
            "`infra/bench/reconcile.py` seeds the local Stripe shim with one-off card charges, "
            "refunds of some of them, their balance transactions and the payouts that pay them "
            "out, all in yesterday's Asia/Shanghai day, and writes the matching ledger entries "
            "in memory. One reconciliation of that day then lists every kind of object with "
            "automatic pagination. Its own client counts each HTTP request by route. The lower "
            "bound is one request per 100 objects of each list (Stripe's largest page), and one "
            "for an empty list.",
            "",
            table(
                ["figure", "value", "lower bound", "ratio", "target"],
                [
                    [
                        f"Stripe requests for {reconciliation.objects:,} objects",
                        f"{reconciliation.total_requests:,}",
                        f"{reconciliation.lower_bound:,}",
                        f"{ratio:.2f}×",
                        "the lower bound: " + ("met" if ratio <= 1.0 else "not met"),
                    ]
                ],
            ),
            "",
            f"The run took {reconciliation.seconds:.1f} s, classified {reconciliation.rows:,} "
            f"rows and matched {reconciliation.matched:,} of them.",
            "",
            table(["request", "count"], request_rows),
        ]
    )
