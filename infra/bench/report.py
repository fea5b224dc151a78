"""The bench report: machine facts and one Markdown table per section, for docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from infra.bench.coldstart import ColdStartFailure, ColdStartResult
from infra.bench.coldstart_report import cold_start_section
from infra.bench.notifications import RATE_TARGET, NotificationResult
from infra.bench.request_counts import (
    BATCH_LIMITS,
    MINIMUMS,
    UnitCalls,
    batch_sizes,
    count_operations,
)

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
    signup_load: str | None = None,
    cold_start_failures: Sequence[ColdStartFailure] = (),
) -> str:
    """Return the whole page. `intake` is the breach intake section that `intake_report` renders,
    `exposure_events` the PutEvents section of `infra.bench.exposure_events`, and `reports` the
    report and reconciliation section of `infra.bench.reports`. `signup_load` is the section of
    `infra.bench.signup_load` on signups under concurrent clients. `cold_start_failures` names
    the functions whose cold start was not measured, with the reason."""
    sections = [
        header(command, duration_s),
        cold_start_section(cold_starts, cold_start_failures),
        request_count_section(units),
        *([intake] if intake else []),
        *([exposure_events] if exposure_events else []),
        *([notification_section(notifications)] if notifications else []),
        *([reports] if reports else []),
        *([signup_load] if signup_load else []),
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
