"""The layout of the bought in-depth report, rendered by the same HTML and PDF renderers.

Render it with `html.render_html(deep_document(data))` or `pdf.render_pdf(deep_document(data))`.
Identifiers appear only in their masked forms.
"""

from __future__ import annotations

from datetime import datetime

from idsentry.i18n import Locale
from idsentry.reports.assess import SEVERITIES
from idsentry.reports.chart import layout_chart
from idsentry.reports.deep import DeepReport, IdentifierHistory, assess_deep_report
from idsentry.reports.document import (
    Block,
    Chart,
    Column,
    Document,
    Entries,
    Entry,
    Facts,
    Heading,
    Paragraph,
    Table,
    chart_rows,
    count_label,
    identifier_lines,
    local_date,
    local_time,
    risk_banner,
    service_links,
    step_title,
    watched_block,
)
from idsentry.reports.dossier import data_class_labels, evidence_blocks
from idsentry.reports.model import DeepReportData
from idsentry.reports.text import counted, join, month_name, text
from idsentry.services.playbooks import PlaybookConfig, load_config

_SECONDS_PER_DAY = 24 * 3600


def deep_document(data: DeepReportData, config: PlaybookConfig | None = None) -> Document:
    """Assess the data and lay out the in-depth report in the subscriber's locale."""
    config = config or load_config()
    return layout_deep_report(assess_deep_report(data, config), config)


def layout_deep_report(report: DeepReport, config: PlaybookConfig) -> Document:
    """Lay out an assessed in-depth report in the subscriber's locale."""
    facts = report.data.facts
    locale = facts.locale
    zone = facts.zone
    start = local_date(report.start, zone)
    end = local_date(report.data.generated_at, zone)

    blocks: list[Block] = [
        risk_banner(report.risk, locale),
        Heading(text(locale, "deep.summary.heading")),
        _summary(report, locale),
        Heading(text(locale, "plan.heading")),
        _plan(report, config, locale),
        _chart(report, locale),
        Heading(text(locale, "deep.identifiers.heading")),
        *_identifiers(report, locale),
        Heading(text(locale, "deep.breaches.heading")),
        *_breaches(report, config, locale),
        Heading(text(locale, "deep.history.heading")),
        _history(report, locale),
        Heading(text(locale, "deep.alerts.heading")),
        _deliveries(report, locale),
        Heading(text(locale, "deep.checks.heading")),
        _checks(report, config, locale),
        Heading(text(locale, "watched.heading")),
        watched_block(facts.identifiers, locale),
    ]
    return Document(
        locale=locale,
        title=text(locale, "deep.title"),
        subtitle=text(locale, "deep.subtitle", date=end),
        meta=(
            text(locale, "deep.period", start=start, end=end),
            text(locale, "deep.purchased", time=local_time(report.data.purchased_at, zone)),
            text(locale, "report.generated", time=local_time(report.data.generated_at, zone)),
            text(locale, "report.time_zone", timezone=facts.timezone),
        ),
        blocks=tuple(blocks),
        footer=text(locale, "deep.footer", end=end),
        created_at=report.data.generated_at,
    )


def _summary(report: DeepReport, locale: Locale) -> Facts:
    done = sum(view.done_count for view in report.exposures)
    total = sum(len(view.steps) for view in report.exposures)
    open_count = sum(1 for view in report.exposures if view.is_open)
    return Facts(
        (
            (text(locale, "deep.summary.watched"), str(len(report.data.facts.identifiers))),
            (text(locale, "deep.summary.confirmed"), str(len(report.exposures))),
            (text(locale, "deep.summary.open"), str(open_count)),
            (text(locale, "summary.under_review"), str(report.under_review)),
            (text(locale, "deep.summary.dismissed"), str(report.dismissed)),
            (
                text(locale, "summary.steps"),
                text(locale, "summary.steps_value", done=done, total=total),
            ),
            (text(locale, "deep.summary.alerts"), str(report.sent_count)),
            (text(locale, "deep.summary.undelivered"), str(report.undelivered_count)),
        )
    )


