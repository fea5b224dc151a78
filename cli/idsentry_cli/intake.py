"""Upload a breach dataset to the intake bucket and follow its intake job to the end.

The data file goes up first as `<prefix>/data.<format>`, then the manifest as
`<prefix>/manifest.json`. The bucket notifies intake only for the manifest, so intake finds the
whole data file when it starts. The job id is derived from the manifest's key and ETag with the
service's own function, so the CLI computes it without waiting for intake.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from idsentry.models.breach import IntakeManifest, parse_manifest
from idsentry.services.intake import data_key_for, intake_job_id

# The wait between two reads of a job grows from the first value to the second while the job
# does not change, so that a long intake costs few admin API requests.
POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 5.0
FINAL_STATUSES = ("done", "rejected")
COUNTERS = (
    "chunks_done",
    "chunks_total",
    "rows_read",
    "rows_accepted",
    "rows_rejected",
    "exposures",
)
JOB_ID_PATTERN = re.compile(r"ijob_[0-9a-f]{26}")
PREFIX_PATTERN = re.compile(r"[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*")


class PrefixError(ValueError):
    """An upload prefix that is not a plain S3 key prefix."""


@dataclass(frozen=True)
class Upload:
    """Location of an uploaded dataset and the id of the intake job it starts."""

    bucket: str
    data_key: str
    manifest_key: str
    job_id: str
    size: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_manifest(path: Path) -> tuple[bytes, IntakeManifest]:
    """Read and validate a manifest file; raises ManifestError naming every invalid field."""
    document = path.read_bytes()
    return document, parse_manifest(document)


def default_prefix(now: datetime) -> str:
    """Return a prefix of its own for an upload at `now` (UTC), under `incoming/`."""
    return f"incoming/{now:%Y%m%dT%H%M%S%f}"


def normalize_prefix(prefix: str) -> str:
    """Strip surrounding slashes; raise PrefixError unless segments use S3's safe characters."""
    stripped = prefix.strip("/")
    if not PREFIX_PATTERN.fullmatch(stripped) or ".." in stripped.split("/"):
        raise PrefixError(
            "expected segments of letters, digits and !_.*'()- separated by '/', "
            "for example incoming/shop-2026"
        )
    return stripped


def upload_dataset(
    s3: Any,
    bucket: str,
    data_file: Path,
    manifest_document: bytes,
    manifest: IntakeManifest,
    prefix: str,
    on_bytes: Callable[[int], None] | None = None,
) -> Upload:
    """Upload the data file, then the manifest, and return the upload with its job id.

    `on_bytes` is called with the number of bytes sent since its last call, from the
    transfer's worker threads.
    """
    manifest_key = f"{prefix}/manifest.json"
    data_key = data_key_for(manifest_key, manifest)
    size = data_file.stat().st_size

    s3.upload_file(str(data_file), bucket, data_key, Callback=on_bytes)
    response = s3.put_object(Bucket=bucket, Key=manifest_key, Body=manifest_document)

    etag = str(response["ETag"]).strip('"')
    return Upload(
        bucket=bucket,
        data_key=data_key,
        manifest_key=manifest_key,
        job_id=intake_job_id(bucket, manifest_key, etag),
        size=size,
    )


def wait_for_next_poll(seconds: float) -> None:
    """Sleep between two reads of the job (tests replace this to deliver queued messages)."""
    time.sleep(seconds)


def follow_job(
    read_job: Callable[[], dict[str, Any] | None],
    on_update: Callable[[dict[str, Any]], None],
    timeout_seconds: float,
    poll_seconds: float = POLL_SECONDS,
) -> dict[str, Any] | None:
    """Read the job until it is done or rejected, or the timeout passes; return the last read.

    `read_job` returns None while intake has not recorded the job yet. `on_update` is called
    with every job read.
    """
    deadline = time.monotonic() + timeout_seconds
    wait_seconds = poll_seconds
    previous = None
    while True:
        job = read_job()
        if job is not None:
            on_update(job)
            if job.get("status") in FINAL_STATUSES:
                return job
        if time.monotonic() >= deadline:
            return job

        unchanged = job == previous
        wait_seconds = min(wait_seconds * 1.5, MAX_POLL_SECONDS) if unchanged else poll_seconds
        previous = job
        wait_for_next_poll(min(wait_seconds, max(deadline - time.monotonic(), 0.0)))


def job_counters(job: dict[str, Any]) -> dict[str, Any]:
    """Return the progress counters of a job, None for those intake has not set."""
    return {name: job.get(name) for name in COUNTERS}


def reason_lines(job: dict[str, Any]) -> list[str]:
    """Return one line per group of the job's counts by reason, for example rejected rows."""
    lines = []
    for group, counts in sorted((job.get("by_reason") or {}).items()):
        if counts:
            listed = ", ".join(f"{reason} {count}" for reason, count in sorted(counts.items()))
            lines.append(f"{group}: {listed}")
    return lines
