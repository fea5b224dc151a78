"""The incident dossier: what a subscriber hands to the police, a bank or a carrier.

It covers confirmed exposures only, each with its breach evidence, and a timeline of the
breach, IDSentry's finding, the alert and its deliveries, and the steps the subscriber took, up to
the generation time. Identifiers appear only in their masked forms. Render it with
`html.render_html(dossier_document(data))` or `pdf.render_pdf(dossier_document(data))`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from idsentry.i18n import Locale
from idsentry.models.breach import kind_for_data_class
from idsentry.reports.document import (
    Block,
    Column,
    Document,
    Facts,
    Heading,
    Paragraph,
    Table,
    identifier_kinds,
    identifier_lines,
    local_date,
    local_time,
    step_title,
    verified_text,
)
from idsentry.reports.model import DossierData, Exposure, ReportDataError, SubscriberFacts
from idsentry.reports.text import counted, format_date, join, text
from idsentry.services.playbooks import PlaybookConfig, load_config


@dataclass(frozen=True)
class TimelineEvent:
    """One dated event. A `day_only` event has a date but no time of day."""

    at: datetime
    day_only: bool
    breach_title: str
    description: str


def dossier_exposures(data: DossierData) -> tuple[Exposure, ...]:
    """Return the confirmed exposures the dossier covers, first found first.

    Raises ReportDataError when `breach_names` names a breach without a confirmed exposure.
    """
    confirmed = {
        exposure.breach.name: exposure
        for exposure in data.facts.exposures
        if exposure.status == "confirmed" and exposure.found_at <= data.generated_at
    }
    if data.breach_names is not None:
        unknown = [name for name in data.breach_names if name not in confirmed]
        if unknown:
            raise ReportDataError(
                f"breach_names: {', '.join(unknown)} is not a confirmed exposure of this subscriber"
            )
        chosen = [confirmed[name] for name in dict.fromkeys(data.breach_names)]
    else:
        chosen = list(confirmed.values())
    return tuple(sorted(chosen, key=lambda exposure: (exposure.found_at, exposure.breach.name)))


def reference(data: DossierData) -> str:
    """Return the dossier's reference: the same for the same subscriber, time and selection."""
    names = ",".join(data.breach_names or ("*",))
    seed = f"{data.facts.subscriber_id}|{data.generated_at.isoformat()}|{data.audience}|{names}"
    return "DOS-" + hashlib.sha256(seed.encode()).hexdigest()[:12].upper()


def timeline(
    data: DossierData, exposures: tuple[Exposure, ...], config: PlaybookConfig
) -> tuple[TimelineEvent, ...]:
    """Return every dated event of the exposures up to the generation time, oldest first."""
    facts = data.facts
    locale = facts.locale
    zone = facts.zone
    events: list[tuple[datetime, int, TimelineEvent]] = []

    def add(at: datetime, day_only: bool, title: str, description: str) -> None:
        if at <= data.generated_at:
            events.append((at, len(events), TimelineEvent(at, day_only, title, description)))

    for exposure in exposures:
        breach = exposure.breach
        title = breach.title
        if breach.breach_date is not None:
            start = datetime(
                breach.breach_date.year,
                breach.breach_date.month,
                breach.breach_date.day,
                tzinfo=zone,
            )
            add(start, True, title, text(locale, "event.breach_occurred", breach=title))
        if breach.added_date is not None:
            add(
                breach.added_date,
                False,
                title,
                text(locale, "event.breach_catalogued", breach=title),
            )
        add(
            exposure.found_at,
            False,
            title,
            text(
                locale,
                "event.exposure_found",
                breach=title,
                identifiers=identifier_kinds(locale, exposure.matched),
            ),
        )
        if exposure.confirmed_at is not None and exposure.severity is not None:
            add(
                exposure.confirmed_at,
                False,
                title,
                text(
                    locale,
                    f"event.alert_confirmed.{exposure.confirmed_by}",
                    severity=text(locale, f"severity.{exposure.severity.value}"),
                ),
            )
        for delivery in facts.deliveries:
            if delivery.alert_id != exposure.alert_id or delivery.at is None:
                continue
            if delivery.status in ("deferred", "sending"):
                continue
            add(
                delivery.at,
                False,
                title,
                text(
                    locale,
                    "event.alert_sent",
                    channel=text(locale, f"channel.{delivery.channel}"),
                    result=text(locale, f"delivery.{delivery.status}"),
                ),
            )
        for step in exposure.steps_done:
            add(
                step.done_at,
                False,
                title,
                text(locale, "event.step_done", step=step_title(config, step.step_id, locale)),
            )
    events.sort(key=lambda entry: (entry[0], entry[1]))
    return tuple(event for _, _, event in events)


