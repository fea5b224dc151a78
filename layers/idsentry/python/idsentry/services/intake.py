"""Dataset intake on AWS: a manifest upload becomes an intake job, chunk jobs and exposures.

An operator uploads `{prefix}/data.{csv|tsv|jsonl}` and then `{prefix}/manifest.json` to the
intake bucket. The manifest's upload starts `start_intake`, which validates the manifest, checks
the file's encoding and header, records the breach in the catalogue and the job in
`INTAKE#{job_id}/JOB`, and queues one chunk job per byte range. `ingest_chunk` streams one range
from S3, fingerprints its identifiers, writes the breach index, matches the fingerprints against
the subscribers' watch items and records each exposure once. The last chunk deletes both files.

Raw rows exist only in memory while a chunk is read: nothing here logs, queues or stores them.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from idsentry.adapters.batch import BatchTable
from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.objects import IntakeObjects
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import ConditionFailedError, MainTable, put_write, update_write
from idsentry.clock import Clock, epoch
from idsentry.crypto import Fingerprint, Pepper
from idsentry.models.breach import Breach, IntakeManifest, ManifestError, parse_manifest
from idsentry.models.breach_jobs import ChunkJob
from idsentry.services.exposures import Finding, find_watchers, record_exposures
from idsentry.services.intake_chunks import HeaderError, RowLayout, plan_intake
from idsentry.services.intake_encoding import EncodingMismatchError
from idsentry.services.intake_parse import ingest_records

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
DAY_SECONDS = 24 * 3600


@dataclass
class IntakeDeps:
    """Everything intake and ingestion talk to, injected so tests can swap any of it."""

    table: MainTable
    watchers: BatchTable
    index: BatchTable
    objects: IntakeObjects
    chunks: JobQueue
    publisher: EventPublisher
    pepper: Callable[[], Pepper]
    clock: Clock
    chunk_bytes: int
    retention_days: int
    match_only: bool


def job_pk(job_id: str) -> str:
    """Return the partition of an intake job: its record and one marker per finished piece."""
    return f"INTAKE#{job_id}"


def data_key_for(manifest_key: str, manifest: IntakeManifest) -> str:
    """Return the data file's key: `data.<format>` beside the manifest."""
    prefix = manifest_key.rsplit("/", 1)[0] if "/" in manifest_key else ""
    name = f"data.{manifest.format}"
    return f"{prefix}/{name}" if prefix else name


def intake_job_id(bucket: str, manifest_key: str, etag: str) -> str:
    """Return the id of the intake job of one manifest upload (its key and content)."""
    digest = hashlib.sha256(f"{bucket}\x1f{manifest_key}\x1f{etag}".encode()).hexdigest()
    return f"ijob_{digest[:26]}"


def breach_item(breach: Breach) -> dict[str, Any]:
    """Return the catalogue item of a dataset's breach, in the HIBP catalogue's item form."""
    fields = breach.model_dump(mode="json", by_alias=False, exclude_none=True)
    return {"pk": f"BREACH#{breach.name}", "sk": "BREACH", **fields}


