"""The content of a report as a list of blocks in the reader's locale, which HTML and PDF both render.

Laying the content out once keeps the HTML page and the PDF in step: each renderer only
decides how a heading, table or chart looks. Block text is plain text, which the renderers escape.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from idsentry.i18n import Locale
from idsentry.reports.assess import (
    SEVERITIES,
    ChartMonth,
    CheckChange,
    Report,
    RiskAssessment,
    assess_report,
)
from idsentry.reports.chart import ChartLayout, layout_chart
from idsentry.reports.model import MaskedIdentifier, ReportData
from idsentry.reports.text import (
    counted,
    format_date,
    format_time,
    join,
    month_name,
    text,
)
from idsentry.services.playbooks import PlaybookConfig, load_config
from idsentry.services.risk import Severity


@dataclass(frozen=True)
class Heading:
    """A section heading (level 2) or a subsection heading (level 3)."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """A paragraph. Muted paragraphs are notes, set smaller and in grey."""

    text: str
    muted: bool = False


@dataclass(frozen=True)
class RiskBanner:
    """The overall risk level, its one-line summary and the reasons."""

    level: Severity
    heading: str
    label: str
    summary: str
    reasons_heading: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    """Label and value pairs. A `summary` has long labels and short values, a `record` the reverse."""

    rows: tuple[tuple[str, str], ...]
    shape: Literal["summary", "record"] = "summary"


@dataclass(frozen=True)
class Column:
    """A table column: its header and its share of the width."""

    label: str
    weight: float


@dataclass(frozen=True)
class Table:
    """A table whose cells are plain text. A newline in a cell starts a new line."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str


@dataclass(frozen=True)
class Link:
    """An official service: its name and its URL, or where to find it when it has none."""

    name: str
    url: str | None
    where: str
    # Between the name and the URL or place: "：" in Chinese, ": " in English.
    separator: str


@dataclass(frozen=True)
class Entry:
    """A list entry: a title, lines of detail and service links."""

    title: str
    lines: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Entries:
    """A list of entries, or the `empty` sentence when there are none."""

    items: tuple[Entry, ...]
    empty: str


@dataclass(frozen=True)
class Chart:
    """The stacked bar chart with its description and the same figures as a table."""

    title: str
    description: str
    data_title: str
    layout: ChartLayout
    # Per bar, keyed by the month: the month's label and its counts, for tooltips.
    month_titles: dict[str, str]
    data: Table


Block = Heading | Paragraph | RiskBanner | Facts | Table | Entries | Chart


@dataclass(frozen=True)
class Document:
    """A laid-out report or dossier."""

    locale: Locale
    title: str
    subtitle: str
    meta: tuple[str, ...]
    blocks: tuple[Block, ...]
    footer: str
    created_at: datetime


# --- helpers shared with the dossier --------------------------------------------------------


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """Return an instant as local time in `zone`, as 2026-05-03 14:05."""
    return format_time(moment.astimezone(zone))


def local_date(moment: datetime, zone: ZoneInfo) -> str:
    """Return the local date of an instant in `zone`, as 2026-05-03."""
    return moment.astimezone(zone).date().isoformat()


def identifier_lines(locale: Locale, identifiers: Iterable[MaskedIdentifier]) -> str:
    """Return each identifier as `kind masked` on its own line."""
    lines = []
    for identifier in identifiers:
        value = identifier.masked or text(locale, "identifier.removed")
        lines.append(f"{text(locale, f'kind.{identifier.kind.value}')} {value}")
    return "\n".join(lines)


def identifier_kinds(locale: Locale, identifiers: Iterable[MaskedIdentifier]) -> str:
    """Return the kinds with their masked forms inline, for a sentence."""
    parts = []
    for identifier in identifiers:
        label = text(locale, f"kind_word.{identifier.kind.value}")
        parts.append(f"{label} {identifier.masked}" if identifier.masked else label)
    return join(locale, list(dict.fromkeys(parts)))


def step_title(config: PlaybookConfig, step_id: str, locale: Locale) -> str:
    """Return a step's title, or its id when the playbook configuration no longer has it."""
    step = config.steps.get(step_id)
    return step.title.get(locale) if step is not None else step_id


def service_links(
    config: PlaybookConfig, service_ids: Iterable[str], locale: Locale
) -> tuple[Link, ...]:
    """Return the services of a step or check as links."""
    links = []
    for service_id in service_ids:
        service = config.services[service_id]
        links.append(
            Link(
                service.name.get(locale),
                service.url,
                service.access.get(locale),
                text(locale, "next.service_separator"),
            )
        )
    return tuple(links)


def verified_text(locale: Locale, verified: bool | None) -> str:
    """Return whether a breach is verified, or that it is not catalogued."""
    if verified is None:
        return text(locale, "verified.unknown")
    return text(locale, "verified.yes" if verified else "verified.no")


# --- the monthly report ---------------------------------------------------------------------


def report_document(data: ReportData, config: PlaybookConfig | None = None) -> Document:
    """Assess the report data and lay out the monthly report."""
    config = config or load_config()
    return layout_report(assess_report(data, config), config)


