"""One breach intake measurement in a fresh process, so that its CPU time and peak memory are its own.

Run as `python -m infra.bench.intake_child SPEC_PATH RESULT_PATH` from the repository root.
The spec (JSON) names the mode and its files, and the result (JSON) contains the figures:

- "ratio": `ingest_records` CPU time on one in-memory range against one
  `hmac.new(key, msg, sha256).hexdigest()` per accepted identifier value, interleaved runs.
- "memory": the whole intake path (`start_intake`, then `ingest_chunk` for every chunk job)
  with the in-memory adapters of `infra.bench.memory_aws`, streaming the file from disk.
- "local": upload to the intake bucket of a new local service, run its queues until idle and
  read the job record. Then write entitled subscribers and run the daily check planner.

Peak memory is `resource.getrusage(RUSAGE_SELF).ru_maxrss` of this process, read once when
the measured code is ready to start and once at the end.
"""

from __future__ import annotations

import cProfile
import hashlib
import hmac
import json
import pstats
import resource
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAYER = Path(__file__).resolve().parents[2] / "layers" / "idsentry" / "python"
if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))

# Rows of the profile of one ingest_records run that the result keeps.
PROFILE_ROWS = 12
MANIFEST_KEY = "bench/manifest.json"
CHECK_SCHEDULE = "idsentry-local-breach-check"
BENCH_SUBSCRIBER_PREFIX = "sub_bench_"


