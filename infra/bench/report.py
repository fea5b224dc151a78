"""The bench report: machine facts and one Markdown table per section, for docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from infra.bench.coldstart import MUST_NOT_LOAD, ColdStartResult
from infra.bench.request_counts import (
    BATCH_LIMITS,
    MINIMUMS,
    UnitCalls,
    batch_sizes,
    count_operations,
)

# Our own overhead (signup over the same-work baseline) that the cold-start figure aims for.
OVERHEAD_TARGET = 1.15
IMPORT_ROWS = 12
SINGULAR = {"keys": "key", "items": "item", "entries": "entry"}
UNIT_TITLES = {
    "signup": "Signup (`POST /v1/signups`)",
    "verify": "Verification (`POST /v1/signups/{signup_id}/verify`)",
}


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}×" if baseline else "n/a"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown memory"


def header(command: str) -> str:
    """Return the page title and the facts of this run: date, command, machine, versions."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(
        f"{package} {version(package)}"
        for package in ("boto3", "botocore", "pydantic", "aws-lambda-powertools", "moto")
    )
    return "\n".join(
        [
            "# Benchmarks",
            "",
            "Written by `make bench`, which overwrites this page at every run. The figures "
            "hold for the machine below, whose cores moto, the emulators and the bench share.",
            "",
            f"- date: {now}",
            f"- command: `{command}`",
            f"- machine: {platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores, "
            f"{_memory()} memory, {platform.system()} {platform.release()}",
            f"- Python {platform.python_version()}; {versions}",
        ]
    )


def cold_start_section(result: ColdStartResult) -> str:
    """Return the cold-start section: the two ratios, the phases and the import costs."""
    signup = result.median("signup")
    same_work = result.median("baseline")
    sessions = result.median("sessions")
    boto3_only = result.median("boto3")
    overhead = signup / same_work
    verdict = "met" if overhead <= OVERHEAD_TARGET else "not met"

    figures = table(
        ["figure", "value", "baseline", "ratio", "target"],
        [
            [
                "our own overhead: signup vs the same work",
                _ms(signup),
                _ms(same_work),
                _ratio(signup, same_work),
                f"≤ {OVERHEAD_TARGET:.2f}×: {verdict}",
            ],
            [
                "total: signup vs boto3 with one client",
                _ms(signup),
                _ms(boto3_only),
                _ratio(signup, boto3_only),
                "none set",
            ],
            [
                "same work with a boto3 session per client vs one session",
                _ms(sessions),
                _ms(same_work),
                _ratio(sessions, same_work),
                "none set",
            ],
            [
                "signup vs the same work with a session per client",
                _ms(signup),
                _ms(sessions),
                _ratio(signup, sessions),
                "none set",
            ],
        ],
    )
    session_note = (
        f"A new boto3 session per client costs {_ms(sessions - same_work)} more than one shared "
        "session; the signup shares one session."
    )

    phase_rows = []
    labels = {
        "signup": "signup",
        "baseline": "same work",
        "sessions": "same work, a session per client",
        "boto3": "boto3 only",
    }
    for kind, label in labels.items():
        runs = result.timed[kind]
        phases = runs[0].result["phases"]
        phase_text = ", ".join(
            f"{name.replace('_', ' ')} {_ms(result.median(kind, name))}" for name in phases
        )
        phase_rows.append(
            [
                label,
                _ms(result.median(kind)),
                f"{_ms(min(run.elapsed_s for run in runs))} to "
                f"{_ms(max(run.elapsed_s for run in runs))}",
                phase_text,
                _ms(result.median_wall(kind)),
            ]
        )
    phases = table(
        ["process", "median", "range", "median per phase", "process wall time"], phase_rows
    )

    first = result.first["signup"].result
    operations = ", ".join(f"{call['service']}:{call['operation']}" for call in first["calls"])
    signup_bytes = sum(call["request_bytes"] for call in first["calls"])
    baseline_bytes = sum(call["request_bytes"] for call in result.first["baseline"].result["calls"])
    packages = sorted({name.partition(".")[0] for name in first["modules"]})
    loaded = ", ".join(
        f"`{name}` {'LOADED (it should not be)' if first['loaded'][name] else 'not loaded'}"
        for name in MUST_NOT_LOAD
    )

    import_rows = [
        [
            f"`{package}`",
            f"{micros / 1000:.1f} ms",
            f"{100 * micros / result.import_total_us:.0f} %",
        ]
        for package, micros in result.import_costs[:IMPORT_ROWS]
    ]
    imports = table(["package", "self time of its modules", "share"], import_rows)
    module_rows = [
        [f"`{module}`", f"{micros / 1000:.1f} ms"]
        for module, micros in result.module_costs[:IMPORT_ROWS]
    ]
    modules = table(["module", "self time"], module_rows)

    return "\n".join(
        [
            "## Signup cold start through its first request",
            "",
            f"Median of {result.runs} runs per process kind, each a fresh "
            "`.venv/bin/python` process. The time runs inside the process from before the "
            "first import of the measured code to after the last AWS response, so interpreter "
            "start-up is left out (the process wall time column includes it).",
            "",
            "- **signup** imports `functions/signup/app.py` from its directory with the "
            "layer on `sys.path`, in the function's environment from `template.yaml`, and "
            "serves one `POST /v1/signups` event with a new mobile number. Every run must "
            "return 202.",
            "- **same work** imports the third-party modules that the signup process had "
            f"loaded after its response ({len(first['modules'])} modules of "
            f"{len(packages)} packages). It creates the same boto3 clients "
            f"({', '.join(dict.fromkeys(first['clients']))}) on one session and makes the same "
            "AWS operations in the same order. Reads and writes use `BENCH#` keys in the same "
            "tables, the data key comes from the same KMS key, and the message goes to a "
            "bench-only SQS queue that no function consumes, so no replayed request becomes a "
            "job. Write requests are padded to the signup's request size "
            f"(request bodies: signup {signup_bytes} bytes, same work {baseline_bytes} bytes).",
            "- **same work, a session per client** is the same with a new boto3 session for "
            "each client, as `idsentry.adapters.aws.client` created them before it shared one "
            "session. Each session loads its own copy of botocore's endpoint and service data, "
            "so this row shows what sharing the session saves.",
            "- **boto3 only** imports boto3 and creates one "
            f"`{result.first['signup'].result['clients'][0]}` client, with no request.",
            "",
            "Every run records its AWS calls with botocore event handlers (installed inside "
            "the timed span, in every kind), and the bench checks that each signup and "
            f"same-work run made the same operations: {operations}.",
            "",
            figures,
            "",
            session_note,
            "",
            phases,
            "",
            "Bytecode is cached in a fresh directory (`PYTHONPYCACHEPREFIX`) for each bench "
            "run, because the project's virtual environment contains no `.pyc` files. The "
            f"first signup run compiles it and took {_ms(result.first['signup'].elapsed_s)}. "
            "The first run of each kind is not part of the medians. The local service's queue "
            "pollers are paused during these runs, so the notifier's work on earlier signups "
            "does not compete for the CPU.",
            "",
            f"After the signup process served its request: {loaded}.",
            "",
            "### Largest import costs of the signup process",
            "",
            "From one more signup run under `python -X importtime`, which adds its own "
            f"overhead: {result.import_total_us / 1000:.0f} ms of imports in total, summed "
            "per top-level package (`app` is the function module), and the largest single "
            "modules. Imports made while the first request runs count too.",
            "",
            imports,
            "",
            modules,
        ]
    )


