"""Breach intake figures: CPU per record against HMAC, AWS requests, rows per second and memory.

Every measurement runs in its own child process (`infra.bench.intake_child`), before the
bench starts its local service, so that no queue poller competes for the CPU and each peak
memory figure belongs to one measurement. The breach files come from
`infra.tools.breach_generator` with a fixed seed and are kept under `.local/bench-data/`,
keyed by row count, seed and a hash of the generator's source, so later runs skip the
generation (about a minute for a million rows).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.bench.request_counts import BenchFailedError
from infra.local.stack import DEFAULT_TEMPLATE, REPOSITORY_ROOT
from infra.local.template import load_template

DATA_CACHE = REPOSITORY_ROOT / ".local" / "bench-data"
GENERATOR_SOURCE = REPOSITORY_ROOT / "infra" / "tools" / "breach_generator.py"
BENCH_SEED = 20261204
BENCH_ENCODING = "gb18030"
BENCH_BREACH_NAME = "BenchSyntheticLeak"
CHILD_TIMEOUT_S = 1800.0
# Allowed requests over the batching lower bound: 1.05 times, rounded up per 1,000 units.
REQUEST_TARGET_FACTOR = 1.05
CPU_RATIO_TARGET = 5.0
INGEST_FUNCTION = "BreachIngestFunction"


@dataclass(frozen=True)
class IntakeSizes:
    """How much each intake measurement processes."""

    memory_rows: int = 1_000_000
    local_rows: int = 50_000
    ratio_rows: int = 100_000
    ratio_runs: int = 5
    check_jobs: int = 2_005
    # Seconds the local run may take until its queues are idle.
    local_deadline_s: float = 1200.0


@dataclass(frozen=True)
class TemplateFacts:
    """The template defaults that the intake figures depend on."""

    chunk_bytes: int
    retention_days: int
    ingest_memory_mb: int
    ingest_concurrency: int


def template_facts(template_path: Path = DEFAULT_TEMPLATE) -> TemplateFacts:
    """Read the chunk size, retention and the ingest function's memory and concurrency."""
    template = load_template(template_path)
    parameters = template["Parameters"]
    ingest = template["Resources"][INGEST_FUNCTION]["Properties"]
    scaling = ingest["Events"]["ChunkJobs"]["Properties"]["ScalingConfig"]
    return TemplateFacts(
        chunk_bytes=int(parameters["IntakeChunkMegabytes"]["Default"]) << 20,
        retention_days=int(parameters["BreachIndexRetentionDays"]["Default"]),
        ingest_memory_mb=int(ingest["MemorySize"]),
        ingest_concurrency=int(scaling["MaximumConcurrency"]),
    )


@dataclass(frozen=True)
class BreachFile:
    """A generated breach file, its manifest and the counts the generator expects intake to find."""

    rows: int
    data: Path
    manifest: Path
    expected: dict[str, Any]
    size: int
    generated_s: float | None  # None when the file came from the cache


def _generator_digest() -> str:
    return hashlib.sha256(GENERATOR_SOURCE.read_bytes()).hexdigest()[:12]


def breach_file(rows: int, cache: Path = DATA_CACHE) -> BreachFile:
    """Return the bench's breach file of `rows` data lines, generating it unless it is cached.

    A file is generated into a `.partial` directory that is renamed when complete, so an
    interrupted run leaves no half-written file in the cache. Cached files of the same row
    count from an older generator are deleted.
    """
    stem = f"{rows}-rows-{BENCH_ENCODING}-seed{BENCH_SEED}"
    directory = cache / f"{stem}-{_generator_digest()}"
    generated_s: float | None = None
    if not (directory / "expected.json").is_file():
        for stale in cache.glob(f"{stem}-*"):
            shutil.rmtree(stale)
        partial = directory.with_name(directory.name + ".partial")
        started = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "infra.tools.breach_generator",
            "--rows",
            str(rows),
            "--encoding",
            BENCH_ENCODING,
            "--seed",
            str(BENCH_SEED),
            "--name",
            BENCH_BREACH_NAME,
            "--out",
            str(partial),
        ]
        completed = subprocess.run(  # noqa: S603 - the bench's own interpreter and module
            command, cwd=REPOSITORY_ROOT, capture_output=True, text=True, check=False
        )
        if completed.returncode != 0:
            raise BenchFailedError(
                f"breach_generator failed for {rows} rows: {completed.stderr.strip()[-2000:]}"
            )
        partial.rename(directory)
        generated_s = time.perf_counter() - started

    data = next(directory.glob("breach.*"))
    return BreachFile(
        rows=rows,
        data=data,
        manifest=directory / "manifest.json",
        expected=json.loads((directory / "expected.json").read_text(encoding="utf-8")),
        size=data.stat().st_size,
        generated_s=generated_s,
    )


