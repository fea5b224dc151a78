"""`idsentry deliveries`: deliveries whose outcome is unknown, for support to follow up."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from idsentry_cli.context import CliContext, json_option, pass_context
from idsentry_cli.output import table, text


@click.group()
def deliveries() -> None:
    """Follow up notification deliveries."""


@deliveries.command()
@json_option
@pass_context
def unknown(shared: CliContext) -> None:
    """List deliveries settled as unknown (sent or not), oldest first, by ids only."""
    document = shared.api().get("/v1/admin/deliveries/unknown")
    shared.output.emit(document, lambda console: _render(console, document))


def _render(console: Console, document: dict[str, Any]) -> None:
    entries = document.get("deliveries") or []
    if not entries:
        console.print("no deliveries with an unknown outcome")
        return
    rows = table("Message key", "Channel", "Subject", "Attempts", "Claimed at", "Settled at")
    for entry in entries:
        rows.add_row(
            text(entry.get("message_key")),
            text(entry.get("channel")),
            text(entry.get("subject_id")),
            text(entry.get("attempts")),
            text(entry.get("claimed_at"), "claimed_at"),
            text(entry.get("settled_at"), "settled_at"),
        )
    console.print(rows)
