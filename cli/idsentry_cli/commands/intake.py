"""`idsentry intake`: upload a breach dataset and follow its intake job, or show a job."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from idsentry.models.breach import ManifestError
from idsentry_cli import intake as intake_logic
from idsentry_cli.context import CliContext, json_option, pass_context
from idsentry_cli.errors import CliError
from idsentry_cli.output import Output, table, text

JOB_FIELDS = (
    "status",
    "breach_name",
    "manifest_key",
    "data_key",
    "created_at",
    "finished_at",
    "reason",
)


@click.group()
def intake() -> None:
    """Upload breach datasets and follow their intake jobs."""


@intake.command()
@click.argument(
    "data_file",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
)
@click.option(
    "--manifest",
    "manifest_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="The dataset's manifest.json (breach, encoding, format, columns, provenance).",
)
@click.option(
    "--prefix",
    help="S3 key prefix to upload under (default: incoming/<UTC time>); one job per prefix.",
)
@click.option(
    "--follow/--no-follow",
    default=True,
    help="Follow the intake job until it is done or rejected (default), or stop after upload.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="Seconds to follow the job before giving up.",
)
@json_option
@pass_context
def upload(
    shared: CliContext,
    data_file: Path,
    manifest_file: Path,
    prefix: str | None,
    follow: bool,
    timeout: float,
) -> None:
    """Upload FILE and its manifest to the intake bucket, then follow the intake job.

    Exits with 1 when intake rejects the dataset or the job is still running at --timeout.
    """
    try:
        manifest_document, manifest = intake_logic.read_manifest(manifest_file)
    except ManifestError as exc:
        raise click.BadParameter(str(exc), param_hint="--manifest") from exc
    try:
        key_prefix = intake_logic.normalize_prefix(
            prefix or intake_logic.default_prefix(datetime.now(UTC))
        )
    except intake_logic.PrefixError as exc:
        raise click.BadParameter(str(exc), param_hint="--prefix") from exc

    resolved = shared.target()
    bucket = resolved.output("IntakeBucketName")
    output = shared.output
    with output.byte_progress() as progress:
        task = progress.add_task(f"uploading {data_file.name}", total=data_file.stat().st_size)
        uploaded = intake_logic.upload_dataset(
            resolved.client("s3"),
            bucket,
            data_file,
            manifest_document,
            manifest,
            key_prefix,
            on_bytes=lambda sent: progress.advance(task, sent),
        )
    output.say(
        f"uploaded {data_file.name} as s3://{bucket}/{uploaded.data_key}; "
        f"intake job {uploaded.job_id}"
    )
    if not follow:
        output.emit({"upload": uploaded.as_dict(), "job": None}, lambda _console: None)
        return

    job = _follow(shared, uploaded.job_id, timeout)
    output.emit({"upload": uploaded.as_dict(), "job": job}, lambda console: _summary(console, job))
    _exit_for(job, uploaded.job_id, timeout)


@intake.command()
@click.argument("job_id")
@json_option
@pass_context
def show(shared: CliContext, job_id: str) -> None:
    """Show intake job JOB_ID: status, counts, and counts by reason."""
    if not intake_logic.JOB_ID_PATTERN.fullmatch(job_id):
        raise click.BadParameter(
            "expected an intake job id such as ijob_ followed by 26 hex digits",
            param_hint="JOB_ID",
        )
    job = shared.api().get(f"/v1/admin/intake-jobs/{job_id}", missing_ok=True)
    if job is None:
        raise CliError(
            f"intake job {job_id} not found: use the id that `idsentry intake upload` printed"
        )
    shared.output.emit(job, lambda console: _details(console, job))


def _follow(shared: CliContext, job_id: str, timeout: float) -> dict[str, Any] | None:
    api = shared.api()
    output: Output = shared.output
    with output.count_progress() as progress:
        task = progress.add_task("waiting for intake to start", total=None)

        def show_progress(job: dict[str, Any]) -> None:
            progress.update(
                task,
                total=job.get("chunks_total"),
                completed=job.get("chunks_done") or 0,
                description=f"{job.get('status')}: {job.get('rows_read') or 0} rows read, chunks",
            )

        return intake_logic.follow_job(
            lambda: api.get(f"/v1/admin/intake-jobs/{job_id}", missing_ok=True),
            show_progress,
            timeout,
        )


def _exit_for(job: dict[str, Any] | None, job_id: str, timeout: float) -> None:
    status = job.get("status") if job else None
    if status == "done":
        return
    if status == "rejected":
        raise click.exceptions.Exit(1)
    raise CliError(
        f"intake job {job_id} did not finish within {timeout:.0f} s: "
        f"follow it with `idsentry intake show {job_id}`"
    )


def _summary(console: Console, job: dict[str, Any] | None) -> None:
    if job is None:
        return
    if job.get("status") == "done":
        console.print(
            f"done: breach {job.get('breach_name')}, {job.get('rows_read')} rows read, "
            f"{job.get('rows_accepted')} accepted, {job.get('rows_rejected')} rejected, "
            f"{job.get('exposures', 0)} new exposures"
        )
    elif job.get("status") == "rejected":
        detail = json.dumps(job.get("detail"), ensure_ascii=False)
        console.print(f"rejected: {job.get('reason')} {detail}")
    for line in intake_logic.reason_lines(job):
        console.print(f"  {line}")


def _details(console: Console, job: dict[str, Any]) -> None:
    rows = table("Field", "Value", title=f"Intake job {job.get('job_id')}")
    for name in JOB_FIELDS:
        if job.get(name) is not None:
            rows.add_row(name, text(job[name], name))
    for name, value in intake_logic.job_counters(job).items():
        if value is not None:
            rows.add_row(name, text(value))
    if job.get("detail") is not None:
        rows.add_row("detail", json.dumps(job["detail"], ensure_ascii=False))
    console.print(rows)
    for line in intake_logic.reason_lines(job):
        console.print(line)