def _plan(report: DeepReport, config: PlaybookConfig, locale: Locale) -> Entries:
    zone = report.data.facts.zone
    items = []
    for planned in report.plan:
        definition = config.steps.get(planned.step_id)
        if definition is None:
            continue
        priority = text(locale, f"priority.{planned.priority}")
        why = counted(
            locale,
            "plan.why",
            len(planned.breach_titles),
            level=text(locale, f"severity_word.{planned.level.value}"),
            since=local_date(planned.open_since, zone),
        )
        items.append(
            Entry(
                title=text(
                    locale, "plan.title", priority=priority, step=definition.title.get(locale)
                ),
                lines=(
                    why,
                    definition.detail.get(locale),
                    text(locale, "next.for", breaches=join(locale, list(planned.breach_titles))),
                ),
                links=service_links(config, definition.services, locale),
            )
        )
    for check_id in report.due_checks:
        check = config.checks[check_id]
        title = check.title.get(locale)
        items.append(
            Entry(
                title=text(
                    locale, "plan.title", priority=text(locale, "priority.quarter"), step=title
                ),
                lines=(text(locale, "next.quarterly", title=title),),
                links=service_links(config, check.services, locale),
            )
        )
    return Entries(tuple(items), text(locale, "plan.none"))


def _chart(report: DeepReport, locale: Locale) -> Chart:
    months = report.months
    first, last = months[0], months[-1]
    titles, rows = chart_rows(months, locale)
    return Chart(
        title=text(locale, "deep.chart.heading"),
        description=text(
            locale,
            "chart.description",
            first=month_name(locale, first.year, first.month),
            last=month_name(locale, last.year, last.month),
            total=sum(month.total for month in months),
        ),
        data_title=text(locale, "chart.data"),
        layout=layout_chart(months, locale),
        month_titles=titles,
        data=Table(
            columns=(
                Column(text(locale, "chart.month"), 2),
                *(Column(text(locale, f"severity.{severity.value}"), 1) for severity in SEVERITIES),
                Column(text(locale, "chart.total"), 1),
            ),
            rows=tuple(rows),
            empty="",
        ),
    )


def _identifiers(report: DeepReport, locale: Locale) -> list[Block]:
    blocks: list[Block] = []
    for history in report.identifiers:
        blocks.append(Heading(identifier_lines(locale, (history.identifier,)), level=3))
        blocks.append(_identifier_facts(history, report, locale))
    if not blocks:
        blocks.append(Paragraph(text(locale, "watched.none")))
    return blocks


def _identifier_facts(history: IdentifierHistory, report: DeepReport, locale: Locale) -> Block:
    if not history.exposures:
        return Paragraph(text(locale, "deep.identifier.none"))
    zone = report.data.facts.zone
    titles = "\n".join(exposure.breach.title for exposure in history.exposures)
    count = counted(locale, "deep.identifier.count", len(history.exposures))
    labels = data_class_labels(locale, history.data_classes)
    first = history.first_found
    last = history.last_found
    return Facts(
        (
            (text(locale, "deep.identifier.breaches"), f"{count}\n{titles}"),
            (
                text(locale, "deep.identifier.data"),
                join(locale, labels) if labels else text(locale, "date.unknown"),
            ),
            (
                text(locale, "deep.identifier.first"),
                local_date(first, zone) if first else text(locale, "value.none"),
            ),
            (
                text(locale, "deep.identifier.last"),
                local_date(last, zone) if last else text(locale, "value.none"),
            ),
        ),
        shape="record",
    )


