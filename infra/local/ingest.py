"""`make ingest FILE=… MANIFEST=…`: upload a breach dataset to the running local stack and follow it.

Reads the endpoints of the stack that `make run` started from `.local/stack.json`, uploads the
data file as `incoming/<upload id>/data.<format>` and then the manifest, and follows the intake
job through the admin API (`GET /v1/admin/intake-jobs/{job_id}`) until it is done or rejected. Exit status: 0 done, 1 rejected or timed out,
2 bad arguments or no running stack.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests

from idsentry.models.breach import ManifestError, parse_manifest
from idsentry.services.intake import intake_job_id

STATE_FILE = Path(__file__).resolve().parents[2] / ".local" / "stack.json"
POLL_SECONDS = 0.5
COUNTERS = (
    "chunks_done",
    "chunks_total",
    "rows_read",
    "rows_accepted",
    "rows_rejected",
    "exposures",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", required=True, type=Path, help="the breach data file")
    parser.add_argument("--manifest", required=True, type=Path, help="its manifest.json")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to follow the job")
    return parser.parse_args(argv)


def _s3(state: dict[str, Any]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=state["aws_endpoint_url"],
        region_name=state["aws_region"],
        aws_access_key_id="local",
        # moto accepts any credentials; these are not a secret.
        aws_secret_access_key="local",  # noqa: S106
    )


def _job(state: dict[str, Any], job_id: str) -> dict[str, Any] | None:
    """Read the job through the admin API, as an operator would (None until intake records it)."""
    response = requests.get(
        f"{state['base_url']}/v1/admin/intake-jobs/{job_id}",
        headers={state["admin"]["token_header"]: state["admin"]["token"]},
        timeout=10,
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    return job


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not STATE_FILE.exists():
        print(
            "no running local stack: start one with `make run` in another terminal", file=sys.stderr
        )
        return 2
    for path in (args.file, args.manifest):
        if not path.is_file():
            print(f"{path}: file not found", file=sys.stderr)
            return 2
    manifest_bytes = args.manifest.read_bytes()
    try:
        manifest = parse_manifest(manifest_bytes)
    except ManifestError as exc:
        print(
            f"{args.manifest}: invalid manifest, fields: {', '.join(exc.fields)}", file=sys.stderr
        )
        return 2

    state = json.loads(STATE_FILE.read_text(encoding="utf-8"))
    s3 = _s3(state)
    bucket = state["intake_bucket"]
    prefix = f"incoming/{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    data_key, manifest_key = f"{prefix}/data.{manifest.format}", f"{prefix}/manifest.json"
    s3.upload_file(str(args.file), bucket, data_key)
    etag = s3.put_object(Bucket=bucket, Key=manifest_key, Body=manifest_bytes)["ETag"].strip('"')
    job_id = intake_job_id(bucket, manifest_key, etag)
    print(f"uploaded {args.file.name} as s3://{bucket}/{data_key}; intake job {job_id}")

    deadline = time.monotonic() + args.timeout
    last = None
    while time.monotonic() < deadline:
        job = _job(state, job_id)
        if job is not None:
            progress = {name: job.get(name) for name in COUNTERS}
            if progress != last:
                print(f"  {job['status']}: " + ", ".join(f"{k} {v}" for k, v in progress.items()))
                last = progress
            if job["status"] == "done":
                print(f"done: breach {job['breach_name']}, {job.get('exposures', 0)} new exposures")
                for group, counts in sorted(job.get("by_reason", {}).items()):
                    listed = ", ".join(
                        f"{reason} {count}" for reason, count in sorted(counts.items())
                    )
                    print(f"  {group}: {listed}")
                return 0
            if job["status"] == "rejected":
                print(
                    f"rejected: {job['reason']} {json.dumps(job.get('detail'), ensure_ascii=False)}"
                )
                return 1
        time.sleep(POLL_SECONDS)
    print(f"the job did not finish within {args.timeout:.0f} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
