"""The bench report: machine facts and one Markdown table per section, for docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from infra.bench.coldstart import ColdStartResult
from infra.bench.notifications import RATE_TARGET, NotificationResult
from infra.bench.request_counts import (
    BATCH_LIMITS,
    MINIMUMS,
    UnitCalls,
    batch_sizes,
    count_operations,
)

# Our own overhead (a function over its same-work baseline) that each cold-start figure aims for.
OVERHEAD_TARGET = 1.15
IMPORT_ROWS = 12
SINGULAR = {"keys": "key", "items": "item", "entries": "entry"}
UNIT_TITLES = {
    "signup": "Signup (`POST /v1/signups`)",
    "verify": "Verification (`POST /v1/signups/{signup_id}/verify`)",
    "webhook": "Stripe webhook delivery (`POST /v1/webhooks/stripe`)",
    "notification": "One alert notification (an SQS job: SMS and e-mail)",
}
# Paragraphs under a unit's heading in the request-count section.
UNIT_NOTES = {
    "webhook": (
        "The design's minimum is one enqueue per delivery: the function reads no DynamoDB item and "
        "makes no Stripe request, because the billing consumer fetches the event from Stripe "
        "later. The project calls Stripe only through the `stripe` SDK, and the cold-start section "
        "checks that the webhook process has not loaded it after its request. The two deliveries "
        "run with the queue pollers stopped. The bench checks that each left exactly one message "
        "with its event id on the Stripe events queue, and it deletes both messages before the "
        "pollers restart, so that the billing consumer never looks up the made-up ids."
    ),
    "notification": (
        "Two seeded subscribers each have a confirmed critical alert (critical alerts are not "
        "held for quiet hours, so the counts do not depend on the hour of the run). The notifier "
        "serves one alert job as an SQS event cold, and the other warm; each sends one SMS to the "
        "Twilio emulator, which is not an AWS request, and one e-mail through SES. The bench "
        "waits for both SMS to reach the emulator."
    ),
}


@dataclass(frozen=True)
class FunctionText:
    """The name, source file and first request of one function in the cold-start section."""

    title: str
    name: str
    source: str
    request: str
    note: str = ""


_STRIPE_QUEUE_NOTE = (
    "Each delivery's message goes to the Stripe events queue that the template defines, with its "
    "settings, because the child keeps `STRIPE_EVENTS_QUEUE_URL` from the template. The billing "
    "consumer would look up each made-up event id in the local Stripe server, fail on every "
    "receive and leave the message in the DLQ after the queue's maximum receive count. So the "
    "pollers stay paused until the bench has received and deleted those messages, and the bench "
    "checks that the queue held exactly one message per delivery, with that delivery's event id. A "
    "bench-only queue, set in the child's environment, would serve the cold-start runs too, but "
    "not the in-process request count below: all functions share the bench process's environment, "
    "so one function's queue URL cannot be changed there alone."
)
FUNCTION_TEXTS = {
    "signup": FunctionText(
        title="Signup (`POST /v1/signups`)",
        name="signup",
        source="functions/signup/app.py",
        request="one `POST /v1/signups` event with a new mobile number",
    ),
    "webhook": FunctionText(
        title="Stripe webhook (`POST /v1/webhooks/stripe`)",
        name="webhook",
        source="functions/stripe_webhook/app.py",
        request=(
            "one `POST /v1/webhooks/stripe` delivery of the sample `invoice.paid` event with a "
            "new `evt_bench…` id, signed with the local service's signing secret just before "
            "its process starts"
        ),
        note=_STRIPE_QUEUE_NOTE,
    ),
    "notifier": FunctionText(
        title="Notifier (SQS notification jobs)",
        name="notifier",
        source="functions/notifier/app.py",
        request=(
            "one SQS batch with the code SMS job of a new signup, which the bench makes in its "
            "own process just before. A code job, because a subscriber waits for the code while "
            "the notifier starts, and because quiet hours never hold a code back, so the first "
            "request does the same work at any time of day. It sends one SMS to the Twilio "
            "emulator, and the bench checks that the emulator received exactly one"
        ),
        note=(
            "The same-work process ends with the same SMS request through the twilio SDK: a body "
            "of the same length and alphabet (its digits set to 0), without a status callback, to "
            "a number of its own. The job that the signup itself put on the notification queue "
            "is purged before the pollers restart."
        ),
    ),
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


def header(command: str, duration_s: float | None = None) -> str:
    """Return the page title and the facts of this run: date, command, duration, machine, versions."""
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
            *([f"- duration: {duration_s:.0f} s for the whole run"] if duration_s else []),
            f"- machine: {platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores, "
            f"{_memory()} memory, {platform.system()} {platform.release()}",
            f"- Python {platform.python_version()}; {versions}",
        ]
    )


def cold_start_section(results: Sequence[ColdStartResult]) -> str:
    """Return the cold-start section: how it is measured, then one subsection per function."""
    runs = results[0].runs if results else 0
    with_sessions = [
        FUNCTION_TEXTS[result.unit].name for result in results if _has_sessions(result)
    ]
    sessions_scope = f" ({', '.join(with_sessions)} only)" if with_sessions else ""
    intro = [
        "## Cold start through the first request",
        "",
        f"Median of {runs} runs per process kind, each a fresh `.venv/bin/python` process. "
        "The time runs inside the process from before the first import of the measured code "
        "to after the last AWS response, so interpreter start-up is left out (the process "
        "wall time column includes it). Each function is compared with baselines from the "
        "same bench run:",
        "",
        "- the **function** process imports the function's `app.py` from its directory with "
        "the layer on `sys.path`, in the function's environment from `template.yaml`, and "
        "serves one request, which must get the status named below.",
        "- **same work** imports the third-party modules that the function's process had "
        "loaded after its response and creates the same boto3 clients on one session. It "
        "makes the same AWS operations in the same order, with the bench-only keys and "
        "targets named below. Write requests are padded to the function's request size.",
        f"- **same work, a session per client**{sessions_scope} is the same with a new boto3 "
        "session for each client, as `idsentry.adapters.aws.client` created them before it "
        "shared one session. Each session loads its own copy of botocore's endpoint and "
        "service data, so this row shows what sharing the session saves.",
        "- **boto3 only** imports boto3 and creates one client of the service that the "
        "function called first, with no request.",
        "",
        "Every run records its AWS calls with botocore event handlers (installed inside the "
        "timed span, in every kind), and the bench checks that each function and same-work "
        "run made the same operations as the function's first run.",
        "",
        "Bytecode is cached in a fresh directory (`PYTHONPYCACHEPREFIX`) for each bench run, "
        "because the project's virtual environment contains no `.pyc` files. The first run "
        "of each kind compiles the modules that no earlier run compiled, and it is not part "
        "of the medians. The timed runs of one function are interleaved, one of each kind in "
        "turn, so that drift of the machine's load affects every kind alike. The local "
        "service's queue pollers are paused during all of these runs, so the consumers' work "
        "on earlier requests does not compete for the CPU.",
    ]
    return "\n\n".join(["\n".join(intro), *(function_section(result) for result in results)])


def _has_sessions(result: ColdStartResult) -> bool:
    return "sessions" in result.first


def _replay_targets_text(calls: Sequence[dict[str, Any]]) -> str:
    """Return the sentences on where the same-work process sends each kind of recorded call."""
    services = {call["service"] for call in calls}
    sentences = []
    if "dynamodb" in services:
        sentences.append("Its reads and writes use `BENCH#` keys in the same tables.")
    operations = {(call["service"], call["operation"]) for call in calls}
    if ("kms", "GenerateDataKey") in operations:
        sentences.append("Its data keys come from the same KMS key.")
    if ("kms", "Decrypt") in operations:
        sentences.append(
            "It unwraps data keys of the same KMS key, generated by the bench for bench owners."
        )
    if "secretsmanager" in services:
        sentences.append("It reads the same secrets.")
    if "sqs" in services:
        sentences.append("Its messages go to a bench-only SQS queue that no function consumes.")
    if "events" in services:
        sentences.append("Its events go to a bench-only EventBridge bus without rules.")
    if not sentences:
        return ""
    return " ".join([*sentences, "No replayed request reaches a consumer."])


def _figures_table(result: ColdStartResult, name: str) -> str:
    measured = result.median("function")
    same_work = result.median("baseline")
    boto3_only = result.median("boto3")
    verdict = "met" if measured / same_work <= OVERHEAD_TARGET else "not met"
    rows = [
        [
            f"our own overhead: {name} vs the same work",
            _ms(measured),
            _ms(same_work),
            _ratio(measured, same_work),
            f"≤ {OVERHEAD_TARGET:.2f}×: {verdict}",
        ],
        [
            f"total: {name} vs boto3 with one client",
            _ms(measured),
            _ms(boto3_only),
            _ratio(measured, boto3_only),
            "none set",
        ],
    ]
    if _has_sessions(result):
        sessions = result.median("sessions")
        rows.extend(
            [
                [
                    "same work with a boto3 session per client vs one session",
                    _ms(sessions),
                    _ms(same_work),
                    _ratio(sessions, same_work),
                    "none set",
                ],
                [
                    f"{name} vs the same work with a session per client",
                    _ms(measured),
                    _ms(sessions),
                    _ratio(measured, sessions),
                    "none set",
                ],
            ]
        )
    return table(["figure", "value", "baseline", "ratio", "target"], rows)


def _phases_table(result: ColdStartResult, name: str) -> str:
    labels = {
        "function": name,
        "baseline": "same work",
        "sessions": "same work, a session per client",
        "boto3": "boto3 only",
    }
    rows = []
    for kind, label in labels.items():
        runs = result.timed[kind]
        if not runs:
            continue
        phases = runs[0].result["phases"]
        phase_text = ", ".join(
            f"{phase.replace('_', ' ')} {_ms(result.median(kind, phase))}" for phase in phases
        )
        rows.append(
            [
                label,
                _ms(result.median(kind)),
                f"{_ms(min(run.elapsed_s for run in runs))} to "
                f"{_ms(max(run.elapsed_s for run in runs))}",
                phase_text,
                _ms(result.median_wall(kind)),
            ]
        )
    return table(["process", "median", "range", "median per phase", "process wall time"], rows)


def _import_tables(result: ColdStartResult) -> tuple[str, str]:
    package_rows = [
        [
            f"`{package}`",
            f"{micros / 1000:.1f} ms",
            f"{100 * micros / result.import_total_us:.0f} %",
        ]
        for package, micros in result.import_costs[:IMPORT_ROWS]
    ]
    module_rows = [
        [f"`{module}`", f"{micros / 1000:.1f} ms"]
        for module, micros in result.module_costs[:IMPORT_ROWS]
    ]
    return (
        table(["package", "self time of its modules", "share"], package_rows),
        table(["module", "self time"], module_rows),
    )


def function_section(result: ColdStartResult) -> str:
    """Return one function's cold-start subsection: ratios, phases, checks and import costs."""
    text = FUNCTION_TEXTS[result.unit]
    name = text.name
    first = result.first["function"].result
    operations = ", ".join(f"{call['service']}:{call['operation']}" for call in first["calls"])
    function_bytes = sum(call["request_bytes"] for call in first["calls"])
    baseline_bytes = sum(call["request_bytes"] for call in result.first["baseline"].result["calls"])
    packages = sorted({module.partition(".")[0] for module in first["modules"]})
    loaded = ", ".join(
        f"`{module}` {'LOADED (it should not be)' if first['loaded'][module] else 'not loaded'}"
        for module in result.must_not_load
    )
    expectation = (
        f"return {result.expected_status}"
        if result.expected_status is not None
        else "report no failed record"
    )
    packages_table, modules_table = _import_tables(result)

    parts = [
        f"### {text.title}",
        "",
        f"The {name} process imports `{text.source}` and serves {text.request}. Every run must "
        f"{expectation}. The same-work process imports the "
        f"{len(first['modules'])} modules of {len(packages)} packages that the {name} process "
        f"had loaded. It creates the clients {', '.join(dict.fromkeys(first['clients']))} and "
        f"makes the operations {operations}. {_replay_targets_text(first['calls'])} Request "
        f"bodies: {name} {function_bytes} bytes, same work {baseline_bytes} bytes.",
        "",
        _figures_table(result, name),
    ]
    if _has_sessions(result):
        extra = result.median("sessions") - result.median("baseline")
        parts.extend(
            [
                "",
                f"A new boto3 session per client costs {_ms(extra)} more than one shared "
                f"session; the {name} function shares one session.",
            ]
        )
    parts.extend(
        [
            "",
            _phases_table(result, name),
            "",
            f"The first {name} run, which compiled the modules that no earlier run had "
            f"compiled, took {_ms(result.first['function'].elapsed_s)}. After the {name} "
            f"process served its request: {loaded}.",
        ]
    )
    if text.note:
        parts.extend(["", text.note])
    parts.extend(
        [
            "",
            f"#### Largest import costs of the {name} process",
            "",
            f"From one more {name} run under `python -X importtime`, which adds its own "
            f"overhead: {result.import_total_us / 1000:.0f} ms of imports in total, summed per "
            "top-level package (`app` is the function module), and the largest single modules. "
            "Imports made while the first request runs count too.",
            "",
            packages_table,
            "",
            modules_table,
        ]
    )
    return "\n".join(parts)


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
    """Return the section on AWS requests per unit of work: one table per unit."""
    parts = [
        "## AWS requests per unit of work",
        "",
        "Counted in the bench process: each function runs through the local runtime and "
        "botocore event handlers record every AWS call made on the invoking thread. "
        "A heading notes retried HTTP attempts if there were any. "
        "**Cold** is the first request of an instance, after the cached clients, secrets and "
        "data keys are cleared. **Warm** is the next request of the same kind in the same "
        "instance, so a warm verification finds the signup's data key in the cache. The "
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
        parts.extend(["", f"### {title}{retry_note}"])
        if unit.unit in UNIT_NOTES:
            parts.extend(["", UNIT_NOTES[unit.unit]])
        parts.extend(["", request_count_table(unit)])
    return "\n".join(parts)


def render(
    command: str,
    units: Sequence[UnitCalls],
    cold_starts: Sequence[ColdStartResult],
    intake: str | None = None,
    duration_s: float | None = None,
    notifications: NotificationResult | None = None,
    reports: str | None = None,
    exposure_events: str | None = None,
) -> str:
    """Return the whole page. `intake` is the breach intake section that `intake_report` renders,
    `exposure_events` the PutEvents section of `infra.bench.exposure_events`, and `reports` the
    report and reconciliation section of `infra.bench.reports`."""
    sections = [
        header(command, duration_s),
        cold_start_section(cold_starts),
        request_count_section(units),
        *([intake] if intake else []),
        *([exposure_events] if exposure_events else []),
        *([notification_section(notifications)] if notifications else []),
        *([reports] if reports else []),
    ]
    return "\n\n".join(sections) + "\n"


def command_line() -> str:
    """Return the command that started this bench, as a user would type it."""
    return " ".join([".venv/bin/python -m infra.bench", *sys.argv[1:]])


def _counts(counter: Counter[Any]) -> str:
    return ", ".join(f"{key}: {count}" for key, count in sorted(counter.items())) or "none"


def _met(value: float, target: float, *, at_least: bool) -> str:
    return "met" if (value >= target if at_least else value <= target) else "not met"


_LOCAL_LIMIT_NOTE = (
    "Each alert job reads and writes DynamoDB, unwraps a data key with KMS and sends through "
    "SES, and each SMS brings two status callbacks that write DynamoDB too. All of these "
    "requests reach moto, which runs in a process of its own and serves DynamoDB requests one "
    "at a time, so it keeps about one core busy and limits the jobs per second; the bench "
    "process serves the HTTP API, the callbacks and the emulators beside it. The notifier reads "
    "an alert's items with one BatchGetItem, whose cost does not grow with the table. In AWS "
    "each request goes to a separate service, so on this machine the rate is a lower bound for "
    "a deployment, not an estimate of it."
)


def notification_section(result: NotificationResult) -> str:
    """Return the section on alert delivery under the Twilio emulator's rate limit."""
    jobs_per_s = result.alerts / result.processing_s if result.processing_s > 0 else 0.0
    sent_segments_per_s = result.segments / result.processing_s if result.processing_s > 0 else 0
    figures = table(
        ["figure", "value", "bound", "ratio", "target"],
        [
            [
                "SMS segments delivered per second, first accepted to last delivered",
                f"{result.rate:.2f}/s",
                f"{result.segments_per_second:g}/s",
                f"{result.ratio:.2f}×",
                f"≥ {RATE_TARGET:.2f}×: {_met(result.ratio, RATE_TARGET, at_least=True)}",
            ],
            *[
                [label, str(count), "0", "", f"0: {_met(count, 0, at_least=False)}"]
                for label, count in (
                    ("duplicate SMS (messages beyond one per number)", result.sms_duplicates),
                    ("duplicate e-mails (beyond one per address)", result.email_duplicates),
                    ("alerts without a delivered SMS", result.sms_lost),
                    ("alerts without an e-mail", result.email_lost),
                    (
                        f"ledger records not `sent` (of {2 * result.alerts})",
                        result.ledger_not_sent,
                    ),
                )
            ],
        ],
    )
    counts = table(
        ["what", "count"],
        [
            ["alerts (high and critical in turn), seeded in", f"{result.seed_s:.1f} s"],
            ["job outcomes", _counts(result.outcomes)],
            [
                "jobs processed, first receive to last outcome",
                f"{result.processing_s:.1f} s ({jobs_per_s:.1f} jobs/s, "
                f"{sent_segments_per_s:.1f} segments/s handed to the emulator)",
            ],
            ["jobs received more than once", str(result.redeliveries)],
            ["job retries by error", _counts(result.retries)],
            ["SMS messages by status", _counts(result.sms_statuses)],
            ["SMS messages by segment count", _counts(result.segments_per_message)],
            ["SMS encodings", _counts(result.encodings)],
            ["e-mails accepted by SES (moto)", str(result.email_messages)],
            ["1-minute load average when the jobs were queued", f"{result.load_average:.2f}"],
            [
                "first accepted SMS to last delivery",
                f"{result.drain_s:.1f} s for {result.counted_segments} of "
                f"{result.segments} segments",
            ],
        ],
    )
    if sent_segments_per_s < result.segments_per_second:
        pace = (
            f"In this run the workers handed the emulator {sent_segments_per_s:.1f} segments "
            f"per second, less than its {result.segments_per_second:g}, so its queue ran empty "
            "and the notifier on this machine, not the rate limit, set the pace the subscribers "
            "saw. " + _LOCAL_LIMIT_NOTE
        )
    else:
        pace = (
            f"In this run the workers handed the emulator {sent_segments_per_s:.1f} segments "
            f"per second, more than its {result.segments_per_second:g}, so the rate limit set "
            "the pace the subscribers saw."
        )
    return "\n".join(
        [
            "## Notification throughput under the SMS rate limit",
            "",
            f"The bench seeds {result.alerts} subscribers, each with a new +86 mobile number "
            "and e-mail address, a data key wrapped by KMS and one confirmed alert of severity "
            "high or critical in one breach, and puts one alert job per alert on the "
            f"notification queue. {result.workers} worker processes, like the first "
            "concurrent notifier instances that Lambda starts for an SQS queue, receive "
            f"batches of up to {result.batch_size} jobs (the template's batch size) and call "
            "`process_job` on each, with the notifier's own dependencies and a clock fixed at "
            "10:00 in Asia/Shanghai, so quiet hours never defer an SMS. They call "
            "`process_job` rather than the handler, because the handler reads the real clock, "
            "and the local runtime polls each queue from a single thread of the bench process. "
            "A job that raises goes back to the queue and is retried a second later. Every "
            "alert goes out by e-mail (SES in moto) and by SMS to the Twilio emulator, which "
            f"drains its one sender queue at {result.segments_per_second:g} segments per "
            "second, the bound below.",
            "",
            "The rate is what the subscribers see: segments delivered from the start of the "
            "first accepted SMS request to the first poll that found the last SMS delivered "
            "(about 10 ms late at most), so it is never higher than the true rate. After each "
            "message the emulator waits its segments / rate before it sends the next, so the "
            "last message's segments fall outside that span and are not counted. Duplicates and "
            "losses are counted per number and per address at the emulator and in SES, and the "
            "ledger record of every message and channel must be `sent`. The bench fails on any "
            "duplicate, loss or unsent record.",
            "",
            figures,
            "",
            counts,
            "",
            pace,
        ]
    )
