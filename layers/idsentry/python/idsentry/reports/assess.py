"""Derived content of a monthly report: risk level, next steps, chart data and check changes.

Only confirmed exposures count. Exposures still waiting for an analyst (or not scored yet)
are counted apart, and dismissed ones are left out, because the subscriber never got an
alert for them. Everything is computed as of the end of the report month in the
subscriber's time zone, so a report rendered again later shows the same content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from idsentry.clock import SHANGHAI
from idsentry.reports.model import CheckResult, Delivery, Exposure, ReportData, StepDone
from idsentry.services.playbooks import PlaybookConfig, load_config
from idsentry.services.risk import Severity

# Most harmful first, which is the order of tables, reasons and the chart's stacks.
SEVERITIES: tuple[Severity, ...] = (
    Severity.CRITICAL,
    Severity.HIGH,
    Severity.MEDIUM,
    Severity.LOW,
)
_RANK: dict[Severity, int] = {severity: 3 - index for index, severity in enumerate(SEVERITIES)}
_BY_RANK: dict[int, Severity] = {rank: severity for severity, rank in _RANK.items()}

# Exposures found within this many days count as recent, a reason to act now. The number
# is a product choice, not a measured figure.
RECENT_DAYS = 90
# An exposure found more than a year ago weighs one level less.
OLD_DAYS = 365
# This many open exposures at high level or above raise the overall level by one.
MANY_SERIOUS = 3
CHART_MONTHS = 12


@dataclass(frozen=True)
class Period:
    """A report month in the subscriber's time zone: `start` inclusive, `end` exclusive."""

    month: str
    year: int
    month_number: int
    start: datetime
    end: datetime


def report_period(month: str, zone: ZoneInfo, as_of: datetime | None = None) -> Period:
    """Return the period of a YYYY-MM month in `zone`, ending at `as_of` if that comes first.

    A report requested while its month runs covers the month up to the request, so it neither
    claims records for days still to come nor changes once those days have passed.
    """
    year, number = (int(part) for part in month.split("-"))
    next_year, next_number = shift_month(year, number, 1)
    end = datetime(next_year, next_number, 1, tzinfo=zone)
    if as_of is not None and as_of < end:
        end = as_of.astimezone(zone)
    return Period(
        month=month,
        year=year,
        month_number=number,
        start=datetime(year, number, 1, tzinfo=zone),
        end=end,
    )


def shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    """Return the (year, month) `delta` months after (or, when negative, before) the given one."""
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


@dataclass(frozen=True)
class StepState:
    """One recommended step of an exposure, and when it was done (None while it is not)."""

    step_id: str
    done_at: datetime | None


@dataclass(frozen=True)
class ExposureView:
    """A confirmed exposure with its steps as of the period end and the level it weighs in at."""

    exposure: Exposure
    steps: tuple[StepState, ...]
    level: Severity
    recent: bool
    old: bool

    @property
    def done_count(self) -> int:
        """The number of steps done."""
        return sum(1 for step in self.steps if step.done_at is not None)

    @property
    def is_open(self) -> bool:
        """Whether some recommended step is not done yet."""
        return self.done_count < len(self.steps)


@dataclass(frozen=True)
class RiskReason:
    """One reason for the overall level: a text code and the figures it states."""

    code: str
    count: int = 0
    severity: Severity | None = None
    days: int = 0


@dataclass(frozen=True)
class RiskAssessment:
    """The overall risk level and the reasons for it, most important first."""

    level: Severity
    reasons: tuple[RiskReason, ...]


@dataclass(frozen=True)
class ChartMonth:
    """Confirmed exposures found in one month, by severity."""

    year: int
    month: int
    counts: dict[Severity, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The month as YYYY-MM."""
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def total(self) -> int:
        """The number of exposures found in the month."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class NextStep:
    """A recommended step not done yet, and the breaches it is still open for."""

    step_id: str
    severity: Severity
    breach_titles: tuple[str, ...]


CheckStatus = Literal["new", "changed", "same", "not_updated"]


@dataclass(frozen=True)
class CheckChange:
    """The latest result of one check compared with the one the previous report showed."""

    check: str
    status: CheckStatus
    current: CheckResult
    previous: CheckResult | None
    # (count name, previous value, current value) for each count that changed.
    changes: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True)
class StepEvent:
    """A step done for one exposure's alert."""

    done_at: datetime
    step_id: str
    breach_title: str


@dataclass(frozen=True)
class Report:
    """Everything a monthly report shows, derived from its ReportData."""

    data: ReportData
    period: Period
    exposures: tuple[ExposureView, ...]
    new_in_period: int
    under_review: int
    risk: RiskAssessment
    chart: tuple[ChartMonth, ...]
    next_steps: tuple[NextStep, ...]
    due_checks: tuple[str, ...]
    check_changes: tuple[CheckChange, ...]
    steps_in_period: tuple[StepEvent, ...]
    deliveries: tuple[Delivery, ...]


def severity_rank(severity: Severity) -> int:
    """Return the rank of a severity, from 3 for critical down to 0 for low."""
    return _RANK[severity]