def run_child(mode: str, spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run one `intake_child` measurement in a fresh interpreter and return its result."""
    spec_path = workdir / f"intake-{mode}-spec.json"
    result_path = workdir / f"intake-{mode}-result.json"
    stdout_path = workdir / f"intake-{mode}-stdout.log"
    spec_path.write_text(json.dumps({"mode": mode, **spec}), encoding="utf-8")
    command = [sys.executable, "-m", "infra.bench.intake_child", str(spec_path), str(result_path)]
    with stdout_path.open("wb") as stdout:
        try:
            completed = subprocess.run(  # noqa: S603 - the bench's own interpreter and module
                command,
                cwd=REPOSITORY_ROOT,
                stdout=stdout,
                stderr=subprocess.PIPE,
                timeout=CHILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchFailedError(
                f"the {mode} intake measurement did not finish within {CHILD_TIMEOUT_S:.0f} s"
            ) from exc
    if completed.returncode != 0:
        tail = completed.stderr.decode("utf-8", "replace").strip()[-3000:]
        raise BenchFailedError(
            f"the {mode} intake measurement exited with status {completed.returncode}: {tail}"
        )
    result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    return result


@dataclass(frozen=True)
class RequestFigure:
    """Requests of one batching operation for some units of work, against the lower bound."""

    operation: str
    unit: str
    units: int
    requests: int
    per_request: int
    source: str

    @property
    def lower_bound(self) -> int:
        """The minimum number of requests that can carry the units at the per-request limit."""
        return math.ceil(self.units / self.per_request)

    @property
    def per_thousand(self) -> float:
        return 1000 * self.requests / self.units if self.units else math.inf

    @property
    def target_per_thousand(self) -> int:
        """1.05 times the lower bound per 1,000 units, rounded up."""
        return math.ceil(REQUEST_TARGET_FACTOR * 1000 / self.per_request)

    @property
    def met(self) -> bool:
        return self.per_thousand <= self.target_per_thousand


@dataclass(frozen=True)
class RatioResult:
    """`ingest_records` CPU time against one HMAC-SHA256 per accepted value of the same file."""

    file: BreachFile
    rows_read: int
    values: int
    runs: int
    ingest_s: list[float]
    hmac_s: list[float]
    ingest_median_s: float
    hmac_median_s: float
    profile: list[dict[str, Any]]

    @property
    def ratio(self) -> float:
        return self.ingest_median_s / self.hmac_median_s

    @property
    def met(self) -> bool:
        return self.ratio <= CPU_RATIO_TARGET


@dataclass(frozen=True)
class ThroughputResult:
    """Rows per second and peak memory of one whole intake run."""

    label: str
    file: BreachFile
    rows_read: int
    chunks: int
    index_entries: int
    wall_s: float
    cpu_s: float
    maxrss_ready_kib: int
    maxrss_peak_kib: int
    detail: dict[str, Any]

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.wall_s

    @property
    def peak_mib(self) -> float:
        return self.maxrss_peak_kib / 1024

    @property
    def ready_mib(self) -> float:
        return self.maxrss_ready_kib / 1024


@dataclass(frozen=True)
class IntakeResults:
    """Every intake figure of one bench run."""

    facts: TemplateFacts
    ratio: RatioResult
    memory: ThroughputResult
    local: ThroughputResult
    requests: list[RequestFigure]
    check_jobs: int
    elapsed_s: float


def measure_ratio(file: BreachFile, runs: int, workdir: Path) -> RatioResult:
    """Measure the CPU ratio on one file in a child process."""
    spec = {"data": str(file.data), "manifest": str(file.manifest), "runs": runs}
    return ratio_result(file, runs, run_child("ratio", spec, workdir))


def ratio_result(file: BreachFile, runs: int, result: dict[str, Any]) -> RatioResult:
    """Check a ratio measurement's counts and return its figures.

    Raises BenchFailedError when the recorded messages, the accepted values and the
    generator's expected count disagree.
    """
    accepted = sum(result["values_accepted"].values())
    expected = sum(file.expected["values_accepted"].values())
    if result["messages"] != accepted or accepted != expected:
        raise BenchFailedError(
            f"the CPU ratio run fingerprinted {result['messages']} values, but ingest_records "
            f"accepted {accepted} and the generator expects {expected}"
        )
    return RatioResult(
        file=file,
        rows_read=result["rows_read"],
        values=accepted,
        runs=runs,
        ingest_s=result["ingest_s"],
        hmac_s=result["hmac_s"],
        ingest_median_s=result["ingest_median_s"],
        hmac_median_s=result["hmac_median_s"],
        profile=result["profile"],
    )


def check_job(label: str, job: dict[str, Any], file: BreachFile) -> None:
    """Raise BenchFailedError unless the job is done and read the rows the generator wrote."""
    expected = file.expected
    if job.get("status") != "done":
        raise BenchFailedError(
            f"{label}: the intake job ended as {job.get('status')!r} ({job.get('reason')}), "
            "expected 'done'"
        )
    for name in ("rows_read", "rows_accepted"):
        if job.get(name) != expected[name]:
            raise BenchFailedError(
                f"{label}: the intake job reports {name} {job.get(name)}, the generator "
                f"expects {expected[name]}"
            )
    distinct = sum(expected["distinct"].values())
    accepted = sum(expected["values_accepted"].values())
    if not distinct <= job.get("index_entries", -1) <= accepted:
        raise BenchFailedError(
            f"{label}: {job.get('index_entries')} index entries, expected between the "
            f"{distinct} distinct values of the file and its {accepted} accepted values"
        )


def histogram_totals(counts: dict[str, int]) -> tuple[int, int]:
    """Return (requests, units) of a {size per request: number of requests} histogram."""
    requests = sum(counts.values())
    units = sum(int(size) * number for size, number in counts.items())
    return requests, units


def measure_memory(file: BreachFile, facts: TemplateFacts, workdir: Path) -> ThroughputResult:
    """Run the whole intake path on a file with in-memory adapters in a child process."""
    spec = {
        "data": str(file.data),
        "manifest": str(file.manifest),
        "chunk_bytes": facts.chunk_bytes,
        "retention_days": facts.retention_days,
    }
    return memory_result(file, run_child("memory", spec, workdir))


def memory_result(file: BreachFile, result: dict[str, Any]) -> ThroughputResult:
    """Check an in-memory run's counts and return its figures.

    Raises BenchFailedError when the job or the items written disagree with the generator.
    """
    job = result["job"]
    check_job("in-memory run", job, file)
    if result["values_accepted"] != file.expected["values_accepted"]:
        raise BenchFailedError(
            f"in-memory run: accepted values by kind {result['values_accepted']}, the generator "
            f"expects {file.expected['values_accepted']}"
        )
    _, written = histogram_totals(result["index_write_sizes"])
    if written != job["index_entries"]:
        raise BenchFailedError(
            f"in-memory run: {written} items reached BatchWriteItem, but the job counts "
            f"{job['index_entries']} index entries"
        )
    return _throughput("in-memory adapters", file, result)


# Subscribers per page job of the daily check (idsentry.services.breach_check.PAGE_SIZE).
PLAN_PAGE_SIZE = 1000


def measure_local(
    file: BreachFile, check_jobs: int, deadline_s: float, workdir: Path
) -> ThroughputResult:
    """Run one upload and one planner run through a new local service in a child process."""
    spec = {
        "data": str(file.data),
        "manifest": str(file.manifest),
        "check_jobs": check_jobs,
        "deadline_s": deadline_s,
    }
    return local_result(file, check_jobs, run_child("local", spec, workdir))


def local_result(file: BreachFile, check_jobs: int, result: dict[str, Any]) -> ThroughputResult:
    """Check a local-stack run's job and planner result and return its figures."""
    check_job("local stack", result["job"], file)
    pages = result["plan_pages"]
    expected_pages = -(-check_jobs // PLAN_PAGE_SIZE)
    if pages != expected_pages:
        raise BenchFailedError(
            f"local stack: the planner ran {pages} page jobs, expected {expected_pages}"
        )
    return _throughput("local stack (moto)", file, result)


def _throughput(label: str, file: BreachFile, result: dict[str, Any]) -> ThroughputResult:
    job = result["job"]
    return ThroughputResult(
        label=label,
        file=file,
        rows_read=job["rows_read"],
        chunks=job["chunks_total"],
        index_entries=job["index_entries"],
        wall_s=result["wall_s"],
        cpu_s=result["cpu_s"],
        maxrss_ready_kib=result["maxrss_ready_kib"],
        maxrss_peak_kib=result["maxrss_peak_kib"],
        detail=result,
    )


def batch_calls(
    calls: Sequence[dict[str, Any]], operation: str, table: str
) -> tuple[int, int, int]:
    """Return (requests, items or keys, retried attempts) of one DynamoDB batch operation on a table."""
    requests = units = retried = 0
    for call in calls:
        if call["service"] != "dynamodb" or call["operation"] != operation:
            continue
        tables = call["summary"]["tables"]
        if table not in tables:
            continue
        requests += 1
        units += tables[table]
        retried += max(0, call["attempts"] - 1)
        if call["status"] != 200:
            raise BenchFailedError(f"local stack: {operation} returned HTTP {call['status']}")
    return requests, units, retried


def request_figures(
    memory: ThroughputResult, local: ThroughputResult, check_jobs: int
) -> list[RequestFigure]:
    """Build the request figures of both runs and check them against each job's counts."""
    memory_writes, memory_entries = histogram_totals(memory.detail["index_write_sizes"])
    memory_gets, memory_keys = histogram_totals(memory.detail["watch_get_sizes"])

    intake_calls = local.detail["intake_calls"]
    local_writes, local_entries, write_retries = batch_calls(
        intake_calls, "BatchWriteItem", local.detail["index_table"]
    )
    local_gets, local_keys, get_retries = batch_calls(
        intake_calls, "BatchGetItem", local.detail["main_table"]
    )
    if local_entries != local.index_entries:
        raise BenchFailedError(
            f"local stack: {local_entries} items reached BatchWriteItem, but the job counts "
            f"{local.index_entries} index entries"
        )
    sends = [
        call
        for call in local.detail["planner_calls"]
        if call["operation"] == "SendMessageBatch"
        and call["summary"]["queue_url"] == local.detail["check_queue_url"]
    ]
    entries = sum(call["summary"]["entries"] for call in sends)
    if entries != check_jobs:
        raise BenchFailedError(
            f"local stack: SendMessageBatch carried {entries} check jobs, expected {check_jobs}"
        )
    if write_retries or get_retries:
        raise BenchFailedError(
            f"local stack: {write_retries + get_retries} batch requests were retried at the HTTP "
            "level, so their counts are not comparable with the lower bound"
        )

    memory_source = f"{memory.file.rows:,} rows, in memory"
    local_source = f"{local.file.rows:,} rows, local stack"
    return [
        RequestFigure(
            "dynamodb:BatchWriteItem",
            "index entries",
            memory_entries,
            memory_writes,
            25,
            memory_source,
        ),
        RequestFigure(
            "dynamodb:BatchWriteItem",
            "index entries",
            local_entries,
            local_writes,
            25,
            local_source,
        ),
        RequestFigure(
            "dynamodb:BatchGetItem", "watch lookups", memory_keys, memory_gets, 100, memory_source
        ),
        RequestFigure(
            "dynamodb:BatchGetItem", "keys read", local_keys, local_gets, 100, local_source
        ),
        RequestFigure(
            "sqs:SendMessageBatch",
            "check jobs",
            entries,
            len(sends),
            10,
            f"{check_jobs:,} subscribers, local stack",
        ),
    ]


def measure_intake(sizes: IntakeSizes, workdir: Path) -> IntakeResults:
    """Generate (or reuse) the files and take every intake measurement, one child each."""
    started = time.perf_counter()
    facts = template_facts()
    ratio_file = breach_file(sizes.ratio_rows)
    memory_file = breach_file(sizes.memory_rows)
    local_file = breach_file(sizes.local_rows)

    ratio = measure_ratio(ratio_file, sizes.ratio_runs, workdir)
    memory = measure_memory(memory_file, facts, workdir)
    local = measure_local(local_file, sizes.check_jobs, sizes.local_deadline_s, workdir)
    return IntakeResults(
        facts=facts,
        ratio=ratio,
        memory=memory,
        local=local,
        requests=request_figures(memory, local, sizes.check_jobs),
        check_jobs=sizes.check_jobs,
        elapsed_s=time.perf_counter() - started,
    )
