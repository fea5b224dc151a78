"""`idsentry dossier`: make a subscriber's incident dossier (PDF) and download it."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
from rich.console import Console

from idsentry_cli import reports as reports_logic
from idsentry_cli.context import CliContext, json_option, pass_context, raise_input_error
from idsentry_cli.errors import ApiError, CliError


@click.command()
@click.argument("subscriber_id")
@click.option(
    "--reason",
    required=True,
    help="Why the dossier is made, such as the subscriber's request and its ticket, in up to "
    "1000 characters (audited).",
)
@click.option(
    "--locale",
    type=click.Choice(["zh-CN", "en"]),
    help="Language of the dossier (default: the subscriber's own).",
)
@click.option(
    "--audience",
    type=click.Choice(["police", "bank", "carrier", "general"]),
    default="general",
    show_default=True,
    help="Who the dossier is addressed to.",
)
@click.option(
    "--breach",
    "breach_names",
    multiple=True,
    help="Cover only this confirmed breach (its catalogue Name; repeatable); default: all.",
)
@click.option(
    "--out",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write the PDF to, named idsentry-dossier-<reference>.pdf.",
)
@json_option
@pass_context
def dossier(
    shared: CliContext,
    subscriber_id: str,
    reason: str,
    locale: str | None,
    audience: str,
    breach_names: tuple[str, ...],
    folder: Path,
) -> None:
    """Make SUBSCRIBER_ID's incident dossier (PDF) and download it.

    The dossier covers the subscriber's confirmed exposures, made when a subscriber requests
    one, for example for a police report. It shows identifiers masked only. The admin API
    records who made it, for whom, when and --reason in the audit trail before it returns the
    download link, which works for 5 minutes.
    """
    body: dict[str, Any] = {"reason": reason, "audience": audience}
    if locale is not None:
        body["locale"] = locale
    if breach_names:
        body["breach_names"] = list(breach_names)

    path = f"/v1/admin/subscribers/{quote(subscriber_id, safe='')}/dossier"
    try:
        created: dict[str, Any] = shared.api().post(path, body)
    except ApiError as exc:
        if exc.status == 404 and exc.field == "subscriber_id":
            raise CliError(
                f"subscriber {subscriber_id} not found (SUBSCRIBER_ID): no account has this id, "
                "or its deletion was requested"
            ) from exc
        raise_input_error(exc, reports_logic.DOSSIER_OPTIONS)

    written = reports_logic.download_dossier(created, folder)
    # The link is a bearer credential for the file, so it is not printed.
    document = {key: value for key, value in created.items() if key != "url"}
    document["subscriber_id"] = subscriber_id
    document["downloaded"] = str(written)
    shared.output.emit(document, lambda console: _render(console, document, written))


def _render(console: Console, document: dict[str, Any], written: Path) -> None:
    console.print(
        f"dossier {document.get('dossier_id')} (reference {document.get('reference')}) of "
        f"{document['subscriber_id']}, for {document.get('audience')}, in {document.get('locale')}"
    )
    console.print(f"wrote {written} ({written.stat().st_size} bytes)")
