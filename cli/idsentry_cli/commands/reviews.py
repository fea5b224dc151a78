"""`idsentry reviews`: list the exposures waiting for an analyst, and decide them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
from rich.console import Console

from idsentry_cli.context import CliContext, json_option, pass_context, raise_input_error
from idsentry_cli.errors import ApiError, CliError
from idsentry_cli.output import table, text

# The admin API's input field names and the options that set them.
LIST_OPTIONS = {"breach": "--breach", "limit": "--limit", "cursor": "--cursor"}
DECISION_OPTIONS = {
    "breach": "BREACH",
    "decision": "--confirm/--dismiss",
    "reason": "--reason",
    "alert_ids": "--alert",
}


@click.group()
def reviews() -> None:
    """List and decide exposures that risk review left for an analyst."""


@reviews.command(name="list")
@click.option("--breach", help="Only this breach's pending reviews (its catalogue Name).")
@click.option(
    "--limit", type=click.IntRange(1, 200), help="Exposures per page, 1 to 200 (default 50)."
)
@click.option("--cursor", help="Continue after the page whose output printed this cursor.")
@json_option
@pass_context
def list_reviews(
    shared: CliContext, breach: str | None, limit: int | None, cursor: str | None
) -> None:
    """List pending reviews grouped by breach, with masked evidence (the view is audited)."""
    path = "/v1/admin/reviews" if breach is None else f"/v1/admin/reviews/{quote(breach, safe='')}"
    params = {}
    if limit is not None:
        params["limit"] = str(limit)
    if cursor is not None:
        params["cursor"] = cursor

    try:
        page = shared.api().get(path, params)
    except ApiError as exc:
        if exc.status == 404 and breach is not None:
            raise CliError(
                f"breach {breach} not found: no catalogue entry and no pending review"
            ) from exc
        raise_input_error(exc, LIST_OPTIONS)

    shared.output.emit(page, lambda console: _render_page(console, page, breach))


@reviews.command()
@click.argument("breach")
@click.option("--confirm", is_flag=True, help="Confirm the exposures: their alerts are sent.")
@click.option("--dismiss", is_flag=True, help="Dismiss the exposures: no alert is sent.")
@click.option("--reason", required=True, help="Why, in up to 1000 characters (audited).")
@click.option(
    "--alert",
    "alert_ids",
    multiple=True,
    help="Decide only this alert id (repeatable); without it, the breach's pending alerts.",
)
@json_option
@pass_context
def decide(
    shared: CliContext,
    breach: str,
    confirm: bool,
    dismiss: bool,
    reason: str,
    alert_ids: tuple[str, ...],
) -> None:
    """Confirm or dismiss BREACH's pending alerts, or only those given with --alert."""
    if confirm == dismiss:
        raise click.UsageError("pass exactly one of --confirm and --dismiss")
    body: dict[str, Any] = {"decision": "confirm" if confirm else "dismiss", "reason": reason}
    if alert_ids:
        body["alert_ids"] = list(alert_ids)

    try:
        result = shared.api().post(f"/v1/admin/reviews/{quote(breach, safe='')}/decision", body)
    except ApiError as exc:
        if exc.status == 404:
            raise CliError(
                f"breach {breach} not found: no catalogue entry and no pending review"
            ) from exc
        raise_input_error(exc, DECISION_OPTIONS)

    shared.output.emit(result, lambda console: _render_decision(console, result))


def _render_page(console: Console, page: dict[str, Any], breach: str | None) -> None:
    groups = page.get("groups") or []
    if not any(group.get("count") for group in groups):
        console.print("no pending reviews" + (f" for {breach}" if breach else ""))
    for group in groups:
        summary = group.get("breach") or {}
        verified = "verified" if summary.get("is_verified") else "unverified"
        rows = table(
            "Alert",
            "Subscriber",
            "Matched",
            "Severity",
            "Confidence",
            "Found",
            title=(
                f"{group['breach_name']}: {summary.get('title') or 'not in the catalogue'}, "
                f"{verified}, breach date {summary.get('breach_date')}, "
                f"{group.get('count', 0)} pending"
            ),
        )
        for exposure in group.get("exposures") or []:
            masked = exposure.get("masked") or {}
            matched = [
                f"{kind} {masked.get(kind) or '(removed)'}"
                for kind in exposure.get("matched_kinds") or []
            ]
            rows.add_row(
                text(exposure.get("alert_id")),
                text(exposure.get("subscriber_id")),
                text(matched),
                text(exposure.get("severity")),
                text(exposure.get("confidence")),
                text(exposure.get("found_at")),
            )
        console.print(rows)
    if page.get("next_cursor"):
        more = f" --breach {breach}" if breach else ""
        console.print(f"more pending: idsentry reviews list{more} --cursor {page['next_cursor']}")


def _render_decision(console: Console, result: dict[str, Any]) -> None:
    verb = "confirmed" if result.get("decision") == "confirm" else "dismissed"
    console.print(f"{verb} {result.get('decided', 0)} alerts of {result.get('breach_name')}")
    rows = table("Alert", "Subscriber", "Outcome", "Status")
    for entry in result.get("results") or []:
        rows.add_row(
            text(entry.get("alert_id")),
            text(entry.get("subscriber_id")),
            text(entry.get("outcome")),
            text(entry.get("status")),
        )
    if result.get("results"):
        console.print(rows)
    if result.get("more_pending"):
        console.print("more pending alerts remain: run the same command again to decide them")
