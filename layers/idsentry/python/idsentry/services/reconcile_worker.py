"""One reconciliation run: claim it, reconcile, store the four files, mark it done, e-mail finance.

Each step is safe to repeat. A run already done is not reconciled again, and only a finance
e-mail that was not recorded as sent is sent again. A failed step marks the run failed and raises, so
SQS retries the message and, after the queue's receive count, moves it to the DLQ.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from idsentry.adapters.email import EmailSender
from idsentry.adapters.finance_files import FinanceFiles
from idsentry.adapters.table import MainTable
from idsentry.clock import Clock
from idsentry.errors import ProviderError
from idsentry.models.billing_jobs import ReconciliationJob
from idsentry.services import reconcile_runs as runs
from idsentry.services.reconcile import ReconcileDeps, reconcile
from idsentry.services.reconcile_email import render_finance_email
from idsentry.services.reconcile_html import render_html
from idsentry.services.reconcile_model import Reconciliation, parse_period
from idsentry.services.reconcile_output import render_csv, render_json

logger = logging.getLogger(__name__)

# Longer than the worker function's 900-second timeout, so that a live run keeps its claim.
LEASE_SECONDS: Final = 960


@dataclass
class WorkerDeps:
    """Dependencies of a run: the table, Stripe and the ledger, the bucket, and e-mail.

    `reconcile_deps(repair)` builds the reconciliation's dependencies, with the Stripe event
    consumer's for repair mode. `finance_email` empty means no e-mail is sent.
    """

    table: MainTable
    reconcile_deps: Callable[[bool], ReconcileDeps]
    files: FinanceFiles
    email: Callable[[], EmailSender]
    finance_email: str
    clock: Clock


def run_job(deps: WorkerDeps, job: ReconciliationJob) -> str:
    """Run the job's reconciliation once; return "done", "already_done" or "in_progress"."""
    record = runs.ensure_run(deps.table, job, deps.clock())
    if record["status"] == runs.DONE:
        email_finance(deps, record)
        return "already_done"

    claim_id = runs.claim(deps.table, job.reconciliation_id, deps.clock(), LEASE_SECONDS)
    if claim_id is None:
        # Another worker holds a live lease on this run, or it finished meanwhile.
        logger.info("reconciliation run taken", extra={"reconciliation_id": job.reconciliation_id})
        return "in_progress"

    try:
        result = reconcile(
            deps.reconcile_deps(job.repair),
            parse_period(job.from_date, job.to_date),
            repair_missing=job.repair,
        )
        store_files(deps.files, job, result)
    except Exception as exc:
        logger.warning(
            "reconciliation run failed",
            extra={
                "reconciliation_id": job.reconciliation_id,
                "error_type": type(exc).__name__,
            },
        )
        runs.fail(deps.table, job.reconciliation_id, claim_id, exc, deps.clock())
        raise

    # NOTE: a crash between storing the files and this update runs the period again on the
    # retry. In repair mode, that second run finds the rows repaired and reports no repairs.
    finished = runs.finish(
        deps.table, job.reconciliation_id, claim_id, runs.summary_of(result), deps.clock()
    )
    if finished is None:
        logger.warning(
            "reconciliation claim lost before finishing",
            extra={"reconciliation_id": job.reconciliation_id},
        )
        return "in_progress"
    logger.info(
        "reconciliation run done",
        extra={"reconciliation_id": job.reconciliation_id, "rows": len(result.rows)},
    )

    email_finance(deps, finished)
    return "done"


def store_files(files: FinanceFiles, job: ReconciliationJob, result: Reconciliation) -> None:
    """Write the CSV (in the job's locale), both HTML summaries and the JSON."""
    contents: dict[str, bytes] = {
        "reconciliation.csv": render_csv(result, job.locale),
        "summary.zh-CN.html": render_html(result, "zh-CN").encode("utf-8"),
        "summary.en.html": render_html(result, "en").encode("utf-8"),
        "reconciliation.json": render_json(result).encode("utf-8"),
    }
    for name, body in contents.items():
        files.put(runs.file_key(job.reconciliation_id, name), body, runs.FILES[name])


def email_finance(deps: WorkerDeps, record: dict[str, Any]) -> None:
    """Send the finance e-mail of a done run unless it was sent or no address is configured.

    A transient provider error propagates, so the message is retried. A permanent one (an
    invalid address, a rejected message) is recorded on the run and not retried.
    """
    reconciliation_id = str(record["reconciliation_id"])
    if not deps.finance_email or record.get("emailed_at") is not None:
        return

    email = render_finance_email(record)
    try:
        message_id = deps.email().send(deps.finance_email, email.subject, email.text, email.html)
    except ProviderError as exc:
        if exc.transient:
            raise
        logger.error(
            "finance e-mail rejected",
            extra={"reconciliation_id": reconciliation_id, "error_code": exc.code},
        )
        runs.record_email(deps.table, reconciliation_id, deps.clock(), error_code=exc.code)
        return

    # NOTE: a crash between the send and this record sends the e-mail again on the retry.
    runs.record_email(deps.table, reconciliation_id, deps.clock(), message_id=message_id)
    logger.info("finance e-mail sent", extra={"reconciliation_id": reconciliation_id})