def layout_report(report: Report, config: PlaybookConfig) -> Document:
    """Lay out an assessed monthly report in the subscriber's locale."""
    facts = report.data.facts
    locale = facts.locale
    zone = facts.zone
    period = report.period
    # The period ends at a midnight, or at the request of a report for a month still running.
    last_day = (period.end - timedelta(microseconds=1)).date()

    blocks: list[Block] = [
        risk_banner(report.risk, locale),
        Heading(text(locale, "summary.heading")),
        _summary(report, locale),
        _chart(report, locale),
        Heading(text(locale, "exposures.heading")),
        _exposure_table(report, locale),
        Heading(text(locale, "next.heading")),
        _next_steps(report, config, locale),
        Heading(text(locale, "changes.heading")),
        _check_changes(report.check_changes, config, locale),
        Heading(text(locale, "steps.heading")),
        _steps_table(report, config, locale),
        Heading(text(locale, "alerts.heading")),
        _delivery_table(report, locale),
        Heading(text(locale, "watched.heading")),
        watched_block(report.data.facts.identifiers, locale),
    ]
    return Document(
        locale=locale,
        title=text(locale, "report.title"),
        subtitle=month_name(locale, period.year, period.month_number),
        meta=(
            text(
                locale,
                "report.period",
                start=period.start.date().isoformat(),
                end=last_day.isoformat(),
            ),
            text(locale, "report.generated", time=local_time(report.data.generated_at, zone)),
            text(locale, "report.time_zone", timezone=facts.timezone),
        ),
        blocks=tuple(blocks),
        footer=text(locale, "report.footer", end=last_day.isoformat()),
        created_at=report.data.generated_at,
    )


def risk_banner(risk: RiskAssessment, locale: Locale) -> RiskBanner:
    """Return the banner of an overall risk level with its reasons."""
    reasons = []
    for reason in risk.reasons:
        severity = text(locale, f"severity_word.{reason.severity.value}") if reason.severity else ""
        reasons.append(
            counted(
                locale, f"reason.{reason.code}", reason.count, severity=severity, days=reason.days
            )
        )
    level = risk.level
    return RiskBanner(
        level=level,
        heading=text(locale, "risk.heading"),
        label=text(locale, f"level.{level.value}"),
        summary=text(locale, f"level.summary.{level.value}"),
        reasons_heading=text(locale, "risk.reasons"),
        reasons=tuple(reasons),
    )


def _summary(report: Report, locale: Locale) -> Facts:
    done = sum(view.done_count for view in report.exposures)
    total = sum(len(view.steps) for view in report.exposures)
    return Facts(
        (
            (text(locale, "summary.confirmed"), str(len(report.exposures))),
            (text(locale, "summary.new"), str(report.new_in_period)),
            (text(locale, "summary.under_review"), str(report.under_review)),
            (
                text(locale, "summary.steps"),
                text(locale, "summary.steps_value", done=done, total=total),
            ),
        )
    )


def chart_rows(
    months: Sequence[ChartMonth], locale: Locale
) -> tuple[dict[str, str], list[tuple[str, ...]]]:
    """Return each month's hover title by key, and the chart's data table rows."""
    titles: dict[str, str] = {}
    rows: list[tuple[str, ...]] = []
    for month in months:
        name = month_name(locale, month.year, month.month)
        counts = [
            f"{text(locale, f'severity.{severity.value}')} {month.counts.get(severity, 0)}"
            for severity in SEVERITIES
        ]
        titles[month.key] = (
            text(locale, "chart.month_total", month=name, total=month.total)
            + " ("
            + join(locale, counts)
            + ")"
        )
        rows.append(
            (
                name,
                *(str(month.counts.get(severity, 0)) for severity in SEVERITIES),
                str(month.total),
            )
        )
    return titles, rows


def _chart(report: Report, locale: Locale) -> Chart:
    months = report.chart
    total = sum(month.total for month in months)
    first, last = months[0], months[-1]
    titles, rows = chart_rows(months, locale)
    data = Table(
        columns=(
            Column(text(locale, "chart.month"), 2),
            *(Column(text(locale, f"severity.{severity.value}"), 1) for severity in SEVERITIES),
            Column(text(locale, "chart.total"), 1),
        ),
        rows=tuple(rows),
        empty="",
    )
    return Chart(
        title=text(locale, "chart.heading"),
        description=text(
            locale,
            "chart.description",
            first=month_name(locale, first.year, first.month),
            last=month_name(locale, last.year, last.month),
            total=total,
        ),
        data_title=text(locale, "chart.data"),
        layout=layout_chart(months, locale),
        month_titles=titles,
        data=data,
    )


