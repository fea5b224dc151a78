"""Queue monthly reports and make dossiers through the admin API: request loops, polling, files."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from idsentry_cli.api import AdminApi
from idsentry_cli.errors import CliError

REPORTS_PATH = "/v1/admin/reports"
# Report states that the admin API returns; a report is finished once it is announced.
FINISHED_STATE = "announced"
# One state request names at most this many subscribers (one BatchGetItem in the API).
STATE_BATCH = 100
# The wait between two state reads grows from the first value to the second while no report
# finishes. The worker renders a report in about a second.
POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 10.0
# Requests one `reports run` sends at most while the run over every entitled subscriber
# continues. Each request queues up to 2,000 subscribers, so this covers 2,000,000.
MAX_RUN_REQUESTS = 1000
REFERENCE_PATTERN = re.compile(r"DOS-[0-9A-F]{12}")
# Seconds to connect and to read the dossier from its presigned URL.
DOWNLOAD_TIMEOUT = (5, 120)
# The admin API's input field names and the options that set them.
RUN_OPTIONS = {"month": "--month", "subscriber_id": "--subscriber"}
DOSSIER_OPTIONS = {
    "subscriber_id": "SUBSCRIBER_ID",
    "reason": "--reason",
    "locale": "--locale",
    "audience": "--audience",
    "breach_names": "--breach",
}


def wait_for_next_poll(seconds: float) -> None:
    """Sleep between two reads of the report states (tests replace this to deliver queued jobs)."""
    time.sleep(seconds)


def run_reports(
    api: AdminApi,
    body: dict[str, Any],
    on_request: Callable[[dict[str, Any]], None] = lambda _result: None,
) -> dict[str, Any]:
    """POST the request until the month's run has finished; return the merged result.

    A request for every entitled subscriber queues a few pages and returns `finished: false`
    while subscribers remain, so the same request is repeated, and each repeat continues the run.
    """
    merged: dict[str, Any] | None = None
    for _ in range(MAX_RUN_REQUESTS):
        result: dict[str, Any] = api.post(REPORTS_PATH, body)
        on_request(result)
        if merged is None:
            merged = {
                **result,
                "reports": list(result.get("reports") or []),
                "skipped_subscribers": list(result.get("skipped_subscribers") or []),
            }
        else:
            for count in ("queued", "already_announced", "skipped"):
                merged[count] = merged.get(count, 0) + result.get(count, 0)
            merged["reports"].extend(result.get("reports") or [])
            merged["skipped_subscribers"].extend(result.get("skipped_subscribers") or [])
            merged["finished"] = result.get("finished", True)
        if result.get("finished", True):
            return merged
    raise CliError(
        f"the report run of {body.get('month', 'last month')} did not finish after "
        f"{MAX_RUN_REQUESTS} requests: run the same command again to continue it"
    )


def follow_reports(
    read_states: Callable[[list[str]], list[dict[str, Any]]],
    reports: list[dict[str, Any]],
    timeout_seconds: float,
    on_update: Callable[[int, int], None] = lambda _done, _total: None,
    poll_seconds: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, Any]]:
    """Read the states of `reports` until each is announced or the timeout passes.

    `read_states` takes up to STATE_BATCH subscriber ids and returns their reports. Returns the
    reports with their last states, in the order given.
    """
    states = {entry["subscriber_id"]: dict(entry) for entry in reports}
    deadline = clock() + timeout_seconds
    wait_seconds = poll_seconds
    while True:
        pending = [sid for sid, entry in states.items() if entry["state"] != FINISHED_STATE]
        finished_before = len(states) - len(pending)
        for start in range(0, len(pending), STATE_BATCH):
            for entry in read_states(pending[start : start + STATE_BATCH]):
                states[entry["subscriber_id"]] = entry
        done = sum(1 for entry in states.values() if entry["state"] == FINISHED_STATE)
        on_update(done, len(states))
        if done == len(states) or clock() >= deadline:
            return list(states.values())

        unchanged = done == finished_before
        wait_seconds = min(wait_seconds * 1.5, MAX_POLL_SECONDS) if unchanged else poll_seconds
        wait_for_next_poll(min(wait_seconds, max(deadline - clock(), 0.0)))


def download_dossier(created: dict[str, Any], folder: Path) -> Path:
    """Download the dossier's PDF into `folder` as `idsentry-dossier-<reference>.pdf`.

    Raises CliError when the reference is not a dossier reference, the link fails (after its 5
    minutes) or the file is not a PDF.
    """
    reference = str(created.get("reference", ""))
    if not REFERENCE_PATTERN.fullmatch(reference):
        raise CliError(f"the admin API returned {reference!r}, which is not a dossier reference")
    response = requests.get(str(created["url"]), timeout=DOWNLOAD_TIMEOUT)
    if not response.ok:
        raise CliError(
            f"downloading dossier {reference} failed with HTTP {response.status_code}: the link "
            "may have expired; run `idsentry dossier` again for a new dossier"
        )
    if not response.content.startswith(b"%PDF"):
        raise CliError(f"the download of dossier {reference} is not a PDF")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"idsentry-dossier-{reference}.pdf"
    target.write_bytes(response.content)
    return target