def _batch_text(name: str, sizes: dict[str, list[int]]) -> str:
    if name not in BATCH_LIMITS or name not in sizes:
        return ""
    noun, limit = BATCH_LIMITS[name]
    largest = max(sizes[name])
    return f"{largest} {noun if largest != 1 else SINGULAR[noun]} (max {limit})"


def request_count_table(unit: UnitCalls) -> str:
    """Return the table of one unit of work: count per operation, cold and warm, and minimum."""
    minimum = MINIMUMS[unit.unit]
    cold = count_operations(unit.cold)
    warm = count_operations(unit.warm)
    sizes = batch_sizes(unit.cold + unit.warm)
    names = list(dict.fromkeys([*cold, *warm, *minimum]))

    rows = []
    for name in names:
        bound = minimum.get(name)
        rows.append(
            [
                f"`{name}`",
                str(cold[name]),
                str(warm[name]),
                str(bound.cold if bound else 0),
                str(bound.warm if bound else 0),
                _batch_text(name, sizes),
                bound.reason if bound else "not in the design's minimum",
            ]
        )
    cold_total = sum(cold.values())
    warm_total = sum(warm.values())
    cold_minimum = sum(bound.cold for bound in minimum.values())
    warm_minimum = sum(bound.warm for bound in minimum.values())
    rows.append(
        [
            "**total**",
            f"**{cold_total}**",
            f"**{warm_total}**",
            f"**{cold_minimum}**",
            f"**{warm_minimum}**",
            "",
            f"ratio cold {_ratio(cold_total, cold_minimum)}, "
            f"warm {_ratio(warm_total, warm_minimum)}",
        ]
    )
    return table(
        [
            "request",
            "cold",
            "warm",
            "minimum cold",
            "minimum warm",
            "per request",
            "why the minimum",
        ],
        rows,
    )


def request_count_section(units: Sequence[UnitCalls]) -> str:
    """Return the section on AWS requests per signup and per verification."""
    parts = [
        "## AWS requests per unit of work",
        "",
        "Counted in the bench process: the signup function runs through the local runtime "
        "and botocore event handlers record every AWS call made on the invoking thread. "
        "A heading notes retried HTTP attempts if there were any. "
        "**Cold** is the first request of an instance, after the cached clients, secrets and "
        "data keys are cleared. **Warm** is the next signup and verification in the same "
        "instance, so the verification finds the signup's data key in the cache. The "
        "minimum is the number of requests that the design needs at least, with the reason, "
        "and the ratio is requests made over that minimum. The call "
        "to the real-name verification provider is one more request per verification, not "
        "counted here because it is not an AWS request.",
    ]
    for unit in units:
        attempts = sum(call["attempts"] for call in unit.cold + unit.warm)
        calls = len(unit.cold) + len(unit.warm)
        retry_note = (
            "" if attempts == calls else f" ({attempts - calls} retried HTTP attempts included)"
        )
        title = UNIT_TITLES[unit.unit]
        parts.extend(["", f"### {title}{retry_note}", "", request_count_table(unit)])
    return "\n".join(parts)


def render(command: str, units: Sequence[UnitCalls], cold_start: ColdStartResult) -> str:
    """Return the whole page."""
    sections = [header(command), cold_start_section(cold_start), request_count_section(units)]
    return "\n\n".join(sections) + "\n"


def command_line() -> str:
    """Return the command that started this bench, as a user would type it."""
    return " ".join([".venv/bin/python -m infra.bench", *sys.argv[1:]])
