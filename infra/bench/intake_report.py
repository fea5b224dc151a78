"""The breach intake section of docs/benchmarks.md: CPU ratio, AWS requests, rows per second and memory."""

from __future__ import annotations

import statistics

from infra.bench.intake import (
    BENCH_ENCODING,
    BENCH_SEED,
    CPU_RATIO_TARGET,
    BreachFile,
    IntakeResults,
    RatioResult,
    ThroughputResult,
)
from infra.bench.report import table


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def _file_text(file: BreachFile) -> str:
    return f"{file.rows:,} rows, {file.size / (1 << 20):,.1f} MiB"


def _verdict(met: bool) -> str:
    return "met" if met else "not met"


def intake_section(results: IntakeResults) -> str:
    """Return the whole breach intake section."""
    facts = results.facts
    files = [results.ratio.file, results.memory.file, results.local.file]
    generated = [file for file in files if file.generated_s is not None]
    generation = (
        "The files came from the cache of an earlier run."
        if not generated
        else "This run generated "
        + ", ".join(f"the {file.rows:,}-row file in {file.generated_s:.0f} s" for file in generated)
        + "."
    )
    intro = [
        "## Breach intake",
        "",
        "The breach files come from `python -m infra.tools.breach_generator --encoding "
        f"{BENCH_ENCODING} --seed {BENCH_SEED}`: CSV with Chinese headers in GB18030, with "
        "full-width digits, `+86` prefixes, 15-digit legacy ID numbers, duplicate rows, "
        "malformed lines and undecodable bytes. They are cached under `.local/bench-data/`, keyed "
        f"by row count, seed and a hash of the generator's source. {generation} Each "
        "measurement runs in its own fresh process before the bench starts its local service, "
        "and it checks its counts (rows read and accepted, accepted values by kind, index "
        "entries) against the counts that the generator expects. The template defaults used are "
        f"a chunk of {facts.chunk_bytes >> 20} MiB (`IntakeChunkMegabytes`), "
        f"{facts.retention_days} days of index retention, and an ingest function of "
        f"{facts.ingest_memory_mb} MB with at most {facts.ingest_concurrency} concurrent chunk "
        f"jobs. The whole section took {results.elapsed_s:.0f} s.",
    ]
    return "\n\n".join(
        [
            "\n".join(intro),
            cpu_ratio_section(results.ratio),
            request_section(results),
            throughput_section(results),
        ]
    )


def cpu_ratio_section(ratio: RatioResult) -> str:
    """Return the CPU-per-record comparison and the profile of one ingest_records run."""
    rows = ratio.rows_read
    figures = table(
        ["figure", "value", "baseline", "ratio", "target"],
        [
            [
                "`ingest_records` CPU per record vs one HMAC-SHA256 per accepted identifier",
                f"{_us(ratio.ingest_median_s / rows)} per record",
                f"{_us(ratio.hmac_median_s / rows)} per record",
                f"{ratio.ratio:.2f}×",
                f"≤ {CPU_RATIO_TARGET:.0f}×: {_verdict(ratio.met)}",
            ]
        ],
    )
    runs = table(
        ["loop", "median", "range", "per accepted value"],
        [
            [
                label,
                f"{statistics.median(spans):.3f} s",
                f"{min(spans):.3f} s to {max(spans):.3f} s",
                _us(statistics.median(spans) / ratio.values),
            ]
            for label, spans in (
                ("`ingest_records`", ratio.ingest_s),
                ("`hmac.new(key, msg, sha256).hexdigest()`", ratio.hmac_s),
            )
        ],
    )
    profile = table(
        ["function", "calls", "own time", "share of the run"],
        [
            [
                f"`{row['function']}`",
                f"{row['calls']:,}",
                f"{row['own_s']:.3f} s",
                f"{100 * row['share']:.0f} %",
            ]
            for row in ratio.profile
        ],
    )
    return "\n".join(
        [
            "### Ingestion CPU per breach record",
            "",
            f"One file of {_file_text(ratio.file)}, read from memory as one range. "
            f"`ingest_records` read {rows:,} records and accepted {ratio.values:,} identifier "
            f"values ({ratio.values / rows:.2f} per record). The baseline runs exactly one "
            "`hmac.new(key, msg, hashlib.sha256).hexdigest()` per accepted value, where `msg` "
            "is the message that the product's fingerprint hashed (`{kind}\\x1f{canonical}`, "
            "recorded in an untimed first run) and the key is a 64-byte pepper. Both loops run "
            f"in turn, {ratio.runs} times each, timed with `time.process_time`, and each figure "
            "is the median.",
            "",
            figures,
            "",
            runs,
            "",
            "Where the time goes: one more `ingest_records` run under cProfile (which slows it "
            "down), the functions with the most own time.",
            "",
            profile,
        ]
    )