def _exposure_table(report: Report, locale: Locale) -> Table:
    zone = report.data.facts.zone
    rows = []
    for view in report.exposures:
        exposure = view.exposure
        if view.done_count == 0:
            progress = "progress.todo"
        elif view.is_open:
            progress = "progress.started"
        else:
            progress = "progress.done"
        rows.append(
            (
                identifier_lines(locale, exposure.matched),
                exposure.breach.title,
                format_date(exposure.breach.breach_date, locale),
                local_date(exposure.found_at, zone),
                verified_text(locale, exposure.breach.verified),
                text(locale, f"severity.{(exposure.severity or Severity.LOW).value}"),
                text(locale, progress),
                text(locale, "steps.count", done=view.done_count, total=len(view.steps)),
            )
        )
    return Table(
        columns=(
            Column(text(locale, "column.identifier"), 2.4),
            Column(text(locale, "column.breach"), 1.8),
            Column(text(locale, "column.breach_date"), 1.5),
            Column(text(locale, "column.known_date"), 1.5),
            Column(text(locale, "column.verified"), 1.2),
            Column(text(locale, "column.severity"), 1.2),
            Column(text(locale, "column.status"), 1.1),
            Column(text(locale, "column.steps"), 1.3),
        ),
        rows=tuple(rows),
        empty=text(locale, "exposures.none"),
    )


def _next_steps(report: Report, config: PlaybookConfig, locale: Locale) -> Entries:
    items = []
    for step in report.next_steps:
        definition = config.steps.get(step.step_id)
        if definition is None:
            continue
        items.append(
            Entry(
                title=definition.title.get(locale),
                lines=(
                    definition.detail.get(locale),
                    text(locale, "next.for", breaches=join(locale, list(step.breach_titles))),
                ),
                links=service_links(config, definition.services, locale),
            )
        )
    for check_id in report.due_checks:
        check = config.checks[check_id]
        title = check.title.get(locale)
        items.append(
            Entry(
                title=title,
                lines=(text(locale, "next.quarterly", title=title),),
                links=service_links(config, check.services, locale),
            )
        )
    return Entries(tuple(items), text(locale, "next.none"))


def count_label(config: PlaybookConfig, check_id: str, name: str, locale: Locale) -> str:
    """Return the label of one count of a check, or its name when the configuration lacks it."""
    check = config.checks.get(check_id)
    if check is None or name not in check.counts:
        return name
    return check.counts[name].get(locale)


def _check_changes(
    changes: tuple[CheckChange, ...], config: PlaybookConfig, locale: Locale
) -> Entries:
    items = []
    for change in changes:
        check = config.checks.get(change.check)
        title = check.title.get(locale) if check is not None else change.check
        if change.status == "changed":
            parts = [
                text(
                    locale,
                    "changes.change",
                    label=count_label(config, change.check, name, locale),
                    previous=previous,
                    current=current,
                )
                for name, previous, current in change.changes
            ]
            line = text(locale, "changes.changed", title=title, changes=join(locale, parts))
        else:
            counts = [
                text(
                    locale,
                    "changes.count",
                    label=count_label(config, change.check, name, locale),
                    value=value,
                )
                for name, value in change.current.counts.items()
            ]
            line = text(
                locale, f"changes.{change.status}", title=title, counts=join(locale, counts)
            )
        recorded = text(locale, "changes.recorded", quarter=change.current.quarter)
        items.append(Entry(title=line, lines=(recorded,)))
    return Entries(tuple(items), text(locale, "changes.none"))


def _steps_table(report: Report, config: PlaybookConfig, locale: Locale) -> Table:
    zone = report.data.facts.zone
    return Table(
        columns=(
            Column(text(locale, "column.time"), 1.4),
            Column(text(locale, "column.step"), 3.0),
            Column(text(locale, "column.breach"), 1.8),
        ),
        rows=tuple(
            (
                local_time(event.done_at, zone),
                step_title(config, event.step_id, locale),
                event.breach_title,
            )
            for event in report.steps_in_period
        ),
        empty=text(locale, "steps.none"),
    )


def _delivery_table(report: Report, locale: Locale) -> Table:
    zone = report.data.facts.zone
    titles = {view.exposure.breach.name: view.exposure.breach.title for view in report.exposures}
    rows = []
    for delivery in report.deliveries:
        at = (
            local_time(delivery.at, zone)
            if delivery.at is not None
            else text(locale, "date.unknown")
        )
        rows.append(
            (
                at,
                titles.get(delivery.breach_name, delivery.breach_name),
                text(locale, f"channel.{delivery.channel}"),
                text(locale, f"delivery.{delivery.status}"),
            )
        )
    return Table(
        columns=(
            Column(text(locale, "column.time"), 1.4),
            Column(text(locale, "column.breach"), 1.8),
            Column(text(locale, "column.channel"), 1.0),
            Column(text(locale, "column.result"), 1.6),
        ),
        rows=tuple(rows),
        empty=text(locale, "alerts.none"),
    )


def watched_block(identifiers: tuple[MaskedIdentifier, ...], locale: Locale) -> Block:
    """Return the watched identifiers in their masked forms, by kind."""
    if not identifiers:
        return Paragraph(text(locale, "watched.none"))
    return Facts(
        tuple(
            (
                text(locale, f"kind.{identifier.kind.value}"),
                identifier.masked or text(locale, "identifier.removed"),
            )
            for identifier in identifiers
        ),
        shape="record",
    )