def maxrss_kib() -> int:
    """Return this process's peak resident set size so far, in KiB (Linux units)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _bench_pepper() -> Any:
    from idsentry.crypto import Pepper

    return Pepper.from_secret({"current": "1", "1": secrets.token_urlsafe(48)})


def recording_pepper(pepper: Any) -> Any:
    """Return a copy of the pepper whose `fingerprinter` functions also record each message.

    The messages are the bytes that `Pepper.fingerprint` hashes, `{kind}\\x1f{canonical}`, in
    the order fingerprinted, in the copy's `messages` list.
    """
    from idsentry.crypto import Pepper

    @dataclass(frozen=True)
    class RecordingPepper(Pepper):
        messages: list[bytes] = field(default_factory=list)

        def fingerprinter(self, kind: str) -> Callable[[str], str]:
            fingerprint = super().fingerprinter(kind)
            prefix = f"{kind}\x1f"
            messages = self.messages

            def record(canonical: str) -> str:
                messages.append((prefix + canonical).encode())
                return fingerprint(canonical)

            return record

    return RecordingPepper(versions=pepper.versions, current=pepper.current)


def run_ratio(spec: dict[str, Any]) -> dict[str, Any]:
    """Time `ingest_records` against one HMAC-SHA256 per accepted value of the same file.

    A first, untimed run records the message that each fingerprint hashes
    (`{kind}\\x1f{canonical}`, as `Pepper.fingerprint` builds it). Then the two loops run in
    turn `runs` times, and each figure is the median of its `time.process_time` spans. A last
    run under cProfile shows where the time goes.
    """
    from idsentry.models.breach import parse_manifest
    from idsentry.services import intake_parse
    from idsentry.services.intake_chunks import plan_intake

    data = Path(spec["data"]).read_bytes()
    manifest = parse_manifest(Path(spec["manifest"]).read_bytes())
    plan = plan_intake(
        len(data), lambda start, end: data[start:end], manifest, target_bytes=len(data) + 1
    )
    (piece,) = plan.ranges
    chunk = data[piece.start : piece.end]
    pepper = _bench_pepper()
    key = pepper.versions[pepper.current]

    recording = recording_pepper(pepper)
    first = intake_parse.ingest_records(chunk, plan.layout, recording, start_offset=piece.start)
    messages = recording.messages

    ingest_seconds: list[float] = []
    hmac_seconds: list[float] = []
    for _ in range(spec["runs"]):
        started = time.process_time()
        intake_parse.ingest_records(chunk, plan.layout, pepper, start_offset=piece.start)
        ingest_seconds.append(time.process_time() - started)

        started = time.process_time()
        for message in messages:
            hmac.new(key, message, hashlib.sha256).hexdigest()
        hmac_seconds.append(time.process_time() - started)

    profiler = cProfile.Profile()
    profiler.enable()
    intake_parse.ingest_records(chunk, plan.layout, pepper, start_offset=piece.start)
    profiler.disable()

    return {
        "rows_read": first.rows_read,
        "rows_accepted": first.rows_accepted,
        "values_accepted": dict(first.values_accepted),
        "messages": len(messages),
        "bytes": len(chunk),
        "ingest_s": ingest_seconds,
        "hmac_s": hmac_seconds,
        "ingest_median_s": statistics.median(ingest_seconds),
        "hmac_median_s": statistics.median(hmac_seconds),
        "profile": profile_rows(profiler),
    }


def profile_rows(profiler: cProfile.Profile) -> list[dict[str, Any]]:
    """Return the functions with the most own time: location, calls, own and cumulative seconds."""
    stats = pstats.Stats(profiler)
    total = sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]
    rows = []
    for (path, line, name), entry in stats.stats.items():  # type: ignore[attr-defined]
        _, calls, own, cumulative, _ = entry
        rows.append(
            {
                "function": _short_location(path, line, name),
                "calls": calls,
                "own_s": own,
                "cumulative_s": cumulative,
                "share": own / total if total else 0.0,
            }
        )
    rows.sort(key=lambda row: row["own_s"], reverse=True)
    return rows[:PROFILE_ROWS]


def _short_location(path: str, line: int, name: str) -> str:
    if path == "~":
        return name
    parts = Path(path).parts
    if "idsentry" in parts:
        # The package directory is the last "idsentry" of the path (the layer has one above it).
        start = len(parts) - 1 - parts[::-1].index("idsentry")
        relative = "/".join(parts[start:])
    else:
        relative = Path(path).name
    return f"{relative}:{line} {name}"


def run_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the whole intake path over a local file with in-memory AWS adapters."""
    from idsentry.adapters.batch import BatchTable
    from idsentry.adapters.bus import EventPublisher
    from idsentry.adapters.queue import JobQueue
    from idsentry.clock import utc_now
    from idsentry.models.breach import parse_manifest
    from idsentry.models.breach_jobs import ChunkJob
    from idsentry.services.intake import IntakeDeps, data_key_for, ingest_chunk, start_intake
    from infra.bench.memory_aws import (
        LocalFileObjects,
        MemoryDynamoClient,
        MemoryEventsClient,
        MemoryMainTable,
        MemorySqsClient,
    )

    manifest_path = Path(spec["manifest"])
    data_key = data_key_for(MANIFEST_KEY, parse_manifest(manifest_path.read_bytes()))
    table = MemoryMainTable()
    watch_client = MemoryDynamoClient(table.name)
    index_client = MemoryDynamoClient("bench-index", store=False)
    sqs = MemorySqsClient()
    events = MemoryEventsClient()
    objects = LocalFileObjects({MANIFEST_KEY: manifest_path, data_key: Path(spec["data"])})
    pepper = _bench_pepper()
    deps = IntakeDeps(
        table=table,
        watchers=BatchTable(table.name, watch_client),
        index=BatchTable(index_client.table, index_client),
        objects=objects,
        chunks=JobQueue("memory://chunks", client=sqs),
        publisher=EventPublisher("bench-bus", client=events),
        pepper=lambda: pepper,
        clock=utc_now,
        chunk_bytes=spec["chunk_bytes"],
        retention_days=spec["retention_days"],
        match_only=False,
    )
    ready_kib = maxrss_kib()

    wall_started = time.perf_counter()
    cpu_started = time.process_time()
    record = start_intake(deps, MANIFEST_KEY)
    outcomes: Counter[str] = Counter()
    while (body := sqs.pop()) is not None:
        outcomes[ingest_chunk(deps, ChunkJob.model_validate_json(body))] += 1
    cpu_s = time.process_time() - cpu_started
    wall_s = time.perf_counter() - wall_started

    job = table.get(f"INTAKE#{record['job_id']}", "JOB") or record
    values_accepted: Counter[str] = Counter()
    chunk_entries: list[int] = []
    for (pk, sk), item in table.items.items():
        if pk == job.get("pk") and sk.startswith("CHUNK#"):
            values_accepted.update(item["summary"]["values_accepted"])
            chunk_entries.append(sum(item["summary"]["distinct_fingerprints"].values()))
    return {
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "maxrss_ready_kib": ready_kib,
        "maxrss_peak_kib": maxrss_kib(),
        "job": _job_fields(job),
        "values_accepted": dict(values_accepted),
        "chunk_entries": chunk_entries,
        "chunk_outcomes": dict(outcomes),
        "index_write_sizes": Counter(index_client.write_sizes),
        "watch_get_sizes": Counter(watch_client.get_sizes),
        "index_retries": deps.index.stats.retries,
        "watch_retries": deps.watchers.stats.retries,
        "chunk_batch_sizes": sqs.batch_sizes,
        "chunk_single_sends": sqs.single_requests,
        "main_table_calls": table.calls,
        "object_requests": objects.requests,
        "deleted": objects.deleted,
    }


