"""Run every reliability scenario at its full size and write docs/reliability.md.

`python -m infra.chaos` (`make chaos`) runs the tests marked `reliability` with
IDSENTRY_CHAOS_SIZE=full, each writing its figures to a fresh folder, and builds the page from
those records. `--from-results FOLDER` builds the page from an earlier run's records instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from infra.chaos.results import (
    REPOSITORY_ROOT,
    RESULTS_ENV,
    SIZE_ENV,
    ScenarioResult,
    load_results,
)

DEFAULT_OUTPUT = REPOSITORY_ROOT / "docs" / "reliability.md"
AREA_TITLES = {
    "replay": "Replay: every delivery twice, in shuffled order",
    "faults": "Faults: provider errors, throttling and crashes",
    "input": "Bad input: property-based requests",
    "load": "Load: concurrent signups",
}


def run_scenarios(results: Path, pytest_args: list[str]) -> int:
    """Run the full-size scenarios; return pytest's exit code."""
    environment = dict(os.environ, **{SIZE_ENV: "full", RESULTS_ENV: str(results)})
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "reliability",
        *pytest_args,
    ]
    completed = subprocess.run(  # noqa: S603 (this interpreter running pytest)
        command, cwd=REPOSITORY_ROOT, env=environment, check=False
    )
    return completed.returncode


def render(results: list[ScenarioResult], *, exit_code: int, seconds: float | None) -> str:
    """The Markdown page: one table per area, then what each column means.

    `seconds` is None when the page is built from earlier runs' records (`--from-results`),
    whose durations and exit codes it does not know.
    """
    if seconds is None:
        run = (
            "- duration: not measured: built from earlier runs' records "
            "(`python -m infra.chaos --from-results`), whose pytest exit codes are not known"
        )
    else:
        run = f"- duration: {seconds:.0f} s; pytest exit code {exit_code}" + (
            " (every scenario passed)" if exit_code == 0 else " (a scenario FAILED)"
        )
    lines = [
        "# Reliability",
        "",
        "Written by `make chaos`, which runs every scenario below at its full size and overwrites "
        "this page. `make test` runs the same scenarios at a smaller size.",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "- command: `make chaos` (`python -m infra.chaos`)",
        run,
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "",
    ]
    areas = sorted({result.area for result in results}, key=_area_order)
    for area in areas:
        lines += [f"## {AREA_TITLES.get(area, area)}", ""]
        lines += [
            "| scenario | what it does | events replayed | faults injected | inputs tried "
            "| items lost | items duplicated | size |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for result in results:
            if result.area != area:
                continue
            lines.append(
                f"| `{result.scenario}` | {result.title} | {result.events_replayed:,} "
                f"| {result.faults_injected:,} | {result.inputs_tried:,} | {result.lost:,} "
                f"| {result.duplicated:,} | {result.size} |"
            )
        details = [result for result in results if result.area == area and result.details]
        if details:
            lines.append("")
            for result in details:
                shown = ", ".join(f"{name} {value}" for name, value in result.details.items())
                lines.append(f"- `{result.scenario}`: {shown}")
        lines.append("")
    if not results:
        lines += ["No scenario recorded figures in this run.", ""]
    return "\n".join(lines)


def _area_order(area: str) -> int:
    order = list(AREA_TITLES)
    return order.index(area) if area in order else len(order)


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios (or read earlier records) and overwrite the page."""
    parser = argparse.ArgumentParser(prog="python -m infra.chaos", description=__doc__)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--from-results", type=Path, help="build the page from these records")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    options = parser.parse_args(argv)

    started = time.monotonic()
    seconds: float | None = None
    if options.from_results:
        folder, exit_code = options.from_results, 0
    else:
        folder = Path(tempfile.mkdtemp(prefix="idsentry-chaos-"))
        exit_code = run_scenarios(folder, options.pytest_args)
        seconds = time.monotonic() - started

    page = render(load_results(folder), exit_code=exit_code, seconds=seconds)
    options.output.write_text(page, "utf-8")
    print(f"wrote {options.output} from {folder}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
