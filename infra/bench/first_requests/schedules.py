"""First requests of the scheduled functions: the event of their schedule, as it fires now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from infra.bench.first_requests.base import ColdStartContext, FirstRequest, require

# Runs are days apart, so each reconciliation planner run plans a day of its own. The worker's
# requests name today, so no day here collides with them.
RECONCILIATION_FIRST_DAY_BACK = 2


def _response(result: dict[str, Any]) -> dict[str, Any]:
    response = result.get("response")
    require(isinstance(response, dict), f"a scheduled function returned {response!r}")
    assert isinstance(response, dict)
    return response


class _ScheduledRequest(FirstRequest):
    """The event that the function's schedule delivers, built by the local runtime."""

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        event: dict[str, Any] = context.runtime.schedule_event(self.logical_id)
        return event


class _EntitledRun(_ScheduledRequest):
    """A planner that pages every entitled subscriber once per period, after a checkpoint.

    A finished run leaves its checkpoint item, and a repeated run in the same period finds
    it and does nothing. So the bench deletes the checkpoint before each run, and every run
    pages the entitled subscribers from the start, as the period's first run does.
    """

    # The response fields whose sum is the number of entitled subscribers the run handled.
    count_fields: tuple[str, ...] = ("queued",)

    def __init__(self) -> None:
        self.first_count: int | None = None

    def checkpoint_pk(self, now: datetime) -> str:
        raise NotImplementedError

    def seed(self, context: ColdStartContext, count: int) -> None:
        # At least one entitled subscriber.
        context.shared_subscriber()

    def before_run(self, context: ColdStartContext, index: int) -> None:
        from idsentry.services.entitled_runs import RUN_SK
        from idsentry.wiring import main_table

        table = main_table()
        table.client().delete_item(
            TableName=table.name,
            Key={"pk": {"S": self.checkpoint_pk(datetime.now(UTC))}, "sk": {"S": RUN_SK}},
        )

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        response = _response(result)
        counts = [response.get(name) for name in self.count_fields]
        require(
            response.get("already_finished") is False and all(isinstance(n, int) for n in counts),
            f"the {self.unit} child did not run over the entitled subscribers: {response}",
        )
        handed_out = sum(int(n) for n in counts if isinstance(n, int))
        require(
            handed_out >= 1,
            f"the {self.unit} child handled no entitled subscriber: {response}",
        )
        if self.first_count is None:
            self.first_count = handed_out
        require(
            handed_out == self.first_count,
            f"the {self.unit} child handed out {handed_out} subscribers, the first run "
            f"{self.first_count}; the runs would not do the same work",
        )


class MonthlyReportsRun(_EntitledRun):
    unit = "report_planner"
    logical_id = "ReportPlannerFunction"
    title = "Report planner (monthly schedule)"
    request = (
        "the schedule's event. It pages the entitled subscribers, reads each one's profile and "
        "queues last month's report job of each who was a subscriber then; the bench deletes "
        "the month's checkpoint item (`REPORTRUN#{month}`) before each run"
    )
    outcome = (
        "handle the same number of entitled subscribers, at least one (queued, already "
        "announced or skipped)"
    )
    note = (
        "The bench's subscribers all signed up this month, so the planner skips each one (no "
        "report covers a month that ended before the signup) and sends no job: the runs page "
        "and read what the month's first run reads, without its SendMessageBatch requests."
    )
    count_fields = ("queued", "already_announced", "skipped")

    def checkpoint_pk(self, now: datetime) -> str:
        from idsentry.services.subscriber_reports import previous_month

        return f"REPORTRUN#{previous_month(now)}"


class CheckRemindersRun(_EntitledRun):
    unit = "check_reminders"
    logical_id = "CheckRemindersFunction"
    title = "Check reminders (quarterly schedule)"
    request = (
        "the schedule's event. It pages the entitled subscribers and queues the quarter's "
        "reminder job of each; the bench deletes the quarter's checkpoint item "
        "(`CHECKREMINDER#{quarter}`) before each run"
    )
    outcome = "queue the jobs of the same number of entitled subscribers, at least one"

    def checkpoint_pk(self, now: datetime) -> str:
        from idsentry.services.quarterly_checks import quarter_of

        return f"CHECKREMINDER#{quarter_of(now)}"