def start_intake(deps: IntakeDeps, manifest_key: str, etag: str | None = None) -> dict[str, Any]:
    """Turn an uploaded manifest into an intake job; returns the job record.

    The job id comes from the manifest's key and content (`etag`, from the S3 notification;
    read from S3 when None), so a repeated notification finds the existing job and queues
    nothing, even after the finished job deleted the files. A notification whose object is
    gone or was replaced since, and that has no job, returns a record with status `skipped`
    and writes nothing: the upload that replaced it has its own notification. A rejected
    manifest or file gives a job with status `rejected` and the reasons, and nothing is
    ingested.
    """
    job_id = intake_job_id(
        deps.objects.bucket,
        manifest_key,
        etag if etag is not None else deps.objects.etag(manifest_key),
    )
    existing = deps.table.get(job_pk(job_id), "JOB")
    if existing is not None:
        logger.info("intake job exists", extra={"job_id": job_id, "status": existing["status"]})
        same_content = etag is None or deps.objects.current_etag(manifest_key) == etag
        if existing["status"] == "done" and same_content:
            # The same manifest uploaded to the same key again: that content was ingested and
            # deleted once, so this copy is deleted too rather than left for the lifecycle rule.
            # A repeated notification of an upload that another one has replaced since must not
            # delete the newer files.
            deps.objects.delete([manifest_key, str(existing["data_key"])])
        return existing
    if etag is not None and deps.objects.current_etag(manifest_key) != etag:
        logger.warning("intake manifest gone or replaced", extra={"job_id": job_id})
        return {"job_id": job_id, "manifest_key": manifest_key, "status": "skipped"}

    now = deps.clock()
    record: dict[str, Any] = {
        "pk": job_pk(job_id),
        "sk": "JOB",
        "job_id": job_id,
        "manifest_key": manifest_key,
        "created_at": epoch(now),
    }
    try:
        manifest = parse_manifest(deps.objects.read(manifest_key))
    except ManifestError as exc:
        return _reject(deps, record, "manifest_invalid", {"fields": exc.fields})

    data_key = data_key_for(manifest_key, manifest)
    record.update(
        {
            "breach_name": manifest.breach.name,
            "data_key": data_key,
            "provenance": manifest.provenance.model_dump(mode="json"),
        }
    )
    try:
        size = deps.objects.size(data_key)
    except Exception as exc:
        logger.info(
            "intake data file missing", extra={"job_id": job_id, "error": type(exc).__name__}
        )
        return _reject(deps, record, "data_file_missing", {"expected_key": data_key})
    try:
        plan = plan_intake(
            size,
            lambda start, end: deps.objects.read_range(data_key, start, end),
            manifest,
            target_bytes=deps.chunk_bytes,
        )
    except EncodingMismatchError as exc:
        return _reject(deps, record, "encoding_mismatch", {"detail": str(exc)})
    except HeaderError as exc:
        return _reject(deps, record, "header_invalid", {"detail": str(exc)})

    breach = manifest.catalogue_record(now.astimezone(UTC))
    stored = deps.table.put(
        breach_item(breach),
        condition="attribute_not_exists(pk) OR #source = :dataset",
        values={":dataset": "dataset"},
        names={"#source": "source"},
    )
    if not stored:
        # An HIBP breach has this name: a dataset must not overwrite HIBP's record.
        return _reject(deps, record, "breach_name_taken", {"breach_name": breach.name})
    sequential = plan.layout.multiline_fields
    record.update(
        {
            "status": "running",
            "size": plan.size,
            "layout": plan.layout.model_dump_json(),
            "alertable": breach.alertable,
            "chunks_total": len(plan.ranges),
            "chunks_done": 0,
            "rows_read": 0,
            "rows_accepted": 0,
            "rows_rejected": 0,
            "values_rejected": 0,
            "index_entries": 0,
            "exposures": 0,
        }
    )
    if not deps.table.put(record, condition="attribute_not_exists(pk)"):
        # A concurrent delivery of the same notification created the job first.
        return deps.table.get(job_pk(job_id), "JOB") or record
    deps.chunks.send_many(
        [
            ChunkJob(
                job_id=job_id, chunk=index, start=piece.start, end=piece.end, sequential=sequential
            )
            for index, piece in enumerate(plan.ranges)
        ]
    )
    logger.info(
        "intake job started",
        extra={"job_id": job_id, "breach_name": breach.name, "chunks": len(plan.ranges)},
    )
    if not plan.ranges:
        _finish(deps, record)
    return record


def _reject(
    deps: IntakeDeps, record: dict[str, Any], reason: str, detail: dict[str, Any]
) -> dict[str, Any]:
    record.update({"status": "rejected", "reason": reason, "detail": detail})
    deps.table.put(record, condition="attribute_not_exists(pk)")
    logger.warning("intake job rejected", extra={"job_id": record["job_id"], "reason": reason})
    return record