JOB_FIELDS = (
    "status",
    "reason",
    "chunks_total",
    "chunks_done",
    "rows_read",
    "rows_accepted",
    "rows_rejected",
    "values_rejected",
    "index_entries",
    "exposures",
    "size",
)


def _job_fields(job: dict[str, Any]) -> dict[str, Any]:
    return {name: job[name] for name in JOB_FIELDS if name in job}


def run_local(spec: dict[str, Any]) -> dict[str, Any]:
    """Start a local service without background pollers and measure intake and the planner on it."""
    from infra.bench.service import BENCH_PARAMETERS, quiet_handler_logs
    from infra.local.service import LocalService

    service = LocalService(port=0, parameters=BENCH_PARAMETERS, background=False).start()
    try:
        quiet_handler_logs(service)
        return measure_local(
            service,
            Path(spec["data"]),
            Path(spec["manifest"]),
            check_jobs=spec["check_jobs"],
            deadline_s=spec["deadline_s"],
        )
    finally:
        service.stop()


def measure_local(
    service: Any, data_path: Path, manifest_path: Path, *, check_jobs: int, deadline_s: float
) -> dict[str, Any]:
    """Measure one upload and one planner run on a started local service whose pollers are stopped.

    The intake bucket gets the data file and then its manifest, and the queues run until idle.
    Then `check_jobs` entitled subscribers are written (their ids start with `sub_bench_`),
    the daily check schedule fires, and the check queue is purged, so no worker looks up the
    made-up subscribers. Calls are counted with botocore event handlers (`CallRecorder`) on
    clients that the handlers create after the cached ones are cleared.
    """
    from idsentry.models.breach import parse_manifest
    from idsentry.services.intake import data_key_for, intake_job_id
    from infra.bench.child import CallRecorder
    from infra.local.service import clear_cached_dependencies

    runtime = service.stack.runtime
    environment = runtime.environment
    s3 = runtime.client("s3")
    dynamodb = runtime.client("dynamodb")
    bucket = environment["INTAKE_BUCKET"]
    prefix = f"bench/{secrets.token_hex(6)}"
    manifest_bytes = manifest_path.read_bytes()
    manifest_key = f"{prefix}/manifest.json"
    data_key = data_key_for(manifest_key, parse_manifest(manifest_bytes))

    recorder = CallRecorder()
    recorder.install()
    # The handlers create their clients again, so that the recorder watches every one of them.
    clear_cached_dependencies()
    try:
        s3.upload_file(str(data_path), bucket, data_key)
        etag = s3.put_object(Bucket=bucket, Key=manifest_key, Body=manifest_bytes)["ETag"]
        job_id = intake_job_id(bucket, manifest_key, etag.strip('"'))
        ready_kib = maxrss_kib()

        wall_started = time.perf_counter()
        cpu_started = time.process_time()
        with recorder.capture() as intake_calls:
            idle = runtime.run_until_idle(max_rounds=100_000, deadline_s=deadline_s)
        cpu_s = time.process_time() - cpu_started
        wall_s = time.perf_counter() - wall_started
        peak_kib = maxrss_kib()

        job = service_job(dynamodb, environment["TABLE_NAME"], job_id)
        _write_entitled_subscribers(dynamodb, environment["TABLE_NAME"], check_jobs)
        with recorder.capture() as planner_calls:
            planned = runtime.fire_schedule(CHECK_SCHEDULE)
            pages = _run_page_jobs(runtime, environment["CHECK_QUEUE_URL"])
        runtime.client("sqs").purge_queue(QueueUrl=environment["CHECK_QUEUE_URL"])
    finally:
        recorder.active = False
        recorder.uninstall()

    return {
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "maxrss_ready_kib": ready_kib,
        "maxrss_peak_kib": peak_kib,
        "file_bytes": data_path.stat().st_size,
        "job": _job_fields(job),
        "idle_report": {"rounds": idle.rounds, "received": idle.received, "failed": idle.failed},
        "intake_calls": intake_calls,
        "planner_calls": planner_calls,
        "planner_result": planned,
        "plan_pages": pages,
        "index_table": environment["BREACH_INDEX_TABLE"],
        "main_table": environment["TABLE_NAME"],
        "check_queue_url": environment["CHECK_QUEUE_URL"],
    }