def assess_report(data: ReportData, config: PlaybookConfig | None = None) -> Report:
    """Derive the content of one monthly report. The same data gives the same report."""
    config = config or load_config()
    facts = data.facts
    period = report_period(data.month, facts.zone, data.generated_at)

    found = [exposure for exposure in facts.exposures if exposure.found_at < period.end]
    confirmed = [exposure for exposure in found if exposure.status == "confirmed"]
    under_review = sum(
        1 for exposure in found if exposure.status in ("pending_review", "not_scored")
    )
    views = tuple(
        sorted(
            (exposure_view(exposure, period.end, config) for exposure in confirmed),
            key=lambda view: (-view.exposure.found_at.timestamp(), view.exposure.breach.name),
        )
    )
    new_in_period = sum(1 for view in views if view.exposure.found_at >= period.start)

    alert_ids = {view.exposure.alert_id for view in views}
    deliveries = tuple(
        sorted(
            (
                delivery
                for delivery in facts.deliveries
                if delivery.alert_id in alert_ids
                and delivery.at is not None
                and period.start <= delivery.at < period.end
            ),
            key=lambda delivery: (delivery.at, delivery.breach_name, delivery.channel),
        )
    )

    return Report(
        data=data,
        period=period,
        exposures=views,
        new_in_period=new_in_period,
        under_review=under_review,
        risk=assess_risk(views, under_review),
        chart=chart_months(views, period, facts.zone),
        next_steps=next_steps(views),
        due_checks=due_checks(facts.check_results, period.end, config),
        check_changes=check_changes(
            facts.check_results, data.previous_check_results, period, config
        ),
        steps_in_period=steps_in_period(views, period),
        deliveries=deliveries,
    )


def exposure_steps(
    exposure: Exposure, as_of: datetime, config: PlaybookConfig
) -> tuple[StepState, ...]:
    """Return the steps of every kind the exposure leaked, each listed once, in playbook order.

    A step counts as done when it was marked done before `as_of`.
    """
    done: dict[str, StepDone] = {
        step.step_id: step for step in exposure.steps_done if step.done_at < as_of
    }
    step_ids: list[str] = []
    for kind in exposure.exposed_kinds:
        for step_id in config.playbooks[kind].steps:
            if step_id not in step_ids:
                step_ids.append(step_id)
    return tuple(
        StepState(step_id, done[step_id].done_at if step_id in done else None)
        for step_id in step_ids
    )


def exposure_view(exposure: Exposure, as_of: datetime, config: PlaybookConfig) -> ExposureView:
    """Weigh one confirmed exposure as of `as_of`.

    The level starts at the exposure's severity and drops one step each when every
    recommended step is done, when the breach is not verified, and when it was found more
    than OLD_DAYS ago. It never drops below low.
    """
    if exposure.severity is None:
        raise ValueError(f"exposure {exposure.breach.name} has no severity, so it is not confirmed")
    steps = exposure_steps(exposure, as_of, config)
    age = as_of - exposure.found_at
    old = age > timedelta(days=OLD_DAYS)

    rank = _RANK[exposure.severity]
    if all(step.done_at is not None for step in steps):
        rank -= 1
    if exposure.breach.verified is not True:
        rank -= 1
    if old:
        rank -= 1
    return ExposureView(
        exposure=exposure,
        steps=steps,
        level=_BY_RANK[max(rank, 0)],
        recent=age <= timedelta(days=RECENT_DAYS),
        old=old,
    )


def assess_risk(views: tuple[ExposureView, ...], under_review: int) -> RiskAssessment:
    """Return the highest level among the exposures, raised by one when many serious ones are open.

    The reasons first name what drives the level (open exposures by severity, an open ID
    number, recent finds, many serious ones), then what lowers it.
    """
    reasons: list[RiskReason] = []
    if not views:
        reasons.append(RiskReason("no_exposures"))
        if under_review:
            reasons.append(RiskReason("under_review", count=under_review))
        return RiskAssessment(Severity.LOW, tuple(reasons))

    rank = max(_RANK[view.level] for view in views)
    open_views = [view for view in views if view.is_open]
    serious = [view for view in open_views if _RANK[view.level] >= _RANK[Severity.HIGH]]
    if len(serious) >= MANY_SERIOUS:
        rank = min(rank + 1, _RANK[Severity.CRITICAL])

    for severity in SEVERITIES:
        count = sum(1 for view in open_views if view.exposure.severity == severity)
        if count:
            reasons.append(RiskReason("open", count=count, severity=severity))
    if any("id_number" in view.exposure.exposed_kinds for view in open_views):
        reasons.append(RiskReason("id_number"))
    recent = sum(1 for view in open_views if view.recent)
    if recent:
        reasons.append(RiskReason("recent", count=recent, days=RECENT_DAYS))
    if len(serious) >= MANY_SERIOUS:
        reasons.append(RiskReason("many_serious", count=len(serious)))

    done = sum(1 for view in views if not view.is_open)
    if done:
        reasons.append(RiskReason("steps_done", count=done))
    unverified = sum(1 for view in views if view.exposure.breach.verified is not True)
    if unverified:
        reasons.append(RiskReason("unverified", count=unverified))
    old = sum(1 for view in views if view.old)
    if old:
        reasons.append(RiskReason("old", count=old, days=OLD_DAYS))
    if under_review:
        reasons.append(RiskReason("under_review", count=under_review))
    return RiskAssessment(_BY_RANK[rank], tuple(reasons))


