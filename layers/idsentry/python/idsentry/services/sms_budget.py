"""The service-wide daily budget of alert SMS, counted apart from the one-time-code budget.

One counter item per day in China (`ALERTSMS#{yyyymmdd}`) limits what alerts may spend on SMS
in a day, so a large breach cannot use up the money kept for codes. The code budget is the
`BUDGET#otp-sms` counter of signup, which this module never touches. The per-number cap of
limits.py applies to every SMS on top of both budgets.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from idsentry.adapters.table import MainTable
from idsentry.services import limits

logger = logging.getLogger(__name__)

ALERT_BUDGET_SK = "BUDGET"
# The counter outlives its day by this long, so a late read still finds it.
ALERT_BUDGET_GRACE_SECONDS = 3600
EXHAUSTED_METRIC = "AlertSmsBudgetExhausted"

# Days whose exhaustion this process has logged. The metric counts every refusal, and the log
# line appears once per day and process, because every alert of the day would repeat it.
_logged_days: set[str] = set()


def alert_budget_pk(day: str) -> str:
    """Return the partition key of the alert SMS counter of `day` (yyyymmdd in China)."""
    return f"ALERTSMS#{day}"


def take_alert_sms_budget(table: MainTable, now: int, budget: int) -> bool:
    """Count one alert SMS against today's budget; returns False, writing nothing, once it is spent.

    `now` is in epoch seconds and the day is the date in China. `budget` must be at least 1.
    """
    if isinstance(budget, bool) or budget < 1:
        raise ValueError("budget must be a positive integer")
    day, day_left = limits.china_day_bucket(datetime.fromtimestamp(now, UTC))

    counted = table.update(
        alert_budget_pk(day),
        ALERT_BUDGET_SK,
        "ADD #count :one SET expires_at = if_not_exists(expires_at, :expires_at)",
        values={
            ":one": 1,
            ":limit": budget,
            ":expires_at": now + day_left + ALERT_BUDGET_GRACE_SECONDS,
        },
        condition="attribute_not_exists(#count) OR #count < :limit",
        names={"#count": "count"},
    )
    if counted is not None:
        return True

    _record_exhausted(day, budget)
    return False


def _record_exhausted(day: str, budget: int) -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=EXHAUSTED_METRIC, unit=MetricUnit.Count, value=1):
        pass
    if day not in _logged_days:
        _logged_days.add(day)
        logger.warning("alert sms budget exhausted", extra={"day": day, "budget": budget})
