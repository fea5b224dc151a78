"""Run the bench (intake, the local service, notifications) and write docs/benchmarks.md.

`python -m infra.bench` runs everything; `--only notifications` (or `coldstart`, `reports`,
`signup-load`) runs one section and prints it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from infra.bench.coldstart import ColdStartBench, ColdStartFailure, ColdStartResult
from infra.bench.coldstart_report import cold_start_section
from infra.bench.exposure_events import exposure_events_section, measure_exposure_events
from infra.bench.first_requests import first_requests
from infra.bench.intake import IntakeSizes, measure_intake
from infra.bench.intake_report import intake_section
from infra.bench.notification_counts import measure_notification_counts
from infra.bench.notifications import (
    DEFAULT_ALERTS,
    DEFAULT_SEGMENTS_PER_SECOND,
    DEFAULT_WORKERS,
    run_notification_bench,
)
from infra.bench.report import command_line, notification_section, render
from infra.bench.reports import measure_reports, reports_section
from infra.bench.request_counts import (
    BenchFailedError,
    measure_request_counts,
    measure_webhook_counts,
)
from infra.bench.service import quiet_handler_logs, start_service
from infra.bench.signup_load import (
    DEFAULT_CLIENTS,
    DEFAULT_DEADLINE_S,
    DEFAULT_REQUESTS,
    run_signup_load_bench,
    signup_load_section,
)
from infra.local.service import LocalService
from infra.local.stack import REPOSITORY_ROOT

DEFAULT_OUTPUT = REPOSITORY_ROOT / "docs" / "benchmarks.md"


def positive(text: str) -> int:
    """Parse a positive integer option."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_rate(text: str) -> float:
    """Parse a positive number option."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def function_list(text: str) -> list[str]:
    """Parse a comma-separated list of cold-start functions."""
    units = [unit.strip() for unit in text.split(",") if unit.strip()]
    try:
        first_requests(units)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return units


def measure_cold_starts(
    service: LocalService, runs: int, units: list[str] | None
) -> tuple[list[ColdStartResult], list[ColdStartFailure]]:
    """Measure the cold start of each function (all without `units`) on the started service."""
    with tempfile.TemporaryDirectory(prefix="idsentry-bench-") as workdir:
        bench = ColdStartBench(service, Path(workdir), runs, first_requests(units))
        return bench.run(), bench.failures


def main(argv: list[str] | None = None) -> int:
    """Measure, print the tables and overwrite the output page."""
    parser = argparse.ArgumentParser(prog="python -m infra.bench", description=__doc__)
    parser.add_argument(
        "--runs",
        type=positive,
        default=7,
        help="timed cold-start runs per process kind and function; each figure is their median "
        "(default 7)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="Markdown page to overwrite (default docs/benchmarks.md)",
    )
    parser.add_argument(
        "--breach-rows",
        type=positive,
        default=IntakeSizes.memory_rows,
        help="rows of the breach file ingested with in-memory adapters "
        f"(default {IntakeSizes.memory_rows})",
    )
    parser.add_argument(
        "--local-breach-rows",
        type=positive,
        default=IntakeSizes.local_rows,
        help="rows of the breach file ingested through the local stack "
        f"(default {IntakeSizes.local_rows})",
    )
    parser.add_argument(
        "--only",
        choices=["coldstart", "notifications", "reports", "signup-load"],
        help="run one section, print it and leave the output page as it is",
    )
    parser.add_argument(
        "--functions",
        type=function_list,
        default=None,
        help="comma-separated functions of the cold-start section, such as signup,notifier "
        "(default every function in template.yaml)",
    )
    parser.add_argument(
        "--alerts",
        type=positive,
        default=DEFAULT_ALERTS,
        help=f"alerts sent in the notification section (default {DEFAULT_ALERTS})",
    )
    parser.add_argument(
        "--notifier-workers",
        type=positive,
        default=DEFAULT_WORKERS,
        help="worker processes consuming the notification queue at once "
        f"(default {DEFAULT_WORKERS})",
    )
    parser.add_argument(
        "--sms-rate",
        type=positive_rate,
        default=DEFAULT_SEGMENTS_PER_SECOND,
        help="SMS segments per second that the Twilio emulator delivers in the notification "
        f"section (default {DEFAULT_SEGMENTS_PER_SECOND:g})",
    )
    parser.add_argument(
        "--signup-clients",
        type=positive,
        default=DEFAULT_CLIENTS,
        help=f"concurrent clients in the signup load section (default {DEFAULT_CLIENTS})",
    )
    parser.add_argument(
        "--signup-requests",
        type=positive,
        default=DEFAULT_REQUESTS,
        help=f"signups that the clients send in the signup load section (default {DEFAULT_REQUESTS})",
    )
    parser.add_argument(
        "--signup-deadline",
        type=positive_rate,
        default=DEFAULT_DEADLINE_S,
        help="seconds after which each run of the signup load section sends no new request "
        f"(default {DEFAULT_DEADLINE_S:g})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()

    if args.only == "notifications":
        try:
            notifications = run_notification_bench(
                args.alerts, args.notifier_workers, args.sms_rate
            )
        except BenchFailedError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
        print(notification_section(notifications))
        return 0

    if args.only == "coldstart":
        service = start_service()
        try:
            quiet_handler_logs(service)
            results, failures = measure_cold_starts(service, args.runs, args.functions)
        finally:
            service.stop()
        print(cold_start_section(results, failures))
        return 1 if failures else 0

    if args.only == "reports":
        try:
            print(reports_section(measure_reports()))
        except BenchFailedError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
        return 0

    if args.only == "signup-load":
        try:
            signup_load = run_signup_load_bench(
                args.signup_clients, args.signup_requests, args.signup_deadline
            )
        except BenchFailedError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
        print(signup_load_section(signup_load))
        return 0

    sizes = IntakeSizes(memory_rows=args.breach_rows, local_rows=args.local_breach_rows)

    # The intake measurements run first, in child processes, while no queue poller runs.
    with tempfile.TemporaryDirectory(prefix="idsentry-bench-intake-") as workdir:
        try:
            intake = measure_intake(sizes, Path(workdir))
        except BenchFailedError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1

    try:
        exposure_events = measure_exposure_events()
    except BenchFailedError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1

    service = start_service()
    try:
        quiet_handler_logs(service)
        units = [
            *measure_request_counts(service),
            measure_webhook_counts(service),
            measure_notification_counts(service),
        ]
        cold_starts, cold_start_failures = measure_cold_starts(service, args.runs, args.functions)
    except BenchFailedError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        service.stop()

    # A service of its own, so that its Twilio emulator drains at --sms-rate and no earlier
    # message waits in its queue.
    try:
        notifications = run_notification_bench(args.alerts, args.notifier_workers, args.sms_rate)
    except BenchFailedError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1

    try:
        reports = measure_reports()
    except BenchFailedError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1

    # A service of its own, whose abuse limits are set for the signups this section sends.
    try:
        signup_load = run_signup_load_bench(
            args.signup_clients, args.signup_requests, args.signup_deadline
        )
    except BenchFailedError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1

    page = render(
        command_line(),
        units,
        cold_starts,
        intake_section(intake),
        duration_s=time.perf_counter() - started,
        notifications=notifications,
        reports=reports_section(reports),
        signup_load=signup_load_section(signup_load),
        exposure_events=exposure_events_section(exposure_events),
        cold_start_failures=cold_start_failures,
    )
    args.output.write_text(page, encoding="utf-8")
    print(page)
    print(f"wrote {args.output}", file=sys.stderr)
    if cold_start_failures:
        print(
            f"bench failed: the cold start of {len(cold_start_failures)} functions was not "
            "measured; the page names each with the reason",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
