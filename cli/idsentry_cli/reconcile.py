"""Follow a reconciliation run through the admin API and download its files."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from idsentry_cli.errors import CliError

# The wait between two reads of a run grows from the first value to the second while the run
# does not change. A day of Stripe objects takes seconds, and 10,000 objects take minutes.
POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 10.0
FINAL_STATUSES = ("done", "failed")
ID_PATTERN = re.compile(r"rcn_[0-9A-Za-z_]{1,40}")
FILE_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
# Seconds to connect and to read one file from its presigned URL.
DOWNLOAD_TIMEOUT = (5, 120)
# The admin API's input field names and the options that set them.
REQUEST_OPTIONS = {
    "from": "--from",
    "to": "--to",
    "repair": "--repair",
    "locale": "--locale",
    "reconciliation_id": "--id",
}


def wait_for_next_poll(seconds: float) -> None:
    """Sleep between two reads of the run (tests replace this to deliver queued jobs)."""
    time.sleep(seconds)


def follow_run(
    read_run: Callable[[], dict[str, Any]],
    on_update: Callable[[dict[str, Any]], None],
    timeout_seconds: float,
    poll_seconds: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Read the run until it is done or failed, or the timeout passes; return the last read."""
    deadline = clock() + timeout_seconds
    wait_seconds = poll_seconds
    previous: dict[str, Any] | None = None
    while True:
        run = read_run()
        on_update(run)
        if run.get("status") in FINAL_STATUSES or clock() >= deadline:
            return run

        unchanged = _progress(run) == _progress(previous)
        wait_seconds = min(wait_seconds * 1.5, MAX_POLL_SECONDS) if unchanged else poll_seconds
        previous = run
        wait_for_next_poll(min(wait_seconds, max(deadline - clock(), 0.0)))


def _progress(run: dict[str, Any] | None) -> tuple[Any, ...]:
    if run is None:
        return ()
    return (run.get("status"), run.get("attempts"))


def download_files(run: dict[str, Any], folder: Path) -> list[Path]:
    """Download each file of a done run into `folder` as `<reconciliation_id>-<name>`.

    Raises CliError when a link fails, which happens after its 5 minutes: run the command with
    --id again for new links.
    """
    reconciliation_id = str(run["reconciliation_id"])
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for entry in run.get("files") or []:
        name = str(entry.get("name", ""))
        if not FILE_NAME_PATTERN.fullmatch(name):
            raise CliError(f"the admin API named a file {name!r}, which is not a plain file name")
        response = requests.get(str(entry["url"]), timeout=DOWNLOAD_TIMEOUT)
        if not response.ok:
            raise CliError(
                f"downloading {name} failed with HTTP {response.status_code}: the link may "
                f"have expired; run `idsentry reconcile --id {reconciliation_id}` for new links"
            )
        target = folder / f"{reconciliation_id}-{name}"
        target.write_bytes(response.content)
        written.append(target)
    return written
