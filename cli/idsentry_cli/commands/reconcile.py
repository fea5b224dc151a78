"""`idsentry reconcile`: run a finance reconciliation for a period and download its files."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from idsentry.money import Money, UnknownCurrencyError, format_money
from idsentry.services.reconcile_model import ROW_CLASSES
from idsentry.services.reconcile_text import CLASSES, OUTCOMES
from idsentry_cli import reconcile as reconcile_logic
from idsentry_cli.context import CliContext, json_option, pass_context, raise_input_error
from idsentry_cli.errors import ApiError, CliError
from idsentry_cli.output import table, text

TOTAL_COLUMNS = (
    ("stripe_payments", "Stripe payments"),
    ("ledger_payments", "Ledger payments"),
    ("stripe_refunds", "Stripe refunds"),
    ("ledger_refunds", "Ledger refunds"),
    ("stripe_disputes", "Stripe disputes"),
    ("ledger_disputes", "Ledger disputes"),
    ("stripe_payouts", "Stripe payouts"),
)


@click.command()
@click.option("--from", "from_date", help="First day of the period, YYYY-MM-DD (Asia/Shanghai).")
@click.option("--to", "to_date", help="Last day of the period, inclusive (default: --from).")
@click.option(
    "--repair",
    is_flag=True,
    help="Apply the Stripe events of items missing in the ledger again, once each.",
)
@click.option(
    "--locale",
    type=click.Choice(["zh-CN", "en"]),
    default="zh-CN",
    show_default=True,
    help="Language of the CSV header (the HTML summary comes in both).",
)
@click.option(
    "--id",
    "reconciliation_id",
    help="Follow and download an existing run (as the finance e-mail names it) instead.",
)
@click.option(
    "--out",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write the four files to, each named <reconciliation id>-<file>.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=1800.0,
    show_default=True,
    help="Seconds to wait for the run to finish before giving up.",
)
@json_option
@pass_context
def reconcile(
    shared: CliContext,
    from_date: str | None,
    to_date: str | None,
    repair: bool,
    locale: str,
    reconciliation_id: str | None,
    folder: Path,
    timeout: float,
) -> None:
    """Reconcile Stripe with the ledger for --from to --to, then download the files to --out.

    Shows the run's progress, prints the items per class and the totals, and writes the CSV,
    the HTML summaries in Chinese and English and the JSON. Exits with 1 when the run failed
    or is still running at --timeout.
    """
    api = shared.api()
    output = shared.output
    if reconciliation_id is not None:
        if from_date is not None or to_date is not None or repair:
            raise click.UsageError("pass either --id or --from/--to/--repair, not both")
        if not reconcile_logic.ID_PATTERN.fullmatch(reconciliation_id):
            raise click.BadParameter(
                "expected a reconciliation id such as rcn_day_20261204", param_hint="--id"
            )
    else:
        if from_date is None:
            raise click.UsageError("pass --from YYYY-MM-DD (and --to), or --id of an existing run")
        body: dict[str, Any] = {"from": from_date, "repair": repair, "locale": locale}
        if to_date is not None:
            body["to"] = to_date
        # One key per invocation, so that a retried request cannot start a second run.
        headers = {"Idempotency-Key": f"cli-{uuid.uuid4()}"}
        try:
            started = api.post("/v1/admin/reconciliations", body, headers=headers)
        except ApiError as exc:
            raise_input_error(exc, reconcile_logic.REQUEST_OPTIONS)
        reconciliation_id = str(started["reconciliation_id"])
        if started.get("created"):
            output.say(f"started reconciliation {reconciliation_id}")
        else:
            output.say(
                f"reconciliation {reconciliation_id} of the same period and mode is already "
                f"{started.get('status')}; following it"
            )

    path = f"/v1/admin/reconciliations/{reconciliation_id}"
    run = _follow(shared, path, reconciliation_id, timeout)
    if run.get("status") == "failed":
        error = run.get("error") or {}
        raise CliError(
            f"reconciliation {reconciliation_id} failed ({error.get('type', 'unknown error')}, "
            f"attempt {run.get('attempts')}). SQS retries it; follow it with "
            f"`idsentry reconcile --id {reconciliation_id}`"
        )
    if run.get("status") != "done":
        raise CliError(
            f"reconciliation {reconciliation_id} did not finish within {timeout:.0f} s: "
            f"follow it with `idsentry reconcile --id {reconciliation_id}`"
        )

    written = reconcile_logic.download_files(run, folder)
    document = {**run, "downloaded": [str(file) for file in written]}
    output.emit(document, lambda console: _summary(console, run, written))


def _follow(
    shared: CliContext, path: str, reconciliation_id: str, timeout: float
) -> dict[str, Any]:
    api = shared.api()
    last_status: list[str] = []

    def read() -> dict[str, Any]:
        found = api.get(path, missing_ok=True)
        if found is None:
            raise CliError(
                f"reconciliation {reconciliation_id} not found: use the id that "
                "`idsentry reconcile` printed or the finance e-mail names"
            )
        result: dict[str, Any] = found
        return result

    def show(run: dict[str, Any]) -> None:
        status = f"{run.get('status')} (attempt {run.get('attempts')})"
        if not last_status or last_status[-1] != status:
            last_status.append(status)
            shared.output.stderr().print(f"{reconciliation_id}: {status}")

    try:
        return reconcile_logic.follow_run(read, show, timeout)
    except ApiError as exc:
        raise_input_error(exc, reconcile_logic.REQUEST_OPTIONS)


def _money(amount: Any, currency: str) -> str:
    try:
        return format_money(Money(int(amount), currency), "en")
    except UnknownCurrencyError:
        return f"{amount} {currency.upper()} (minor units)"


def _summary(console: Console, run: dict[str, Any], written: list[Path]) -> None:
    period = run.get("period") or {}
    mode = "repair" if run.get("repair") else "check only"
    console.print(
        f"reconciliation {run['reconciliation_id']}: {period.get('from')} to {period.get('to')} "
        f"(Asia/Shanghai), {mode}, {run.get('rows', 0)} items"
    )

    counts = run.get("counts") or {}
    rows = table("Class", "Items")
    for name in ROW_CLASSES:
        rows.add_row(CLASSES["en"][name], text(counts.get(name, 0)))
    console.print(rows)

    totals = run.get("totals") or {}
    if totals:
        money = table("Currency", *(label for _, label in TOTAL_COLUMNS))
        for currency, values in sorted(totals.items()):
            money.add_row(
                currency.upper(),
                *(_money(values.get(name, 0), currency) for name, _ in TOTAL_COLUMNS),
            )
        console.print(money)

    repairs = run.get("repairs") or {}
    if run.get("repair"):
        listed = ", ".join(
            f"{OUTCOMES['en'].get(outcome, outcome)} {count}"
            for outcome, count in sorted(repairs.items())
        )
        console.print(f"repairs: {listed or 'nothing to repair'}")

    for file in written:
        console.print(f"wrote {file} ({file.stat().st_size} bytes)")
