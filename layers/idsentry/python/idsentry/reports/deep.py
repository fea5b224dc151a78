"""Derived content of the bought in-depth report: the whole history, per identifier and per breach.

The monthly report looks at one month. The in-depth report looks at everything from signup
to its generation time. It lists every exposure found, each watched identifier with the
breaches that leaked it, and each breach's evidence with the steps done or still open for it.
It also lists every alert delivery and check result, and orders an action plan by urgency.
Like the monthly report, the risk level weighs confirmed exposures only, and the same data
gives the same report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from idsentry.reports.assess import (
    SEVERITIES,
    ChartMonth,
    ExposureView,
    RiskAssessment,
    assess_risk,
    due_checks,
    exposure_view,
    severity_rank,
    shift_month,
)
from idsentry.reports.model import (
    CheckResult,
    DeepReportData,
    Delivery,
    Exposure,
    MaskedIdentifier,
)
from idsentry.services.playbooks import PlaybookConfig, load_config
from idsentry.services.risk import Severity

Priority = Literal["now", "week", "month", "quarter"]
# Most urgent first, the order of the action plan.
PRIORITIES: tuple[Priority, ...] = ("now", "week", "month", "quarter")
# The urgency of an open step, by the highest weighed level among the exposures it is
# still open for. Quarterly checks are due within the quarter. The deadlines are a product
# choice, like the assessment's RECENT_DAYS.
_PRIORITY_BY_LEVEL: dict[Severity, Priority] = {
    Severity.CRITICAL: "now",
    Severity.HIGH: "now",
    Severity.MEDIUM: "week",
    Severity.LOW: "month",
}
# Delivery statuses of a message that has not been handed to the provider yet.
_NOT_SENT = frozenset({"deferred", "sending"})
# Delivery statuses of a message that did not reach the subscriber.
UNDELIVERED = frozenset({"undelivered", "bounced", "complained", "failed"})


@dataclass(frozen=True)
class IdentifierHistory:
    """One watched identifier and the confirmed exposures that matched it, first found first."""

    identifier: MaskedIdentifier
    exposures: tuple[Exposure, ...]
    # The data classes of those breaches, each once, in the order they first appear.
    data_classes: tuple[str, ...]

    @property
    def first_found(self) -> datetime | None:
        """When the identifier was first found in a breach, or None when it never was."""
        return self.exposures[0].found_at if self.exposures else None

    @property
    def last_found(self) -> datetime | None:
        """When the identifier was last found in a breach, or None when it never was."""
        return self.exposures[-1].found_at if self.exposures else None


@dataclass(frozen=True)
class PlannedStep:
    """A recommended step not done yet, how urgent it is, and the exposures it is open for."""

    priority: Priority
    step_id: str
    # The highest weighed level among those exposures.
    level: Severity
    breach_titles: tuple[str, ...]
    # The earliest time one of those exposures was confirmed, from when the step was due.
    open_since: datetime


@dataclass(frozen=True)
class DeepReport:
    """Everything an in-depth report shows, derived from its DeepReportData."""

    data: DeepReportData
    # The start of the history: signup, or an earlier exposure's find.
    start: datetime
    # Confirmed exposures weighed as of the generation time, newest first.
    exposures: tuple[ExposureView, ...]
    # Every exposure found up to the generation time, whatever its status, oldest first.
    history: tuple[Exposure, ...]
    under_review: int
    dismissed: int
    risk: RiskAssessment
    months: tuple[ChartMonth, ...]
    identifiers: tuple[IdentifierHistory, ...]
    # Every delivery of a confirmed exposure's alert up to the generation time, oldest first.
    deliveries: tuple[Delivery, ...]
    plan: tuple[PlannedStep, ...]
    due_checks: tuple[str, ...]
    # Every check result recorded up to the generation time, by quarter.
    check_results: tuple[CheckResult, ...]

    @property
    def sent_count(self) -> int:
        """The number of alert messages handed to SMS or e-mail providers."""
        return sum(1 for delivery in self.deliveries if delivery.status not in _NOT_SENT)

    @property
    def undelivered_count(self) -> int:
        """The number of alert messages that did not reach the subscriber."""
        return sum(1 for delivery in self.deliveries if delivery.status in UNDELIVERED)


def assess_deep_report(data: DeepReportData, config: PlaybookConfig | None = None) -> DeepReport:
    """Derive the content of one in-depth report as of its generation time."""
    config = config or load_config()
    facts = data.facts
    as_of = data.generated_at

    history = tuple(
        sorted(
            (exposure for exposure in facts.exposures if exposure.found_at <= as_of),
            key=lambda exposure: (exposure.found_at, exposure.breach.name),
        )
    )
    confirmed = [exposure for exposure in history if exposure.status == "confirmed"]
    views = tuple(
        sorted(
            (exposure_view(exposure, as_of, config) for exposure in confirmed),
            key=lambda view: (-view.exposure.found_at.timestamp(), view.exposure.breach.name),
        )
    )
    under_review = sum(
        1 for exposure in history if exposure.status in ("pending_review", "not_scored")
    )
    dismissed = sum(1 for exposure in history if exposure.status == "dismissed")
    start = min([data.since, *(exposure.found_at for exposure in history)])

    alert_ids = {view.exposure.alert_id for view in views}
    deliveries = tuple(
        sorted(
            (
                delivery
                for delivery in facts.deliveries
                if delivery.alert_id in alert_ids
                and delivery.at is not None
                and delivery.at <= as_of
            ),
            key=lambda delivery: (delivery.at, delivery.breach_name, delivery.channel),
        )
    )
    checks = tuple(
        sorted(
            (result for result in facts.check_results if result.recorded_at <= as_of),
            key=lambda result: (result.quarter, _check_rank(config, result.check), result.check),
        )
    )

    return DeepReport(
        data=data,
        start=start,
        exposures=views,
        history=history,
        under_review=under_review,
        dismissed=dismissed,
        risk=assess_risk(views, under_review),
        months=history_months(views, start, as_of, facts.zone),
        identifiers=identifier_histories(facts.identifiers, confirmed),
        deliveries=deliveries,
        plan=action_plan(views, config),
        due_checks=due_checks(facts.check_results, as_of, config),
        check_results=checks,
    )


def _check_rank(config: PlaybookConfig, check: str) -> int:
    order = list(config.checks)
    return order.index(check) if check in order else len(order)


def history_months(
    views: tuple[ExposureView, ...], start: datetime, end: datetime, zone: ZoneInfo
) -> tuple[ChartMonth, ...]:
    """Count confirmed exposures by the month they were found, for every month from start to end."""
    first = start.astimezone(zone)
    last = end.astimezone(zone)
    months: list[ChartMonth] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(ChartMonth(year, month, {severity: 0 for severity in SEVERITIES}))
        year, month = shift_month(year, month, 1)
    by_key = {entry.key: entry for entry in months}

    for view in views:
        local = view.exposure.found_at.astimezone(zone)
        entry = by_key.get(f"{local.year:04d}-{local.month:02d}")
        severity = view.exposure.severity
        if entry is not None and severity is not None:
            entry.counts[severity] += 1
    return tuple(months)


def identifier_histories(
    identifiers: tuple[MaskedIdentifier, ...], confirmed: list[Exposure]
) -> tuple[IdentifierHistory, ...]:
    """Return each watched identifier with the confirmed exposures that matched it.

    An exposure records the kind of identifier that matched, so a bank-card breach is listed
    under each of the subscriber's cards, as in the exposure table.
    """
    ordered = sorted(confirmed, key=lambda exposure: (exposure.found_at, exposure.breach.name))
    histories = []
    for identifier in identifiers:
        matched = tuple(exposure for exposure in ordered if identifier in exposure.matched)
        classes = tuple(
            dict.fromkeys(
                data_class for exposure in matched for data_class in exposure.breach.data_classes
            )
        )
        histories.append(IdentifierHistory(identifier, matched, classes))
    return tuple(histories)


def action_plan(views: tuple[ExposureView, ...], config: PlaybookConfig) -> tuple[PlannedStep, ...]:
    """Return every step not done yet, most urgent first.

    A step open for several exposures appears once, at the urgency of the most serious one.
    Within one urgency, higher levels come first, then the playbooks' order of steps (the
    most harmful kind of data first).
    """
    step_order: list[str] = []
    for playbook in config.playbooks.values():
        step_order.extend(step for step in playbook.steps if step not in step_order)

    found: dict[str, tuple[Severity, list[str], datetime]] = {}
    for view in sorted(views, key=lambda view: (view.exposure.found_at, view.exposure.breach.name)):
        due_from = view.exposure.confirmed_at or view.exposure.found_at
        title = view.exposure.breach.title
        for step in view.steps:
            if step.done_at is not None:
                continue
            known = found.get(step.step_id)
            if known is None:
                found[step.step_id] = (view.level, [title], due_from)
                continue
            level, titles, since = known
            if severity_rank(view.level) > severity_rank(level):
                level = view.level
            if title not in titles:
                titles.append(title)
            found[step.step_id] = (level, titles, min(since, due_from))

    plan = [
        PlannedStep(_PRIORITY_BY_LEVEL[level], step_id, level, tuple(titles), since)
        for step_id, (level, titles, since) in found.items()
    ]

    def rank(planned: PlannedStep) -> tuple[int, int, int, str]:
        position = (
            step_order.index(planned.step_id) if planned.step_id in step_order else len(step_order)
        )
        return (
            PRIORITIES.index(planned.priority),
            -severity_rank(planned.level),
            position,
            planned.step_id,
        )

    return tuple(sorted(plan, key=rank))