class PhoneReconfirmRun(_EntitledRun):
    unit = "phone_reconfirm"
    logical_id = "PhoneReconfirmFunction"
    title = "Phone reconfirmation (daily schedule)"
    request = (
        "the schedule's event. It pages the entitled subscribers and reads each one's profile "
        "and preferences; the bench deletes the day's checkpoint item "
        "(`PHONERECONFIRM#{day}`) before each run"
    )
    outcome = "check the same number of entitled subscribers, at least one"
    note = (
        "Every bench subscriber proved the number today, so none is due and no run queues an "
        "e-mail or marks a number: the run reads what a day without due numbers reads."
    )
    count_fields = ("checked",)

    def checkpoint_pk(self, now: datetime) -> str:
        from zoneinfo import ZoneInfo

        return f"PHONERECONFIRM#{now.astimezone(ZoneInfo('Asia/Shanghai')):%Y%m%d}"


class _NothingDueRun(_ScheduledRequest):
    """A sweep whose index contains nothing due, the state of most runs of a frequent schedule."""

    expected: ClassVar[dict[str, int]] = {}

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        response = _response(result)
        require(
            response == self.expected,
            f"the {self.unit} child returned {response}, expected {self.expected}",
        )


class BillingRemindersRun(_NothingDueRun):
    unit = "billing_reminders"
    logical_id = "BillingRemindersFunction"
    title = "Billing reminders (hourly schedule)"
    request = "the schedule's event. It queries the index of payment reminders due by now"
    outcome = "queue no reminder"
    expected: ClassVar[dict[str, int]] = {"queued": 0}
    note = (
        "No reminder is due in any run: a reminder falls due days after a failed payment, and "
        "the bench cannot move the local stack's clock. So this is the hourly run with nothing "
        "due, the most frequent one."
    )


class NotificationReleaseRun(_NothingDueRun):
    unit = "notification_release"
    logical_id = "NotificationReleaseFunction"
    title = "Notification release (schedule every minute)"
    request = (
        "the schedule's event. It queries the index of alert SMS deferred for quiet hours and "
        "the review outbox"
    )
    outcome = "release nothing and publish nothing"
    expected: ClassVar[dict[str, int]] = {"released": 0, "review_batches_published": 0}
    note = (
        "Nothing is due in any run: an SMS is deferred only during quiet hours (by the "
        "subscriber's clock), and the bench cannot move the local stack's clock. So this is "
        "the minute's run with nothing due, the most frequent one."
    )


class BreachCheckPlan(_ScheduledRequest):
    unit = "breach_check_planner"
    logical_id = "BreachCheckPlannerFunction"
    title = "Breach check planner (daily schedule)"
    request = (
        "the schedule's event. It fetches the breach catalogue from the HIBP emulator, "
        "compares it with the stored catalogue, and queues the run's first page job"
    )
    outcome = "return today's run date (Asia/Shanghai)"
    note = (
        "The bench fires the schedule once in its own process before the runs, so the "
        "catalogue is stored and every run finds it unchanged, as on most days."
    )

    def seed(self, context: ColdStartContext, count: int) -> None:
        schedule = _schedule_of(context, self.logical_id)
        context.runtime.fire_schedule(schedule)

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        from zoneinfo import ZoneInfo

        today = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
        response = _response(result)
        require(
            response.get("run") == today,
            f"the breach check planner child returned {response}, expected the run {today}",
        )


class ReconciliationPlan(_ScheduledRequest):
    unit = "reconciliation_planner"
    logical_id = "ReconciliationPlannerFunction"
    title = "Reconciliation planner (daily schedule)"
    request = (
        "the schedule's event with a scheduled time one day earlier in each run, so that each "
        "run plans a day that has no run yet: it writes the run item and queues its job"
    )
    outcome = "queue a new run"

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        event = super().event(context, index)
        scheduled = datetime.now(UTC) - timedelta(days=RECONCILIATION_FIRST_DAY_BACK + index)
        require(
            isinstance(event, dict) and "scheduled_time" in event,
            f"the reconciliation schedule's event has no scheduled_time: {event!r}",
        )
        event["scheduled_time"] = scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
        return event

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        response = _response(result)
        require(
            response.get("queued") is True,
            f"the reconciliation planner child queued no new run: {response}",
        )


def _schedule_of(context: ColdStartContext, function_logical_id: str) -> str:
    """Return the logical id of the schedule whose target is the function."""
    runtime = context.runtime
    for schedule in runtime.list_schedules():
        for target in schedule.targets:
            if _targets(runtime, target.arn, function_logical_id):
                return str(schedule.logical_id)
    raise KeyError(f"no schedule targets {function_logical_id}")


def _targets(runtime: Any, arn: str, function_logical_id: str) -> bool:
    try:
        return bool(runtime.stack.function_logical_id(arn) == function_logical_id)
    except KeyError:
        return False


__all__ = [
    "BillingRemindersRun",
    "BreachCheckPlan",
    "CheckRemindersRun",
    "MonthlyReportsRun",
    "NotificationReleaseRun",
    "PhoneReconfirmRun",
    "ReconciliationPlan",
]