def _breaches(report: DeepReport, config: PlaybookConfig, locale: Locale) -> list[Block]:
    facts = report.data.facts
    zone = facts.zone
    now = report.data.generated_at
    ordered = sorted(
        report.exposures, key=lambda view: (view.exposure.found_at, view.exposure.breach.name)
    )
    blocks: list[Block] = []
    for view in ordered:
        blocks.extend(evidence_blocks(locale, facts, view.exposure))
        due_from = view.exposure.confirmed_at or view.exposure.found_at
        rows = []
        for step in view.steps:
            if step.done_at is not None:
                state = text(locale, "step.done")
                when = text(locale, "step.done_on", date=local_date(step.done_at, zone))
            else:
                state = text(locale, "step.open")
                when = counted(
                    locale,
                    "step.open_since",
                    _days_between(due_from, now),
                    date=local_date(due_from, zone),
                )
            rows.append((step_title(config, step.step_id, locale), state, when))
        blocks.append(
            Table(
                columns=(
                    Column(text(locale, "column.step"), 3.0),
                    Column(text(locale, "column.status"), 1.0),
                    Column(text(locale, "column.date"), 2.0),
                ),
                rows=tuple(rows),
                empty=text(locale, "deep.steps.none"),
            )
        )
    if not blocks:
        blocks.append(Paragraph(text(locale, "deep.breaches.none")))
    return blocks


def _days_between(start: datetime, end: datetime) -> int:
    return max(int((end - start).total_seconds() // _SECONDS_PER_DAY), 0)


def _history(report: DeepReport, locale: Locale) -> Table:
    zone = report.data.facts.zone
    rows = []
    for exposure in report.history:
        severity = (
            text(locale, f"severity.{exposure.severity.value}")
            if exposure.severity is not None
            else text(locale, "value.none")
        )
        rows.append(
            (
                local_date(exposure.found_at, zone),
                exposure.breach.title,
                identifier_lines(locale, exposure.matched),
                text(locale, f"status.{exposure.status}"),
                severity,
                text(locale, f"found_by_short.{exposure.found_by}"),
            )
        )
    return Table(
        columns=(
            Column(text(locale, "column.known_date"), 1.4),
            Column(text(locale, "column.breach"), 2.0),
            Column(text(locale, "column.identifier"), 2.4),
            Column(text(locale, "column.status"), 1.2),
            Column(text(locale, "column.severity"), 1.1),
            Column(text(locale, "column.found_by"), 1.4),
        ),
        rows=tuple(rows),
        empty=text(locale, "deep.history.none"),
    )


def _deliveries(report: DeepReport, locale: Locale) -> Table:
    zone = report.data.facts.zone
    titles = {view.exposure.breach.name: view.exposure.breach.title for view in report.exposures}
    rows = tuple(
        (
            local_time(delivery.at, zone) if delivery.at else text(locale, "date.unknown"),
            titles.get(delivery.breach_name, delivery.breach_name),
            text(locale, f"channel.{delivery.channel}"),
            text(locale, f"delivery.{delivery.status}"),
        )
        for delivery in report.deliveries
    )
    return Table(
        columns=(
            Column(text(locale, "column.time"), 1.4),
            Column(text(locale, "column.breach"), 2.0),
            Column(text(locale, "column.channel"), 1.0),
            Column(text(locale, "column.result"), 1.6),
        ),
        rows=rows,
        empty=text(locale, "deep.alerts.none"),
    )


def _checks(report: DeepReport, config: PlaybookConfig, locale: Locale) -> Table:
    zone = report.data.facts.zone
    rows = []
    for result in report.check_results:
        check = config.checks.get(result.check)
        title = check.title.get(locale) if check is not None else result.check
        counts = [
            text(
                locale,
                "changes.count",
                label=count_label(config, result.check, name, locale),
                value=value,
            )
            for name, value in result.counts.items()
        ]
        rows.append(
            (result.quarter, title, "\n".join(counts), local_date(result.recorded_at, zone))
        )
    return Table(
        columns=(
            Column(text(locale, "column.quarter"), 1.0),
            Column(text(locale, "column.check"), 2.2),
            Column(text(locale, "column.counts"), 2.2),
            Column(text(locale, "column.date"), 1.3),
        ),
        rows=tuple(rows),
        empty=text(locale, "changes.none"),
    )
