"""`idsentry reports run`: queue monthly security reports, and optionally wait for them."""

from __future__ import annotations

import re
from typing import Any

import click
from rich.console import Console

from idsentry_cli import reports as reports_logic
from idsentry_cli.context import CliContext, json_option, pass_context, raise_input_error
from idsentry_cli.errors import ApiError, CliError
from idsentry_cli.output import table, text

MONTH_PATTERN = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
# Rows the table shows; `--json` lists every report.
MAX_ROWS = 100


@click.group()
def reports() -> None:
    """Queue subscribers' monthly security reports."""


@reports.command(name="run")
@click.option(
    "--subscriber",
    "subscriber_id",
    help="Only this subscriber's report (an id such as sbr_01M9…); default: every entitled one.",
)
@click.option(
    "--month",
    help="The month to report, YYYY-MM, which must have ended (default: last month, China time).",
)
@click.option("--wait", is_flag=True, help="Follow the queued reports until each is announced.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="Seconds --wait follows the reports before giving up.",
)
@json_option
@pass_context
def run_reports(
    shared: CliContext, subscriber_id: str | None, month: str | None, wait: bool, timeout: float
) -> None:
    """Queue the monthly report of one subscriber, or of every entitled subscriber.

    Repeating the command for the same month renders and e-mails nothing twice: a report that
    was announced is not queued again, and a month whose run over every entitled subscriber
    finished queues nothing more. A subscriber whose account was created after the month ended
    is skipped. Prints counts and report ids, never personal data. With --wait, exits with 1
    when a report is still not announced at --timeout.
    """
    if month is not None and not MONTH_PATTERN.fullmatch(month):
        raise click.BadParameter("expected YYYY-MM, such as 2026-11", param_hint="--month")
    body: dict[str, Any] = {}
    if month is not None:
        body["month"] = month
    if subscriber_id is not None:
        body["subscriber_id"] = subscriber_id

    api = shared.api()
    stderr = shared.output.stderr()

    def show_request(result: dict[str, Any]) -> None:
        if not result.get("finished", True):
            stderr.print(f"queued {result.get('queued', 0)} reports, continuing the run")

    try:
        result = reports_logic.run_reports(api, body, show_request)
    except ApiError as exc:
        if exc.status in (404, 409) and exc.field == "subscriber_id":
            raise CliError(f"{exc.detail} (--subscriber)") from exc
        raise_input_error(exc, reports_logic.RUN_OPTIONS)

    # Told apart before --wait changes the states of the reports this command queued.
    announced_before = {
        entry["subscriber_id"]
        for entry in result["reports"]
        if entry["state"] == reports_logic.FINISHED_STATE
    }
    if wait and result["reports"]:
        month_path = f"{reports_logic.REPORTS_PATH}/{result['month']}"

        def read_states(subscriber_ids: list[str]) -> list[dict[str, Any]]:
            document = api.get(month_path, {"subscriber_ids": ",".join(subscriber_ids)})
            found: list[dict[str, Any]] = document["reports"]
            return found

        def show_progress(done: int, total: int) -> None:
            if not shared.output.json_mode:
                stderr.print(f"{done} of {total} reports announced")

        result["reports"] = reports_logic.follow_reports(
            read_states, result["reports"], timeout, show_progress
        )

    shared.output.emit(result, lambda console: _render(console, result, announced_before))
    if wait:
        waiting = [
            entry for entry in result["reports"] if entry["state"] != reports_logic.FINISHED_STATE
        ]
        if waiting:
            raise CliError(
                f"{len(waiting)} of {len(result['reports'])} reports were not announced within "
                f"{timeout:.0f} s: the worker may still be busy, and `idsentry dlq list` shows "
                "report jobs that failed (ReportDLQ)"
            )


def _reports(count: int) -> str:
    return f"{count} report" if count == 1 else f"{count} reports"


def _skip_reason(reason: str | None, month: object) -> str:
    if reason == "signed_up_after_month":
        return f"account created after {month} ended"
    if reason == "no_account":
        return "account deleted"
    return text(reason)


def _render(console: Console, result: dict[str, Any], announced_before: set[str]) -> None:
    month = result.get("month")
    entries = result.get("reports") or []
    skipped = result.get("skipped_subscribers") or []
    if result.get("scope") == "subscriber":
        if result.get("queued"):
            console.print(f"queued the {month} report of {entries[0]['subscriber_id']}")
        elif skipped:
            console.print(
                f"skipped the {month} report of {skipped[0]['subscriber_id']}: "
                f"{_skip_reason(skipped[0].get('reason'), month)}, so nothing queued"
            )
        else:
            console.print(
                f"the {month} report of {entries[0]['subscriber_id']} was already announced: "
                "nothing queued"
            )
        _print_reports(console, None, entries)
        return

    if result.get("already_finished"):
        console.print(
            f"the {month} run over every entitled subscriber had finished before: nothing queued"
        )
        return
    console.print(
        f"queued {_reports(result.get('queued', 0))} of {month} for every entitled subscriber"
    )
    if announced_before:
        console.print(f"{_reports(len(announced_before))} already announced: not queued again")
    if skipped:
        noun = "subscriber" if len(skipped) == 1 else "subscribers"
        console.print(f"{len(skipped)} {noun} skipped")
    queued = [entry for entry in entries if entry.get("subscriber_id") not in announced_before]
    announced = [entry for entry in entries if entry.get("subscriber_id") in announced_before]
    _print_reports(console, "Queued", queued)
    _print_reports(console, "Already announced", announced)
    if skipped:
        rows = table("Subscriber", "Reason", title="Skipped")
        for entry in skipped[:MAX_ROWS]:
            rows.add_row(text(entry.get("subscriber_id")), _skip_reason(entry.get("reason"), month))
        console.print(rows)
        _print_more(console, len(skipped), "skipped subscriber")


def _print_reports(console: Console, title: str | None, entries: list[dict[str, Any]]) -> None:
    """Print a table of reports, at most MAX_ROWS of them; nothing when there are none."""
    if not entries:
        return
    rows = table("Subscriber", "Report", "State", title=title)
    for entry in entries[:MAX_ROWS]:
        rows.add_row(
            text(entry.get("subscriber_id")), text(entry.get("report_id")), text(entry.get("state"))
        )
    console.print(rows)
    _print_more(console, len(entries))


def _print_more(console: Console, count: int, noun: str = "report") -> None:
    if count > MAX_ROWS:
        console.print(f"and {count - MAX_ROWS} more: --json lists every {noun}")