def dossier_document(data: DossierData, config: PlaybookConfig | None = None) -> Document:
    """Lay out the incident dossier in the subscriber's locale."""
    config = config or load_config()
    facts = data.facts
    locale = facts.locale
    zone = facts.zone
    exposures = dossier_exposures(data)

    blocks: list[Block] = [
        Paragraph(text(locale, "dossier.intro")),
        Facts(
            (
                (text(locale, "dossier.reference"), reference(data)),
                (text(locale, "dossier.account"), facts.subscriber_id),
                (text(locale, "dossier.generated"), local_time(data.generated_at, zone)),
                (text(locale, "dossier.time_zone"), facts.timezone),
            ),
            shape="record",
        ),
    ]
    if not exposures:
        blocks.append(Paragraph(text(locale, "dossier.none")))
    else:
        blocks.append(Paragraph(_summary(locale, facts, exposures)))
        blocks.extend(_timeline_blocks(data, exposures, config))
        blocks.append(Heading(text(locale, "dossier.evidence")))
        for exposure in exposures:
            blocks.extend(evidence_blocks(locale, facts, exposure))
        blocks.append(Heading(text(locale, "dossier.steps")))
        blocks.append(_steps(locale, facts, exposures, data.generated_at, config))

    return Document(
        locale=locale,
        title=text(locale, "dossier.title"),
        subtitle=text(locale, f"dossier.audience.{data.audience}"),
        meta=(text(locale, "report.generated", time=local_time(data.generated_at, zone)),),
        blocks=tuple(blocks),
        footer=text(locale, "dossier.declaration", timezone=facts.timezone),
        created_at=data.generated_at,
    )


def _summary(locale: Locale, facts: SubscriberFacts, exposures: tuple[Exposure, ...]) -> str:
    return counted(
        locale,
        "dossier.summary",
        len(exposures),
        first=local_date(exposures[0].found_at, facts.zone),
        last=local_date(exposures[-1].found_at, facts.zone),
    )


def _timeline_blocks(
    data: DossierData, exposures: tuple[Exposure, ...], config: PlaybookConfig
) -> list[Block]:
    locale = data.facts.locale
    zone = data.facts.zone
    rows = tuple(
        (
            local_date(event.at, zone) if event.day_only else local_time(event.at, zone),
            event.breach_title,
            event.description,
        )
        for event in timeline(data, exposures, config)
    )
    return [
        Heading(text(locale, "dossier.timeline")),
        Table(
            columns=(
                Column(text(locale, "column.time"), 1.3),
                Column(text(locale, "column.breach"), 1.5),
                Column(text(locale, "column.event"), 4.0),
            ),
            rows=rows,
            empty=text(locale, "dossier.none"),
        ),
    ]


def evidence_blocks(locale: Locale, facts: SubscriberFacts, exposure: Exposure) -> list[Block]:
    """Return a breach's heading and its evidence: catalogue record, how we found it, scoring."""
    breach = exposure.breach
    data_kinds = data_class_labels(locale, breach.data_classes)
    unknown = text(locale, "date.unknown")
    rows = [
        (text(locale, "evidence.breach"), f"{breach.title} ({breach.name})"),
        (text(locale, "evidence.domain"), breach.domain or unknown),
        (text(locale, "evidence.breach_date"), format_date(breach.breach_date, locale)),
        (
            text(locale, "evidence.catalogued"),
            local_date(breach.added_date, facts.zone) if breach.added_date else unknown,
        ),
        (
            text(locale, "evidence.accounts"),
            f"{breach.pwn_count:,}" if breach.pwn_count else unknown,
        ),
        (text(locale, "evidence.data"), join(locale, data_kinds) if data_kinds else unknown),
        (text(locale, "evidence.verified"), verified_text(locale, breach.verified)),
        (
            text(locale, "evidence.source"),
            text(locale, f"source.{breach.source}") if breach.source else unknown,
        ),
        (text(locale, "evidence.found_by"), text(locale, f"found_by.{exposure.found_by}")),
        (text(locale, "evidence.found_at"), local_time(exposure.found_at, facts.zone)),
        (text(locale, "evidence.identifiers"), identifier_lines(locale, exposure.matched)),
    ]
    if exposure.severity is not None and exposure.confidence is not None:
        rows.append(
            (text(locale, "evidence.severity"), text(locale, f"severity.{exposure.severity.value}"))
        )
        rows.append(
            (
                text(locale, "evidence.confidence"),
                text(locale, f"confidence.{exposure.confidence.value}"),
            )
        )
    if exposure.confirmed_by is not None:
        rows.append(
            (
                text(locale, "evidence.confirmed"),
                text(locale, f"confirmed_by.{exposure.confirmed_by}"),
            )
        )
    return [Heading(breach.title, level=3), Facts(tuple(rows), shape="record")]


def data_class_labels(locale: Locale, data_classes: tuple[str, ...]) -> list[str]:
    """Return the breach's data classes, in Chinese where the class is a known kind."""
    if locale == "en":
        return list(dict.fromkeys(data_classes))
    labels = []
    for data_class in data_classes:
        kind = kind_for_data_class(data_class)
        labels.append(text(locale, f"kind.{kind.value}") if kind is not None else data_class)
    return list(dict.fromkeys(labels))


def _steps(
    locale: Locale,
    facts: SubscriberFacts,
    exposures: tuple[Exposure, ...],
    generated_at: datetime,
    config: PlaybookConfig,
) -> Table:
    steps = sorted(
        (
            (step.done_at, step_title(config, step.step_id, locale), exposure.breach.title)
            for exposure in exposures
            for step in exposure.steps_done
            if step.done_at <= generated_at
        ),
        key=lambda entry: (entry[0], entry[1], entry[2]),
    )
    return Table(
        columns=(
            Column(text(locale, "column.time"), 1.3),
            Column(text(locale, "column.step"), 3.0),
            Column(text(locale, "column.breach"), 1.8),
        ),
        rows=tuple((local_time(at, facts.zone), title, breach) for at, title, breach in steps),
        empty=text(locale, "dossier.steps_none"),
    )
