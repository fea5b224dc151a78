"""Run the bench against a local service and write docs/benchmarks.md: `python -m infra.bench`."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from infra.bench.coldstart import ColdStartBench
from infra.bench.report import command_line, render
from infra.bench.request_counts import (
    BenchFailedError,
    measure_request_counts,
    measure_webhook_counts,
)
from infra.bench.service import quiet_handler_logs, start_service
from infra.local.stack import REPOSITORY_ROOT

DEFAULT_OUTPUT = REPOSITORY_ROOT / "docs" / "benchmarks.md"


def positive(text: str) -> int:
    """Parse a positive integer option."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    service = start_service()
    try:
        quiet_handler_logs(service)
        units = [*measure_request_counts(service), measure_webhook_counts(service)]
        with tempfile.TemporaryDirectory(prefix="idsentry-bench-") as workdir:
            cold_starts = ColdStartBench(service, Path(workdir), args.runs).run()
    except BenchFailedError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        service.stop()

    page = render(command_line(), units, cold_starts)
    args.output.write_text(page, encoding="utf-8")
    print(page)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
