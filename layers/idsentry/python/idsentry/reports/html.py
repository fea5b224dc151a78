"""A laid-out report or dossier as one self-contained HTML page that reads well on a phone.

The page has no scripts and loads nothing: the styles are inline, the chart is inline SVG,
and a Content-Security-Policy meta tag forbids every other source. Every text goes through
html.escape, so breach titles and other stored strings cannot add markup.
"""

from __future__ import annotations

from html import escape

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
from idsentry.services.risk import Severity

# Banner colours per risk level: background and text. Each pair has a WCAG contrast ratio
# of 6.8 or more (computed from the hex values), above the 4.5 that body text needs.
_BANNER_COLORS: dict[Severity, tuple[str, str]] = {
    Severity.CRITICAL: ("#fde8e8", "#7f1d1d"),
    Severity.HIGH: ("#fee2e2", "#991b1b"),
    Severity.MEDIUM: ("#fef3c7", "#78350f"),
    Severity.LOW: ("#e0f2fe", "#0c4a6e"),
}

_STYLE = """
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;line-height:1.6;
font-family:-apple-system,"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",
"Noto Sans SC","Source Han Sans SC",sans-serif;font-size:16px;-webkit-text-size-adjust:100%}
main{max-width:960px;margin:0 auto;padding:16px;background:#fff}
h1{font-size:1.5rem;margin:0 0 4px}
h2{font-size:1.2rem;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid #e5e7eb}
h3{font-size:1.05rem;margin:18px 0 6px}
.subtitle{font-size:1.1rem;margin:0 0 8px;color:#374151}
.meta,.muted,footer{color:#4b5563;font-size:.875rem;margin:2px 0}
footer{margin-top:32px;border-top:1px solid #e5e7eb;padding-top:8px}
.banner{border-radius:8px;padding:12px 16px;margin:16px 0}
.banner .level{font-size:1.6rem;font-weight:700;margin:0}
.banner p{margin:4px 0}
.banner ul{margin:8px 0 0;padding-left:1.2em}
dl.facts{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,1fr);gap:4px 16px;margin:0}
dl.facts.record{grid-template-columns:minmax(0,1fr) minmax(0,2fr)}
dl.facts dt{color:#374151}
dl.facts dd{margin:0;font-weight:600;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #e5e7eb;padding:6px 8px;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:#f9fafb;font-weight:600}
.nowrap{white-space:nowrap}
figure{margin:0}
.chart-frame{overflow-x:auto}
svg.chart{width:100%;min-width:520px;height:auto;display:block}
details{margin-top:8px}
ol.entries{padding-left:1.4em;margin:0}
ol.entries>li{margin:0 0 12px}
ol.entries .title{font-weight:600}
ol.entries p{margin:2px 0}
ul.links{margin:2px 0;padding-left:1.2em;font-size:.9rem}
a{color:#1d4ed8;overflow-wrap:anywhere}
@media (max-width:640px){
main{padding:12px}
svg.chart{min-width:0}
svg.chart text{font-size:16px}
table.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}
table.stack tr{border:1px solid #e5e7eb;border-radius:6px;margin:0 0 10px;padding:4px 0}
table.stack td{border:0;padding:2px 10px;display:grid;grid-template-columns:7.5em minmax(0,1fr);gap:8px}
table.stack td::before{content:attr(data-label);color:#4b5563}
dl.facts{grid-template-columns:minmax(0,1fr) auto}
dl.facts.record{grid-template-columns:minmax(0,1fr)}
dl.facts.record dd{margin-bottom:6px}
}
@media print{body{background:#fff}main{max-width:none}}
""".strip()

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def render_html(document: Document) -> str:
    """Render a document as a complete HTML page (a str; encode it as UTF-8)."""
    parts = [
        "<!doctype html>",
        f'<html lang="{escape(document.locale)}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # A constant without quotes or ampersands, so it needs no escaping.
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{escape(document.title)} {escape(document.subtitle)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<main>",
        "<header>",
        f"<h1>{escape(document.title)}</h1>",
        f'<p class="subtitle">{escape(document.subtitle)}</p>',
        *(f'<p class="meta">{escape(line)}</p>' for line in document.meta),
        "</header>",
    ]
    parts.extend(_block(block) for block in document.blocks)
    parts.extend(
        [
            f"<footer><p>{_lines(document.footer)}</p></footer>",
            "</main>",
            "</body>",
            "</html>",
        ]
    )
    return "\n".join(parts) + "\n"


def _lines(value: str) -> str:
    return "<br>".join(escape(line) for line in value.split("\n"))


def _block(block: Block) -> str:
    match block:
        case Heading():
            return f"<h{block.level}>{escape(block.text)}</h{block.level}>"
        case Paragraph():
            css = ' class="muted"' if block.muted else ""
            return f"<p{css}>{_lines(block.text)}</p>"
        case RiskBanner():
            return _banner(block)
        case Facts():
            rows = "".join(
                f"<dt>{escape(label)}</dt><dd>{_lines(value)}</dd>" for label, value in block.rows
            )
            return f'<dl class="facts {block.shape}">{rows}</dl>'
        case Table():
            return _table(block)
        case Entries():
            return _entries(block)
        case Chart():
            return _chart(block)


def _banner(banner: RiskBanner) -> str:
    background, color = _BANNER_COLORS[banner.level]
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in banner.reasons)
    return (
        f'<section class="banner" style="background:{background};color:{color}" '
        f'aria-labelledby="risk-heading">'
        f'<h2 id="risk-heading" style="border:0;margin:0">{escape(banner.heading)}</h2>'
        f'<p class="level">{escape(banner.label)}</p>'
        f"<p>{escape(banner.summary)}</p>"
        f"<p><strong>{escape(banner.reasons_heading)}</strong></p>"
        f"<ul>{reasons}</ul>"
        "</section>"
    )