def _run_page_jobs(runtime: Any, queue_url: str) -> int:
    """Run the planner's page jobs from the check queue and leave its check jobs queued.

    Check jobs are counted by their SendMessageBatch calls, so they are not run here: once
    received they stay invisible for the rest of the run, and the loop ends when the queue
    returns nothing.
    """
    sqs = runtime.client("sqs")
    pages = 0
    while True:
        received = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600
        ).get("Messages", [])
        page_jobs = [m for m in received if '"kind":"breach_plan_page"' in m["Body"]]
        if not received:
            return pages
        for message in page_jobs:
            event = {
                "Records": [
                    {
                        "messageId": message["MessageId"],
                        "receiptHandle": message["ReceiptHandle"],
                        "body": message["Body"],
                        "attributes": {"ApproximateReceiveCount": "1"},
                        "messageAttributes": {},
                        "md5OfBody": message["MD5OfBody"],
                        "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
                        "awsRegion": "us-east-1",
                    }
                ]
            }
            runtime.invoke("BreachCheckWorkerFunction", event)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            pages += 1


def service_job(dynamodb: Any, table: str, job_id: str) -> dict[str, Any]:
    """Read an intake job record of the local service, or return an empty dict when there is none."""
    from idsentry.adapters.dynamo import from_item

    found = dynamodb.get_item(
        TableName=table,
        Key={"pk": {"S": f"INTAKE#{job_id}"}, "sk": {"S": "JOB"}},
        ConsistentRead=True,
    ).get("Item")
    return from_item(found) if found else {}


def _write_entitled_subscribers(dynamodb: Any, table: str, count: int) -> None:
    """Write `count` profile items on the sparse `ENTITLED` index that the planner pages."""
    for start in range(0, count, 25):
        requests = []
        for number in range(start, min(start + 25, count)):
            subscriber_id = f"{BENCH_SUBSCRIBER_PREFIX}{number:07d}"
            item = {
                "pk": {"S": f"SUB#{subscriber_id}"},
                "sk": {"S": "PROFILE"},
                "gsi1pk": {"S": "ENTITLED"},
                "gsi1sk": {"S": subscriber_id},
            }
            requests.append({"PutRequest": {"Item": item}})
        response = dynamodb.batch_write_item(RequestItems={table: requests})
        if response.get("UnprocessedItems"):
            raise RuntimeError("moto returned unprocessed items while writing bench subscribers")


MODES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ratio": run_ratio,
    "memory": run_memory,
    "local": run_local,
}


def main(argv: list[str]) -> int:
    """Run the mode the spec names and write its result file."""
    if len(argv) != 3:
        print("usage: python -m infra.bench.intake_child SPEC_PATH RESULT_PATH", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    result = MODES[spec["mode"]](spec)
    Path(argv[2]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