def ingest_chunk(
    deps: IntakeDeps, job: ChunkJob, should_stop: Callable[[], bool] | None = None
) -> str:
    """Ingest one chunk job; returns "done", "continued", "duplicate" or "skipped".

    Everything before the piece's marker is idempotent (index puts, conditional exposures),
    so a redelivered job that finds no marker repeats it safely, and one that finds the
    marker does nothing. A sequential job that runs out of time queues the rest of its range.
    """
    pk = job_pk(job.job_id)
    marker_sk = f"CHUNK#{job.chunk:06d}#{job.start:015d}"
    found = deps.table.get_many([(pk, "JOB"), (pk, marker_sk)])
    record = found.get((pk, "JOB"))
    if record is None or record.get("status") not in ("running", "done"):
        logger.warning("chunk job without a running intake job", extra={"job_id": job.job_id})
        return "skipped"
    if (pk, marker_sk) in found:
        logger.info("chunk already ingested", extra={"job_id": job.job_id, "chunk": job.chunk})
        return "duplicate"

    layout = RowLayout.model_validate_json(record["layout"])
    pepper = deps.pepper()
    with deps.objects.open_range(record["data_key"], job.start, job.end) as body:
        result = ingest_records(
            body, layout, pepper, start_offset=job.start, should_stop=should_stop
        )

    now = epoch(deps.clock())
    entries = [
        (str(kind), Fingerprint(version, value)) for kind, version, value in result.entries()
    ]
    hits = find_watchers(deps.watchers, entries)
    matched = {(hit.kind, hit.fingerprint) for hit in hits}
    to_index = (
        [entry for entry in entries if (entry[0], entry[1]) in matched]
        if deps.match_only
        else entries
    )
    expires_at = now + deps.retention_days * DAY_SECONDS
    indexed = deps.index.put_many(
        {
            "pk": f"{kind}#{fp.version}#{fp.value}",
            "sk": record["breach_name"],
            "expires_at": expires_at,
        }
        for kind, fp in to_index
    )

    exposures = 0
    if record.get("alertable", True):
        kinds_by_subscriber: dict[str, set[str]] = defaultdict(set)
        for hit in hits:
            for subscriber_id in hit.subscriber_ids:
                kinds_by_subscriber[subscriber_id].add(hit.kind)
        # Only monitored subscribers are alerted. Another watcher (unpaid, lapsed) is found by
        # the daily check's index lookup once monitoring starts, and alerted then.
        profiles = deps.watchers.get_many((f"SUB#{sub}", "PROFILE") for sub in kinds_by_subscriber)
        for subscriber_id in list(kinds_by_subscriber):
            if not profiles.get((f"SUB#{subscriber_id}", "PROFILE"), {}).get("monitored"):
                del kinds_by_subscriber[subscriber_id]
        findings = [
            Finding(subscriber_id, record["breach_name"], frozenset(kinds))
            for subscriber_id, kinds in sorted(kinds_by_subscriber.items())
        ]
        exposures = record_exposures(deps.table, deps.publisher, findings, "dataset", now)

    if not result.complete:
        # Queued before this piece is marked: a crash in between repeats this piece, never loses the rest.
        deps.chunks.send(
            ChunkJob(
                job_id=job.job_id,
                chunk=job.chunk,
                start=result.end_offset,
                end=job.end,
                sequential=job.sequential,
            )
        )

    summary = result.summary()
    try:
        deps.table.transact(
            [
                put_write(
                    "marker",
                    {"pk": pk, "sk": marker_sk, "summary": summary, "finished_at": now},
                    condition="attribute_not_exists(pk)",
                ),
                update_write(
                    "job",
                    pk,
                    "JOB",
                    "ADD rows_read :read, rows_accepted :accepted, rows_rejected :rejected, "
                    "values_rejected :values_rejected, index_entries :indexed, exposures :exposures, "
                    "chunks_done :done",
                    values={
                        ":read": result.rows_read,
                        ":accepted": result.rows_accepted,
                        ":rejected": sum(result.rows_rejected.values()),
                        ":values_rejected": sum(result.values_rejected.values()),
                        ":indexed": indexed,
                        ":exposures": exposures,
                        ":done": 1 if result.complete else 0,
                    },
                ),
            ]
        )
    except ConditionFailedError:
        logger.info("chunk finished twice", extra={"job_id": job.job_id, "chunk": job.chunk})
        return "duplicate"

    logger.info(
        "chunk ingested",
        extra={
            "job_id": job.job_id,
            "chunk": job.chunk,
            "rows_read": result.rows_read,
            "index_entries": indexed,
            "exposures": exposures,
            "complete": result.complete,
        },
    )
    if not result.complete:
        return "continued"
    updated = deps.table.get(pk, "JOB") or {}
    if updated.get("chunks_done", 0) >= updated.get("chunks_total", 0):
        _finish(deps, updated)
    return "done"


def _finish(deps: IntakeDeps, record: dict[str, Any]) -> None:
    """Mark the job done and delete its files; raw breach data is kept no longer than this."""
    deps.objects.delete([record["manifest_key"], record["data_key"]])
    deps.table.update(
        job_pk(record["job_id"]),
        "JOB",
        "SET #status = :done, finished_at = :now",
        values={":done": "done", ":now": epoch(deps.clock())},
        names={"#status": "status"},
    )
    logger.info("intake job finished", extra={"job_id": record["job_id"]})


def job_report(table: MainTable, job_id: str) -> dict[str, Any] | None:
    """Return an intake job for operators: its record and the counts by reason of its pieces."""
    items = table.get_partition(job_pk(job_id))
    record = items.get("JOB")
    if record is None:
        return None
    report = {key: value for key, value in record.items() if key not in ("pk", "sk", "layout")}
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for sk, item in items.items():
        if not sk.startswith("CHUNK#"):
            continue
        for group in ("rows_rejected", "values_rejected", "values_converted"):
            for reason, count in (item.get("summary", {}).get(group) or {}).items():
                totals[group][reason] += int(count)
    report["by_reason"] = {group: dict(counts) for group, counts in totals.items()}
    return report