def _table(table: Table, stack: bool = True) -> str:
    if not table.rows:
        return f"<p>{escape(table.empty)}</p>"
    header = "".join(f'<th scope="col">{escape(column.label)}</th>' for column in table.columns)
    body = []
    for row in table.rows:
        cells = "".join(
            f'<td data-label="{escape(column.label)}">{_lines(value)}</td>'
            for column, value in zip(table.columns, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    css = ' class="stack"' if stack else ""
    return f"<table{css}><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _entries(entries: Entries) -> str:
    if not entries.items:
        return f"<p>{escape(entries.empty)}</p>"
    items = []
    for entry in entries.items:
        lines = "".join(f"<p>{_lines(line)}</p>" for line in entry.lines)
        links = ""
        if entry.links:
            rendered = []
            for link in entry.links:
                if link.url:
                    target = f'<a href="{escape(link.url)}" rel="noreferrer">{escape(link.url)}</a>'
                else:
                    target = escape(link.where)
                rendered.append(f"<li>{escape(link.name)}{escape(link.separator)}{target}</li>")
            links = f'<ul class="links">{"".join(rendered)}</ul>'
        items.append(f'<li><p class="title">{escape(entry.title)}</p>{lines}{links}</li>')
    return f'<ol class="entries">{"".join(items)}</ol>'


def _chart(chart: Chart) -> str:
    return (
        "<figure>"
        f"<h2>{escape(chart.title)}</h2>"
        f'<div class="chart-frame">{_svg(chart.layout, chart.title, chart.description, chart.month_titles)}</div>'
        f'<figcaption class="muted">{escape(chart.description)}</figcaption>'
        f"<details><summary>{escape(chart.data_title)}</summary>"
        f"{_table(chart.data, stack=False)}</details>"
        "</figure>"
    )


def _number(value: float) -> str:
    # Two decimals keep the SVG short and its text identical for identical input.
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _svg(layout: ChartLayout, title: str, description: str, month_titles: dict[str, str]) -> str:
    parts = [
        f'<svg class="chart" viewBox="0 0 {_number(layout.width)} {_number(layout.height)}" '
        'role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(description)}</desc>',
    ]
    for line in layout.grid:
        color = AXIS_COLOR if line.value == 0 else GRID_COLOR
        parts.append(
            f'<line x1="{_number(layout.plot_left)}" y1="{_number(line.y)}" '
            f'x2="{_number(layout.plot_right)}" y2="{_number(line.y)}" stroke="{color}" '
            'stroke-width="1"/>'
        )
    for bar in layout.bars:
        parts.append(
            f'<rect x="{_number(bar.x)}" y="{_number(bar.y)}" width="{_number(bar.width)}" '
            f'height="{_number(bar.height)}" fill="{SEVERITY_COLORS[bar.severity]}">'
            f"<title>{escape(month_titles.get(bar.month, bar.month))}</title></rect>"
        )
    for label in layout.labels:
        parts.append(
            f'<text x="{_number(label.x)}" y="{_number(label.y)}" text-anchor="{label.anchor}" '
            f'font-size="{_number(LABEL_SIZE)}" fill="{TEXT_COLOR}">{escape(label.text)}</text>'
        )
    for entry in layout.legend:
        parts.append(
            f'<rect x="{_number(entry.x)}" y="{_number(entry.y)}" width="{_number(LEGEND_SQUARE)}" '
            f'height="{_number(LEGEND_SQUARE)}" fill="{SEVERITY_COLORS[entry.severity]}"/>'
        )
        parts.append(
            f'<text x="{_number(entry.label.x)}" y="{_number(entry.label.y)}" '
            f'font-size="{_number(LEGEND_TEXT_SIZE)}" '
            f'fill="{TEXT_COLOR}">{escape(entry.label.text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