def chart_months(
    views: tuple[ExposureView, ...], period: Period, zone: ZoneInfo
) -> tuple[ChartMonth, ...]:
    """Count confirmed exposures by the month they were found in `zone`.

    The result has the 12 months ending with the report month, including months without any.
    """
    months: list[ChartMonth] = []
    for delta in range(-(CHART_MONTHS - 1), 1):
        year, month = shift_month(period.year, period.month_number, delta)
        months.append(ChartMonth(year, month, {severity: 0 for severity in SEVERITIES}))
    by_key = {entry.key: entry for entry in months}

    for view in views:
        local = view.exposure.found_at.astimezone(zone)
        entry = by_key.get(f"{local.year:04d}-{local.month:02d}")
        severity = view.exposure.severity
        if entry is not None and severity is not None:
            entry.counts[severity] += 1
    return tuple(months)


def next_steps(views: tuple[ExposureView, ...]) -> tuple[NextStep, ...]:
    """Return the steps not done yet, most severe exposure first, each with its breaches."""
    ordered = sorted(views, key=lambda view: (-_RANK[view.exposure.severity or Severity.LOW],))
    steps: dict[str, NextStep] = {}
    for view in ordered:
        severity = view.exposure.severity or Severity.LOW
        title = view.exposure.breach.title
        for step in view.steps:
            if step.done_at is not None:
                continue
            known = steps.get(step.step_id)
            if known is None:
                steps[step.step_id] = NextStep(step.step_id, severity, (title,))
            elif title not in known.breach_titles:
                steps[step.step_id] = NextStep(
                    step.step_id, known.severity, (*known.breach_titles, title)
                )
    return tuple(steps.values())


def quarter_of(moment: datetime) -> str:
    """Return the quarter of `moment` in China time as `yyyyqn`, the key check results use."""
    local = moment.astimezone(SHANGHAI)
    return f"{local.year}q{(local.month - 1) // 3 + 1}"


def due_checks(
    results: tuple[CheckResult, ...], as_of: datetime, config: PlaybookConfig
) -> tuple[str, ...]:
    """Return the quarterly checks with no result recorded for the quarter that `as_of` ends in."""
    quarter = quarter_of(as_of - timedelta(seconds=1))
    recorded = {
        result.check
        for result in results
        if result.quarter == quarter and result.recorded_at < as_of
    }
    return tuple(check for check in config.checks if check not in recorded)


def latest_results(results: tuple[CheckResult, ...], before: datetime) -> dict[str, CheckResult]:
    """Return the latest result per check recorded before `before`."""
    latest: dict[str, CheckResult] = {}
    for result in sorted(results, key=lambda entry: (entry.quarter, entry.recorded_at)):
        if result.recorded_at < before:
            latest[result.check] = result
    return latest


def check_changes(
    results: tuple[CheckResult, ...],
    previous_results: tuple[CheckResult, ...] | None,
    period: Period,
    config: PlaybookConfig,
) -> tuple[CheckChange, ...]:
    """Compare each check's latest result with the one the previous report showed.

    Without `previous_results`, the previous report is taken to have shown the latest results
    recorded before the period started.
    """
    current = latest_results(results, period.end)
    # NOTE: a result corrected later in the same quarter replaces the stored item, so without
    # `previous_results` the comparison may use the corrected counts instead of those shown.
    previous = (
        {result.check: result for result in previous_results}
        if previous_results is not None
        else latest_results(results, period.start)
    )

    order = [*config.checks, *sorted(set(current) - set(config.checks))]
    changes: list[CheckChange] = []
    for check in order:
        result = current.get(check)
        if result is None:
            continue
        before = previous.get(check)
        if before is None:
            changes.append(CheckChange(check, "new", result, None))
            continue
        differences = tuple(
            (name, before.counts[name], value)
            for name, value in result.counts.items()
            if name in before.counts and before.counts[name] != value
        )
        if differences:
            status: CheckStatus = "changed"
        elif (result.quarter, result.recorded_at) == (before.quarter, before.recorded_at):
            status = "not_updated"
        else:
            status = "same"
        changes.append(CheckChange(check, status, result, before, differences))
    return tuple(changes)


def steps_in_period(views: tuple[ExposureView, ...], period: Period) -> tuple[StepEvent, ...]:
    """Return the steps done during the period, oldest first."""
    events = [
        StepEvent(step.done_at, step.step_id, view.exposure.breach.title)
        for view in views
        for step in view.exposure.steps_done
        if period.start <= step.done_at < period.end
    ]
    return tuple(
        sorted(events, key=lambda event: (event.done_at, event.step_id, event.breach_title))
    )