def request_section(results: IntakeResults) -> str:
    """Return the request counts of both intake runs and of the daily check planner."""
    rows = [
        [
            f"`{figure.operation}`",
            figure.source,
            f"{figure.units:,} {figure.unit}",
            f"{figure.requests:,}",
            f"{figure.lower_bound:,}",
            f"{figure.requests / figure.lower_bound:.3f}×" if figure.lower_bound else "n/a",
            f"{figure.per_thousand:.2f}",
            f"≤ {figure.target_per_thousand}: {_verdict(figure.met)}",
        ]
        for figure in results.requests
    ]
    memory = results.memory.detail
    chunk_sends = len(memory["chunk_batch_sizes"])
    chunk_jobs = sum(memory["chunk_batch_sizes"])
    return "\n".join(
        [
            "### AWS requests against the batching lower bound",
            "",
            "The lower bound is the number of units divided by the per-request limit, rounded "
            "up (25 items per BatchWriteItem, 100 keys per BatchGetItem, 10 entries per "
            "SendMessageBatch), and the target allows 1.05 times that bound per 1,000 units, "
            "rounded up. In the in-memory run, the product's `BatchTable` runs on a fake "
            "DynamoDB client that rejects requests that DynamoDB would reject (over the limit, "
            "a key named twice) and counts the rest. Its BatchGetItem figure counts the "
            "subscriber lookups of `find_watchers` only. In the local-stack run, botocore event "
            "handlers count every request that reached moto. There the BatchGetItem figure "
            "counts every batch read of the main table, including the one read per chunk job of "
            "the job record and the chunk's marker (2 keys). For the check jobs, the bench "
            f"writes {results.check_jobs:,} entitled subscribers, fires the daily check "
            "schedule, counts the planner's SendMessageBatch requests to the check queue and "
            "purges the queue.",
            "",
            table(
                [
                    "operation",
                    "run",
                    "units",
                    "requests",
                    "lower bound",
                    "ratio",
                    "per 1,000 units",
                    "target per 1,000",
                ],
                rows,
            ),
            "",
            f"`start_intake` of the in-memory run queued its {chunk_jobs} chunk jobs in "
            f"{chunk_sends} SendMessageBatch request{'s' if chunk_sends != 1 else ''}.",
        ]
    )


def _throughput_row(run: ThroughputResult) -> list[str]:
    return [
        run.label,
        _file_text(run.file),
        str(run.chunks),
        f"{run.index_entries:,}",
        f"{run.wall_s:.1f} s",
        f"{run.cpu_s:.1f} s",
        f"{run.rows_per_second:,.0f}",
        _mib(run.maxrss_ready_kib),
        _mib(run.maxrss_peak_kib),
    ]


def throughput_section(results: IntakeResults) -> str:
    """Return rows per second and peak memory of both runs, with the memory per index entry."""
    memory = results.memory
    local = results.local
    limit_mb = results.facts.ingest_memory_mb
    largest_chunk = max(memory.detail["chunk_entries"], default=0)
    per_entry = (
        (memory.maxrss_peak_kib - memory.maxrss_ready_kib) * 1024 / largest_chunk
        if largest_chunk
        else 0.0
    )
    fits = memory.peak_mib <= limit_mb
    memory_note = (
        f"The in-memory run's peak is {'within' if fits else 'above'} the ingest function's "
        f"memory size of {limit_mb} MB. Its largest chunk held {largest_chunk:,} distinct index "
        "entries. The peak less the memory at start, divided by those entries, comes to about "
        f"{per_entry:,.0f} bytes per index entry of one chunk."
    )
    cpu_note = (
        f"The in-memory run used {_us(memory.cpu_s / memory.rows_read)} of CPU per record, "
        f"against {_us(results.ratio.ingest_median_s / results.ratio.rows_read)} for "
        "`ingest_records` alone in the CPU section above. The difference is the work of "
        "`ingest_chunk` after parsing: the subscriber lookups, building the index items and "
        "their DynamoDB form, and the fake clients' own checks."
    )
    return "\n".join(
        [
            "### Rows per second and peak memory",
            "",
            f"**In-memory adapters**: `start_intake` and then `ingest_chunk` for every chunk job "
            f"that it queued, with the template's chunk size, over the {memory.file.rows:,}-row "
            "file streamed from disk as ranged reads. The product's `BatchTable`, `JobQueue` and "
            "`EventPublisher` run on fake clients (`infra/bench/memory_aws.py`) that keep "
            "nothing of the index, so neither moto nor the fake's storage is measured. No "
            "subscriber watches a value of the file, so no exposure is recorded. The fakes skip "
            "what a real client does per request (JSON serialisation, signing, HTTPS), so in AWS "
            "each chunk costs more CPU and waits for every request in turn.",
            "",
            "**Local stack**: a new local service runs moto server, the emulators and the "
            "Lambda runtime in one process, without background pollers. It receives the "
            f"{local.file.rows:,}-row file and its manifest in the intake bucket, then its "
            "queues run until idle: the S3 notification, `start_intake`, and the chunk job. "
            "The time runs from the first poll to idle, after both uploads, and the job record "
            "is read at the end. moto's own work is part of both the time and the memory.",
            "",
            table(
                [
                    "run",
                    "file",
                    "chunks",
                    "index entries",
                    "wall time",
                    "CPU time",
                    "rows per second",
                    "memory at start",
                    "peak memory",
                ],
                [_throughput_row(memory), _throughput_row(local)],
            ),
            "",
            "Memory is `resource.getrusage(RUSAGE_SELF).ru_maxrss` of the child process: "
            "**memory at start** is read after the imports and set-up, just before the measured "
            "work (for the local stack, after both uploads), and **peak memory** at the end. "
            "CPU time is `time.process_time` of the whole process over the same span.",
            "",
            memory_note,
            "",
            cpu_note,
        ]
    )
