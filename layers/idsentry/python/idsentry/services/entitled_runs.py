"""Scheduled runs over every entitled subscriber, resumable from a checkpoint item.

A run pages the sparse `ENTITLED` index of `gsi1` and hands each page of subscriber ids to the
caller, who queues one job per subscriber. The checkpoint (`run_pk` / `RUN`) is written after
each page, so a retried run continues after the last finished page and a finished run hands
out nothing more. A page handed out twice (a crash between the jobs and the checkpoint) is
harmless, because job ids and the consumers' own records make each job idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idsentry.adapters.table import MainTable

ENTITLED_INDEX_KEY = "ENTITLED"
PAGE_SIZE = 1000
RUN_SK = "RUN"


@dataclass(frozen=True)
class RunOutcome:
    """How many subscribers this invocation handed out, and whether the run had finished before."""

    handed_out: int
    already_finished: bool
    # False when `max_pages` ended this invocation before the last page; calling again continues.
    finished: bool = True


def run_over_entitled(
    table: MainTable,
    run_pk: str,
    handle_page: Callable[[list[str]], None],
    page_size: int = PAGE_SIZE,
    checkpoint_fields: dict[str, Any] | None = None,
    max_pages: int | None = None,
) -> RunOutcome:
    """Call `handle_page` with each page of entitled subscriber ids, after the checkpoint.

    With `max_pages`, return after that many pages with `finished` False, so that a caller with
    a short timeout (an API request) continues the run with a later call.
    """
    run = table.get(run_pk, RUN_SK) or {}
    if run.get("finished"):
        return RunOutcome(handed_out=0, already_finished=True)

    start_after: dict[str, str] | None = run.get("start_after")
    handed_out = 0
    pages = 0
    while True:
        request: dict[str, Any] = {
            "TableName": table.name,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :entitled",
            "ExpressionAttributeValues": {":entitled": {"S": ENTITLED_INDEX_KEY}},
            "Limit": page_size,
        }
        if start_after:
            request["ExclusiveStartKey"] = {
                name: {"S": value} for name, value in start_after.items()
            }
        page = table.client().query(**request)

        subscribers = [item["gsi1sk"]["S"] for item in page.get("Items", [])]
        handle_page(subscribers)
        handed_out += len(subscribers)

        last = page.get("LastEvaluatedKey")
        start_after = {name: value["S"] for name, value in last.items()} if last else None
        # Written after the page's jobs: a crash in between repeats the page, never skips one.
        checkpoint: dict[str, Any] = {"pk": run_pk, "sk": RUN_SK, **(checkpoint_fields or {})}
        if start_after:
            checkpoint["start_after"] = start_after
        else:
            checkpoint["finished"] = True
        table.put(checkpoint)
        pages += 1
        if not start_after:
            return RunOutcome(handed_out=handed_out, already_finished=False)
        if max_pages is not None and pages >= max_pages:
            return RunOutcome(handed_out=handed_out, already_finished=False, finished=False)
